"""read_capture: one reader for camera RAWs, NTIRE PNG+JSON pairs and sidecar mosaics; sidecar colour keys."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import ispkit
from ispkit.cli import main
from ispkit.errors import RawReadError
from ispkit.io import capture_kind, read_capture, write_dng
from ispkit.io.sidecar import interpolate_by_mired, offset_as_black, sidecar_wb_gains, split_white_balance
from ispkit.io.synthetic import synthesize_capture
from tests.conftest import data_path

NTIRE_META = {  # the keys of the night-challenge JSONs (see ../shared/data/night), as plain numbers
    "black_level": [64, 64, 64, 64], "white_level": [1023], "cfa_pattern": [0, 1, 1, 2],
    "as_shot_neutral": [0.5, 1.0, 0.8], "orientation": "Horizontal (normal)",
    "color_matrix_1": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "color_matrix_2": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
    "noise_profile": [0.0001, 1e-6],
}


@pytest.fixture()
def mosaic():
    return np.random.default_rng(4).integers(64, 1000, size=(32, 48), dtype=np.uint16)


def test_ntire_pair_given_either_file(tmp_path, mosaic):
    png = tmp_path / "night_001.png"
    assert cv2.imwrite(str(png), mosaic)
    (tmp_path / "night_001.json").write_text(json.dumps(NTIRE_META))
    for given in (png, tmp_path / "night_001.json"):
        assert capture_kind(given) == "ntire"
        frame = read_capture(given)
        np.testing.assert_array_equal(frame.data, mosaic.astype(np.float32))
        assert frame.meta.cfa_pattern == "RGGB" and frame.meta.extra["format"] == "ntire"
        np.testing.assert_allclose(frame.meta.wb_gains, [2.0, 1.0, 1.25])


def test_headerless_mosaic_with_sidecar_either_file(tmp_path, mosaic):
    raw = tmp_path / "chart_rggb.raw"
    mosaic.astype("<u2").tofile(raw)
    side = {"width": 48, "height": 32, "black_level": 64, "white_level": 1023,
            "openISP_config_awb_gains": {"r": 1.5, "gr": 1.0, "gb": 1.1}}
    (tmp_path / "chart_rggb.json").write_text(json.dumps(side))
    for given in (raw, tmp_path / "chart_rggb.json"):
        assert capture_kind(given) == "bayer"
        frame = read_capture(given)
        np.testing.assert_array_equal(frame.data, mosaic.astype(np.float32))
        # openISP gains: one green gain (the mean of Gr 1.0 and Gb 1.1), blue absent → 1, normalised to G
        np.testing.assert_allclose(frame.meta.wb_gains, [1.5 / 1.05, 1.0, 1 / 1.05])


def test_camera_raws_still_go_to_libraw(tmp_path):
    cap = synthesize_capture(size=(64, 96), seed=2)
    m = cap.frame.meta
    path = write_dng(tmp_path / "a.dng", cap.frame.data.round().astype(np.uint16), m.cfa_pattern,
                     black_level=m.black_level, white_level=m.white_level, color_matrix1=m.color_matrix1,
                     as_shot_neutral=1 / m.wb_gains)
    assert capture_kind(path) == "raw"
    np.testing.assert_array_equal(read_capture(path).data, ispkit.read_raw(path).data)
    lonely = tmp_path / "lonely.json"
    lonely.write_text("{}")
    with pytest.raises(RawReadError, match="no mosaic"):
        read_capture(lonely)


def test_cct_calibrated_cam_to_srgb_with_offsets(tmp_path):
    """FCam/Halide-style 3×4 matrices keyed by colour temperature: white balance split out, offset → black."""
    m3200 = np.array([[1.6, -0.3, -0.3, -40.0], [-0.4, 1.1, 0.3, -30.0], [-0.2, -0.9, 2.1, -20.0]])
    m7000 = np.array([[2.3, -0.4, 0.1, -40.0], [-0.4, 1.6, -0.2, -25.0], [-0.1, -0.7, 1.8, -20.0]])
    side = {"width": 48, "height": 32, "cfa": "GRBG", "black_level": 25, "white_level": 1023,
            "color_matrices_3x4_cam_to_sRGB_with_offset": {"3200K": m3200.tolist(), "7000K": m7000.tolist()},
            "suggested_params_from_halide": {"color_temp": 3700}}
    png = tmp_path / "dog_grbg.png"
    assert cv2.imwrite(str(png), np.full((32, 48), 300, np.uint16))
    (tmp_path / "dog_grbg.json").write_text(json.dumps(side))
    frame = read_capture(png)
    w = (1 / 3700 - 1 / 3200) / (1 / 7000 - 1 / 3200)
    full = (1 - w) * m3200 + w * m7000
    m = full[:, :3]
    gains, balanced = split_white_balance(m)
    np.testing.assert_allclose(frame.meta.wb_gains, gains)
    np.testing.assert_allclose(frame.meta.cam_to_srgb, balanced)
    # the pipeline's view equals the calibration's: balanced·diag(gains)·(c - new black) ∝ M·(c - 25) + o
    c = np.array([300.0, 310.0, 280.0])  # one camera colour in raw counts (R, G, B)
    black_rgb = frame.meta.black_level[[1, 0, 2]]  # GRBG raster: R at 1, G at 0, B at 2
    ours = balanced @ (gains * (c - black_rgb))
    theirs = m @ (c - 25.0) + full[:, 3]
    np.testing.assert_allclose(ours / ours.sum(), theirs / theirs.sum(), rtol=1e-9)
    assert frame.meta.extra["cam_to_srgb_cct"] == 3700.0


def test_sidecar_helpers():
    np.testing.assert_allclose(sidecar_wb_gains({"wb_gains_R_G_B": [2.0, 1.0, 1.5]}), [2.0, 1.0, 1.5])
    assert sidecar_wb_gains({"camera": "x"}) is None
    with pytest.raises(RawReadError, match="three positive"):
        sidecar_wb_gains({"wb_gains": [1.0, -1.0, 2.0]})
    a, b = np.eye(3), 2 * np.eye(3)
    np.testing.assert_allclose(interpolate_by_mired({3000.0: a, 6000.0: b}, 4000.0), 1.5 * np.eye(3))
    np.testing.assert_allclose(interpolate_by_mired({3000.0: a, 6000.0: b}, 10000.0), b)
    gains, balanced = split_white_balance(np.diag([2.0, 1.0, 4.0]))
    np.testing.assert_allclose(gains, [2.0, 1.0, 4.0]) and np.testing.assert_allclose(balanced, np.eye(3))
    np.testing.assert_allclose(offset_as_black(np.array([-2.0, -1.0, -4.0]), np.diag([2.0, 1.0, 4.0]),
                                               np.full(4, 10.0), "RGGB"), [11, 11, 11, 11])


def test_cli_renders_and_describes_every_input_kind(tmp_path, mosaic, capsys):
    png = tmp_path / "night_002.png"
    assert cv2.imwrite(str(png), mosaic)
    (tmp_path / "night_002.json").write_text(json.dumps(NTIRE_META))
    assert main(["render", str(tmp_path / "night_002.json"), "-o", str(tmp_path / "n.png")]) == 0
    assert (tmp_path / "n.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["info", str(png), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cfa_pattern"] == "RGGB" and info["width"] == 48


@pytest.mark.data
@pytest.mark.parametrize("name", ["n900_dog_256x344_grbg.png", "openisp_chart_1920x1080_rggb.raw"])
def test_shared_sidecar_captures_render_with_the_default_preset(name):
    """The N900 capture's calibrated matrices and the openISP chart's WB gains reach the default preset."""
    path = data_path("bayer", name)
    frame = read_capture(path)
    assert frame.meta.wb_gains is not None
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # the openISP chart has no colour matrix (camera RGB)
        img = ispkit.render(frame)
    assert img.shape == frame.data.shape + (3,) and 0.1 < float(img.mean()) < 0.8
    if name.startswith("n900"):
        assert frame.meta.cam_to_srgb is not None and frame.meta.extra["cam_to_srgb_cct"] == 3700.0


def test_challenge_json_without_as_shot_neutral_is_still_ntire(tmp_path, mosaic):
    """Three of the four published challenge JSONs carry no as-shot neutral: the list CFA decides."""
    png = tmp_path / "IMG_2304.png"
    assert cv2.imwrite(str(png), mosaic)
    meta = {k: v for k, v in NTIRE_META.items() if k != "as_shot_neutral"}
    (tmp_path / "IMG_2304.json").write_text(json.dumps(meta))
    assert capture_kind(png) == "ntire"
    frame = read_capture(png)
    assert frame.meta.extra["format"] == "ntire" and frame.meta.wb_gains is None


def test_cli_render_never_overwrites_the_capture(tmp_path, mosaic, monkeypatch):
    """An NTIRE pair's mosaic is NAME.png: the default output must not be that file, nor may -o name it."""
    png = tmp_path / "night_003.png"
    assert cv2.imwrite(str(png), mosaic)
    (tmp_path / "night_003.json").write_text(json.dumps(NTIRE_META))
    before = png.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["render", "night_003.json"]) == 0
    assert png.read_bytes() == before and (tmp_path / "night_003_ispkit.png").stat().st_size > 0
    assert main(["render", "night_003.json", "-o", "night_003.png"]) == 2
    assert png.read_bytes() == before
