"""read_ntire: every challenge JSON (2022, 2023, 2024 Huawei/Canon) with a synthetic 16-bit PNG."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import cv2
import numpy as np
import pytest

from ispkit.errors import RawReadError
from ispkit.frame import Domain
from ispkit.io import read_ntire
from ispkit.io.ntire import EXIFREAD_ORIENTATIONS, parse_ntire_metadata
from tests.conftest import data_path

JSONS = ["nightimaging22_IMG_2304.json", "nightimaging23_test.json", "nightimaging24_test_canon.json",
         "nightimaging24_test_huawei.json"]


def challenge_decode(path):
    """The challenge's own reading: json.load with a Fraction object hook."""
    def hook(obj):
        return Fraction(*obj["Fraction"]) if "Fraction" in obj else obj
    return json.loads(path.read_text(), object_hook=hook)


def to_floats(values):
    out = []
    for v in values if isinstance(values, list) else [values]:
        out.extend(to_floats(v) if isinstance(v, list) else [float(v)])
    return out


def write_pair(tmp_path, name, shape=(48, 64), seed=0):
    src = data_path("night", name)
    json_path = tmp_path / name
    shutil.copy(src, json_path)
    png = json_path.with_suffix(".png")
    mosaic = np.random.default_rng(seed).integers(0, 16000, size=shape, dtype=np.uint16)
    assert cv2.imwrite(str(png), mosaic)
    return png, json_path, mosaic


@pytest.mark.parametrize("name", JSONS)
def test_each_challenge_json(tmp_path, name):
    png, json_path, mosaic = write_pair(tmp_path, name)
    frame = read_ntire(png)  # JSON found beside the PNG
    ref = challenge_decode(json_path)
    m = frame.meta
    assert frame.domain is Domain.RAW_MOSAIC
    np.testing.assert_array_equal(frame.data, mosaic.astype(np.float32))
    letters = "".join("RGB"[i] for i in ref["cfa_pattern"])
    assert m.cfa_pattern == letters
    np.testing.assert_array_equal(m.black_level, np.broadcast_to(to_floats(ref["black_level"]), (4,)))
    assert m.white_level == max(to_floats(ref["white_level"]))
    assert m.orientation == 1
    assert m.source == str(png)
    if "color_matrix_1" in ref:
        cm1 = np.array([float(v) for v in ref["color_matrix_1"]]).reshape(3, 3)
        cm2 = np.array([float(v) for v in ref["color_matrix_2"]]).reshape(3, 3)
        np.testing.assert_array_equal(m.color_matrix1, cm1)
        np.testing.assert_array_equal(m.color_matrix2, cm2)
        assert (m.calibration_illuminant1, m.calibration_illuminant2) == (17, 21)
        assert m.extra["calibration_illuminants_assumed"] is True
        np.testing.assert_allclose(m.cam_to_xyz, np.linalg.inv(cm2))
        scale, offset = to_floats(ref["noise_profile"])
        assert m.noise_profile == ((scale, offset),) * 3
    else:
        assert m.color_matrix1 is None and m.cam_to_xyz is None
    if "as_shot_neutral" in ref:
        neutral = np.array(to_floats(ref["as_shot_neutral"]))
        np.testing.assert_allclose(m.wb_gains, (1 / neutral) / (1 / neutral[1]))
        np.testing.assert_allclose(1 / m.wb_gains, neutral, rtol=1e-12)
    else:
        assert m.wb_gains is None


def test_known_values(tmp_path):
    f22 = read_ntire(*write_pair(tmp_path, JSONS[0])[:2])
    assert f22.meta.cfa_pattern == "GBRG"
    np.testing.assert_array_equal(f22.meta.black_level, [2048] * 4)
    assert f22.meta.white_level == 15000
    assert f22.meta.color_matrix1[0, 0] == 1791 / 2500
    assert f22.meta.noise_profile[1] == pytest.approx((7.100633249408713e-05, 2.6554446788014604e-07))
    canon = read_ntire(*write_pair(tmp_path, JSONS[2])[:2])
    assert canon.meta.model == "Canon EOS 7D" and canon.meta.white_level == 12600
    # Adobe's D65 ColorMatrix2 of the EOS 7D
    np.testing.assert_allclose(canon.meta.color_matrix2[0], [0.6844, -0.0996, -0.0856])
    huawei = read_ntire(*write_pair(tmp_path, JSONS[3])[:2])
    assert huawei.meta.cfa_pattern == "RGGB"
    np.testing.assert_array_equal(huawei.meta.black_level, [256] * 4)
    assert huawei.meta.white_level == 4095
    np.testing.assert_allclose(huawei.meta.wb_gains, [1 / 0.3305084746 / 1.0, 1.0, 1 / 0.5039224735])


