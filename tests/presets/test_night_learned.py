"""The learned `night` preset: announced classical fallbacks without weights, recorded models with them."""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ispkit import load_preset  # noqa: E402
from ispkit.errors import FallbackWarning  # noqa: E402
from ispkit.io.night import synthetic_night_scene  # noqa: E402
from ispkit.neural import create_model  # noqa: E402
from ispkit.pipeline import models as auto  # noqa: E402
from ispkit.stages import BayerDenoise, IlluminantEstimation, WhiteBalance  # noqa: E402

LEARNED = {"bayer_denoise": "deepflexisp.raw_denoise", "illuminant_estimation": "fc4.cwp",
           "enhance": "deepflexisp.enhance_2023", "super_resolution": "hat.real_gan_srx4"}


@pytest.fixture()
def weights_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(auto, "_ANNOUNCED", set())
    monkeypatch.setenv(auto.WEIGHTS_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def scene():
    return synthetic_night_scene(stops=5.0, size=(64, 96), seed=3)


def _records(frame) -> dict[str, dict]:
    return {r["stage"]: r for r in frame.meta.extra["models"]}


def test_night_without_weights_is_the_classical_cascade_and_says_so(weights_dir, scene):
    pipe = load_preset("night")
    with pytest.warns(FallbackWarning) as rec:
        out = pipe(scene.frame)
    said = [str(w.message) for w in rec if issubclass(w.category, FallbackWarning)]
    assert len(said) == 4 and all(any(m in s for s in said) for m in LEARNED.values())
    recs = _records(out)
    assert {s: r["model"] for s, r in recs.items()} == LEARNED
    assert all(r["weights"] is None and r["sha256"] is None and "ISPKIT_WEIGHTS" in r["fallback"]
               for r in recs.values())
    assert recs["bayer_denoise"]["fallback"].startswith("nlm ")
    assert recs["illuminant_estimation"]["fallback"].startswith("masked_bright_pixels ")
    assert recs["enhance"]["fallback"].startswith("skipped ") and recs["super_resolution"]["fallback"].startswith("skipped ")

    # the same pixels as the cascade written with its classical stages (no learned step at all)
    classical = (pipe.replace("bayer_denoise", BayerDenoise(method="nlm", strength=1.4))
                 .replace("illuminant", IlluminantEstimation(method="masked_bright_pixels", percentile=99.0))
                 .remove("enhance").remove("super_resolution"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        ref = classical(scene.frame)
    np.testing.assert_array_equal(out.data, ref.data)
    assert out.data.shape == (64, 96, 3) and 0.02 < float(out.data.mean()) < 0.98


def test_night_with_weights_runs_the_learned_stages_and_records_their_sha256(weights_dir, scene):
    files = {}
    for i, model in enumerate(("deepflexisp.raw_denoise", "fc4.cwp", "deepflexisp.enhance_2023")):
        torch.manual_seed(i)
        files[model] = os.path.join(weights_dir, f"{model}.pth")
        torch.save(create_model(model).state_dict(), files[model])
    # HAT left out (slow on a CPU): the ×1/4 enhancer output comes back to full size by bicubic, announced
    pipe = load_preset("night")
    with pytest.warns(FallbackWarning) as rec:
        out = pipe(scene.frame)
    said = [str(w.message) for w in rec if issubclass(w.category, FallbackWarning)]
    assert len(said) == 1 and "hat.real_gan_srx4" in said[0]
    recs = _records(out)
    for stage, model in LEARNED.items():
        if model in files:
            want = hashlib.sha256(open(files[model], "rb").read()).hexdigest()
            assert recs[stage] == {"stage": stage, "model": model, "weights": files[model], "sha256": want,
                                   "fallback": None, "random_weights": False}
    assert recs["super_resolution"]["fallback"].startswith("bicubic resize to 96x64 (no hat.real_gan_srx4")
    assert out.data.shape == (64, 96, 3) and np.isfinite(out.data).all()


def test_an_edited_copy_of_night_keeps_weights_auto(weights_dir, scene, capsys, tmp_path):
    from ispkit.cli import main

    assert main(["presets", "--show", "night"]) == 0
    text = capsys.readouterr().out
    assert 'weights = "auto"' in text and 'fallback = "nlm"' in text
    path = tmp_path / "my-night.toml"
    path.write_text(text.replace('fallback = "nlm"', 'fallback = "wavelet"'), encoding="utf-8")
    pipe = load_preset(path)
    assert isinstance(pipe["refine_white"], WhiteBalance) and pipe["refine_white"].refine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        out = pipe(scene.frame)
    assert _records(out)["bayer_denoise"]["fallback"].startswith("wavelet (no deepflexisp.raw_denoise")


def test_render_weights_dir_feeds_weights_auto(weights_dir, tmp_path, capsys):
    from ispkit.cli import main
    from ispkit.io import read_image, write_dng
    from ispkit.io.synthetic import synthesize_capture

    cap = synthesize_capture(size=(64, 96), seed=3)
    m = cap.frame.meta
    dng = write_dng(tmp_path / "n.dng", cap.frame.data.round().astype(np.uint16), m.cfa_pattern,
                    black_level=m.black_level, white_level=m.white_level, color_matrix1=m.color_matrix1,
                    as_shot_neutral=1 / m.wb_gains)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    torch.save(create_model("fc4.cwp").state_dict(), wdir / "fc4.cwp.pth")
    out = tmp_path / "n.png"
    assert main(["render", str(dng), "--preset", "night", "--weights-dir", str(wdir), "-o", str(out)]) == 0
    assert os.environ[auto.WEIGHTS_ENV] == str(wdir.resolve())  # monkeypatch restores it afterwards
    said = capsys.readouterr().err  # the CLI prints each warning as one line
    assert "instead of model 'deepflexisp.raw_denoise'" in said and "hat.real_gan_srx4" in said
    assert "fc4.cwp" not in said  # FC4 ran from --weights-dir
    assert read_image(out).shape == (64, 96, 3)


def test_refinement_ignores_lamp_glow_on_grey_patches():
    """The cascade's Shades-of-Gray refinement is taken away from the lamps: grey patches stay grey."""
    from ispkit.metrics import neutral_delta_e

    night = load_preset("night")
    scene = synthetic_night_scene(stops=5.0, size=(384, 576), seed=2)

    def grey_error(pipe) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the announced fallbacks
            out = np.clip(pipe(scene.frame).data, 0, 1)
        greys = [out[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0) for y0, y1, x0, x1 in scene.neutral_boxes[:4]]
        return float(neutral_delta_e(np.array(greys)).mean())

    masked = grey_error(night)
    plain = grey_error(night.set({"refine_white.method": "shades_of_gray"}))
    assert masked <= 3.0, masked            # measured ≈ 1.7
    assert plain > masked + 4.0, (masked, plain)  # measured ≈ 9.3
