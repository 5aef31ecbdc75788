"""The ispkit command line: every command, and bad input as one clear line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ispkit
from ispkit.cli import main
from ispkit.io import read_image, write_dng
from ispkit.io.synthetic import synthesize_capture
from tests.conftest import data_path


@pytest.fixture(scope="module")
def sample_dng(tmp_path_factory):
    cap = synthesize_capture(size=(128, 192), seed=3)
    m = cap.frame.meta
    path = tmp_path_factory.mktemp("cli") / "sample.dng"
    return write_dng(path, cap.frame.data.round().astype(np.uint16), m.cfa_pattern, black_level=m.black_level,
                     white_level=m.white_level, color_matrix1=m.color_matrix1, as_shot_neutral=1 / m.wb_gains)


def test_demo_renders_and_reports(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--debug"]) == 0
    out = capsys.readouterr().out
    assert "CIEDE2000" in out and "demo.png" in out
    mean = float(out.split("mean ")[1].split(",")[0])
    assert mean < 8.0  # with the display transform (5.50: the sigmoid changes tones on purpose)
    colorimetric = float(out.split("without the display transform")[1].split("mean ")[1].split(",")[0])
    assert colorimetric < 2.0  # the colour pipeline (0.85)
    img = read_image(tmp_path / "demo" / "demo.png")
    assert img.shape == (512, 768, 3) and 0.1 < img.mean() < 0.9
    assert (tmp_path / "demo" / "debug" / "contact_sheet.png").stat().st_size > 0
    assert (tmp_path / "demo" / "demo_sample.dng").exists()


def test_render_with_overrides_config_and_debug(tmp_path, sample_dng, capsys):
    out = tmp_path / "a" / "out.png"
    rc = main(["render", str(sample_dng), "-o", str(out), "--set", "demosaic.method=menon2007",
               "--debug-dir", str(tmp_path / "dbg"), "--timings"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "demosaic" in text and "ms" in text
    img = read_image(out)
    ref = ispkit.render(sample_dng, demosaic__method="menon2007")
    assert np.abs(img - ref).max() <= 1 / 255 + 1e-6
    names = sorted(p.name for p in (tmp_path / "dbg").iterdir())
    assert "contact_sheet.png" in names and any(n.endswith("_demosaic.png") for n in names)
    cfg = tmp_path / "p.toml"
    ispkit.load_preset("libraw").save(cfg)
    assert main(["render", str(sample_dng), "-o", str(tmp_path / "b.tif"), "--config", str(cfg),
                 "--bit-depth", "16"]) == 0
    b = read_image(tmp_path / "b.tif")
    np.testing.assert_allclose(b, ispkit.render(sample_dng, "libraw"), atol=1 / 65535 + 1e-6)


def test_info_table_and_json(sample_dng, capsys):
    assert main(["info", str(sample_dng)]) == 0
    assert "cfa_pattern" in capsys.readouterr().out
    assert main(["info", str(sample_dng), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cfa_pattern"] == "RGGB" and info["width"] == 192


def test_stages_and_presets(capsys):
    assert main(["stages"]) == 0
    text = capsys.readouterr().out
    for name in ("black_level", "demosaic", "color_matrix", "gamma"):
        assert name in text
    assert main(["presets"]) == 0
    assert "default" in capsys.readouterr().out
    assert main(["presets", "--show", "libraw"]) == 0
    shown = capsys.readouterr().out
    assert 'source = "libraw"' in shown and shown.startswith('name = "libraw"\ndescription = "Mirrors rawpy')


def test_presets_show_is_a_config_that_loads_back(tmp_path, capsys):
    for name in ispkit.list_presets():
        assert main(["presets", "--show", name]) == 0
        path = tmp_path / f"{name}.toml"
        path.write_text(capsys.readouterr().out, encoding="utf-8")
        assert ispkit.load_preset(path) == ispkit.load_preset(name)


def _bad_files(tmp_path):
    real = data_path("raw", "blackmagic_pocket4k.dng").read_bytes()
    files = {
        "empty": tmp_path / "empty.dng",
        "truncated": tmp_path / "trunc.dng",
        "text": tmp_path / "notes.txt",
        "jpeg": tmp_path / "photo.jpg",
        "directory": tmp_path / "adir",
        "missing": tmp_path / "missing.dng",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(real[: len(real) // 10])
    files["text"].write_text("this is not a raw file\n" * 50)
    ispkit.write_image(np.zeros((16, 16, 3)), files["jpeg"])
    files["directory"].mkdir()
    return files


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "jpeg", "directory", "missing"])
def test_bad_input_is_one_clear_line(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    proc = subprocess.run([sys.executable, "-m", "ispkit.cli", "render", str(path), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln and "warn(" not in ln
             and "Matplotlib" not in ln and "installation" not in ln]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert path.name in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_stub_files_and_unsupported_layouts(tmp_path, capsys):
    for stub in sorted(data_path("raw", "stubs").iterdir()):
        assert main(["info", str(stub)]) == 2
        err = capsys.readouterr().err
        assert stub.name in err
    for name in ("nikon_coolscan_filmscan.nef", "kodak_c330_yrgb.raw"):
        assert main(["render", str(data_path("raw", name)), "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert name in err and "Bayer" in err
        assert not (tmp_path / "x.png").exists()


def test_bad_override_and_preset(sample_dng, tmp_path, capsys):
    assert main(["render", str(sample_dng), "-o", str(tmp_path / "x.png"), "--set", "demosaic.method=nope"]) == 2
    assert "menon2007" in capsys.readouterr().err  # lists the valid names
    assert main(["render", str(sample_dng), "--preset", "nope", "-o", str(tmp_path / "x.png")]) == 2
    assert "'default'" in capsys.readouterr().err
    assert main(["render", str(sample_dng), "--set", "nodot"]) == 2


def test_unsupported_raw_is_its_own_error_class():
    with pytest.raises(ispkit.errors.UnsupportedRawError, match="Bayer"):
        ispkit.read_raw(data_path("raw", "nikon_coolscan_filmscan.nef"))


def test_verbose_shows_traceback(tmp_path):
    with pytest.raises(ispkit.errors.RawReadError):
        main(["--verbose", "render", str(tmp_path / "missing.dng")])


def test_stages_name_describes_parameters(capsys):
    assert main(["stages", "demosaic"]) == 0
    out = capsys.readouterr().out
    assert "Interpolate a Bayer mosaic to camera RGB." in out
    assert 'method         a string; default "malvar2004"' in out
    assert "one of: bilinear, malvar2004, menon2007" in out
    assert main(["stages", "no_such_stage"]) == 2
    assert "valid stage types are" in capsys.readouterr().err


def test_models_lists_licence_and_contract(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "hat.srx4" in out and "licence: Apache-2.0" in out
    assert "input: raw_packed, 4 ch (B,Gr,R,Gb)" in out  # PyNET / MW-ISPNet packing


def test_bad_set_value_and_bad_extension_fail_before_rendering(tmp_path, sample_dng, capsys):
    assert main(["render", str(sample_dng), "-o", str(tmp_path / "a.png"), "--set", "exposure.ev=abc"]) == 2
    assert "parameter 'ev' expects a number, got 'abc'" in capsys.readouterr().err
    missing = tmp_path / "missing.dng"  # the extension is refused before the input is even read
    assert main(["render", str(missing), "-o", str(tmp_path / "a.bmpx")]) == 2
    err = capsys.readouterr().err
    assert "extension '.bmpx'" in err and ".webp" in err and not list(tmp_path.glob("a.*"))


def test_cli_warnings_are_one_clean_line(tmp_path, sample_dng, capsys, monkeypatch):
    import warnings

    render_module = sys.modules["ispkit.render"]  # (the attribute ispkit.render is the function)
    real = render_module.render

    def warns_then_renders(*args, **kwargs):
        warnings.warn("a stage had\nsomething to say", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(render_module, "render", warns_then_renders)
    before = warnings.showwarning
    assert main(["render", str(sample_dng), "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["ispkit render: warning: a stage had something to say"]
    assert warnings.showwarning is before  # the CLI leaves the caller's warning settings alone