def test_explicit_json_path_and_8bit_png(tmp_path):
    png = tmp_path / "other_name.png"
    mosaic = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) % 250
    cv2.imwrite(str(png), mosaic.astype(np.uint8))
    frame = read_ntire(png, data_path("night", JSONS[3]))
    np.testing.assert_array_equal(frame.data, mosaic)
    assert frame.meta.extra["json_path"].endswith(JSONS[3])


@pytest.mark.parametrize("text, code", sorted(EXIFREAD_ORIENTATIONS.items()))
def test_orientation_texts(text, code):
    base = {"black_level": [0], "white_level": [1023], "cfa_pattern": [0, 1, 1, 2]}
    assert parse_ntire_metadata({**base, "orientation": text.title()})["orientation"] == code
    assert parse_ntire_metadata({**base, "orientation": [code]})["orientation"] == code


def test_fraction_variants_and_unknown_keys():
    meta = {"black_level": [{"Fraction": [129, 2]}] * 4, "white_level": "4095/1", "cfa_pattern": [2, 1, 1, 0],
            "as_shot_neutral": [{"Fraction": [1, 2]}, 1, "7/10"], "noise_profile": [1e-4, 2e-6, 3e-4, 4e-6, 5e-4, 6e-6],
            "linearization_table": [0, 2, 4, 8], "daylight": 5}
    out = parse_ntire_metadata(meta)
    np.testing.assert_array_equal(out["black_level"], [64.5] * 4)
    assert out["white_level"] == 4095 and out["cfa_pattern"] == "BGGR"
    np.testing.assert_allclose(out["wb_gains"], [2.0, 1.0, 1 / 0.7])
    assert out["noise_profile"] == ((1e-4, 2e-6), (3e-4, 4e-6), (5e-4, 6e-6))
    np.testing.assert_array_equal(out["linearization_table"], [0, 2, 4, 8])
    assert out["extra"]["ntire"] == {"daylight": 5}


@pytest.mark.parametrize("meta, match", [
    ({"white_level": 1, "cfa_pattern": [0, 1, 1, 2]}, "black_level"),
    ({"black_level": [0], "white_level": 1, "cfa_pattern": [0, 1, 2, 2]}, "Bayer"),
    ({"black_level": [0], "white_level": 1, "cfa_pattern": [0, 1, 5, 2]}, "colour indices"),
    ({"black_level": [0, 0], "white_level": 1, "cfa_pattern": [0, 1, 1, 2]}, "1 or 4"),
    ({"black_level": [{"Fraction": [1, 0]}], "white_level": 1, "cfa_pattern": [0, 1, 1, 2]}, "Fraction"),
    ({"black_level": [0], "white_level": 1, "cfa_pattern": [0, 1, 1, 2], "orientation": "sideways"}, "orientation"),
    ({"black_level": [0], "white_level": 1, "cfa_pattern": [0, 1, 1, 2], "as_shot_neutral": [1, 0, 1]}, "positive"),
    ({"black_level": [0], "white_level": 1, "cfa_pattern": [0, 1, 1, 2], "color_matrix_1": [1, 2]}, "9 values"),
])
def test_bad_metadata(meta, match):
    with pytest.raises(RawReadError, match=match):
        parse_ntire_metadata(meta)


def test_bad_files(tmp_path):
    png, json_path, _ = write_pair(tmp_path, JSONS[0])
    json_path.unlink()
    with pytest.raises(RawReadError, match="not found"):
        read_ntire(png)
    json_path.write_text("{not json")
    with pytest.raises(RawReadError, match="JSON"):
        read_ntire(png)
    json_path.write_text("[1, 2]")
    with pytest.raises(RawReadError, match="object"):
        read_ntire(png)
    shutil.copy(data_path("night", JSONS[0]), json_path)
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(RawReadError, match="single"):
        read_ntire(rgb, json_path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"garbage" * 10)
    with pytest.raises(RawReadError, match="decode"):
        read_ntire(junk, json_path)
    with pytest.raises(RawReadError, match="no such file"):
        read_ntire(tmp_path / "missing.png", json_path)
    bad_levels = tmp_path / "levels.json"
    bad_levels.write_text(json.dumps({"black_level": [5000], "white_level": [4095], "cfa_pattern": [0, 1, 1, 2]}))
    with pytest.raises(RawReadError, match="exceed"):
        read_ntire(png, bad_levels)
