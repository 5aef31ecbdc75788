"""Night scenes with known truth (ispkit.io.night): noise statistics, darkening, lamps, re-mosaicing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ispkit.errors import InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata
from ispkit.io.night import (
    Lamp,
    darken_capture,
    photo_night_scene,
    remosaic_display_image,
    synthetic_night_scene,
)
from ispkit.io.ntire import parse_ntire_metadata

from ..conftest import data_path

NTIRE_2023 = (1.0826276035706111e-4, 3.175930183461187e-07)   # nightimaging23_test.json noise_profile


def _meta(**kw) -> CaptureMetadata:
    base = {"black_level": np.full(4, 512.0), "white_level": 16383.0, "cfa_pattern": "RGGB",
            "wb_gains": np.array([2.0, 1.0, 1.5]), "cam_to_xyz": np.eye(3)}
    base.update(kw)
    return CaptureMetadata(**base)


def _normalised(frame) -> np.ndarray:
    m = frame.meta
    return (frame.data - m.black_level[0]) / (m.white_level - m.black_level[0])


def test_noise_follows_the_profile():
    """variance(noisy - clean) = scale·x + offset at two signal levels (within 5 %)."""
    h, w = 512, 512
    clean = np.full((h, w), 0.02, np.float32)
    clean[:, w // 2:] = 0.2
    scene = darken_capture(clean, _meta(), stops=0.0, noise_profile=(NTIRE_2023,), seed=7)
    diff = _normalised(scene.frame) - _normalised(scene.clean)
    for x, cols in ((0.02, slice(0, w // 2)), (0.2, slice(w // 2, w))):
        want = NTIRE_2023[0] * x + NTIRE_2023[1] + (1 / 12) / (16383 - 512) ** 2   # + rounding
        assert np.var(diff[:, cols]) == pytest.approx(want, rel=0.05)
        assert abs(float(diff[:, cols].mean())) < 4 * np.sqrt(want / diff[:, cols].size)


def test_darkening_scales_the_clean_signal_and_keeps_metadata():
    clean = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    m = _meta()
    a = darken_capture(clean, m, stops=4.0, noise_profile=(NTIRE_2023,), seed=1)
    b = darken_capture(clean, m, stops=6.0, noise_profile=(NTIRE_2023,), seed=1)
    np.testing.assert_allclose(_normalised(b.clean), _normalised(a.clean) / 4.0, atol=1e-6)
    assert a.frame.meta.noise_profile == (NTIRE_2023,) * 3
    assert a.clean.meta == a.frame.meta          # same decisions downstream (denoise, exposure floor)
    assert a.frame.meta.extra["night_stops"] == 4.0
    assert np.all(a.frame.data == np.rint(a.frame.data)) and a.frame.data.max() <= m.white_level
    again = darken_capture(clean, m, stops=4.0, noise_profile=(NTIRE_2023,), seed=1)
    np.testing.assert_array_equal(again.frame.data, a.frame.data)
    assert not np.array_equal(darken_capture(clean, m, stops=4.0, noise_profile=(NTIRE_2023,), seed=2).frame.data,
                              a.frame.data)


def test_lamp_cores_clip_in_every_channel_and_glow_in_colour():
    clean = np.zeros((128, 128), np.float32)
    scene = darken_capture(clean, _meta(), stops=5.0, noise_profile=(NTIRE_2023,),
                           lamps=(Lamp(0.5, 0.5, 8.0, "sodium"),), seed=0)
    core = scene.lamp_mask
    assert 60 < core.sum() < np.pi * 8 ** 2
    assert core[64, 64] and not core[64, 80]
    x = _normalised(scene.clean)
    assert np.all(x[core] >= 1.0 - 1e-6)                  # every CFA sample of the core clipped
    # glow just outside the core: sodium → red (RGGB R at even/even) far above blue (odd/odd)
    assert x[64, 82] > 5 * x[65, 83] > 0


def test_synthetic_scene_has_lamps_greys_and_truth():
    scene = synthetic_night_scene(stops=6.0, size=(128, 192), seed=0)
    assert scene.frame.data.shape == scene.clean.data.shape == scene.lamp_mask.shape == (128, 192)
    assert scene.lamp_mask.any() and len(scene.neutral_boxes) >= 4
    assert scene.illuminant_rgb[1] == 1.0
    np.testing.assert_allclose(scene.illuminant_rgb, 1.0 / scene.frame.meta.wb_gains, rtol=1e-6)
    assert "6ev" in scene.name


def test_bad_arguments_raise_clear_errors():
    m = _meta()
    with pytest.raises(ParameterError, match="stops"):
        darken_capture(np.zeros((8, 8)), m, stops=-1, noise_profile=(NTIRE_2023,))
    with pytest.raises(ParameterError, match="noise_profile"):
        darken_capture(np.zeros((8, 8)), m, stops=1, noise_profile=(-1.0, 0.0))
    with pytest.raises(InputError, match="H×W"):
        darken_capture(np.zeros((8, 8, 2)), m, stops=1, noise_profile=(NTIRE_2023,))
    with pytest.raises(UnknownNameError, match="lamp kind"):
        darken_capture(np.zeros((8, 8)), m, stops=1, noise_profile=(NTIRE_2023,), lamps=(Lamp(0.5, 0.5, 2, "moon"),))
    with pytest.raises(InputError, match="cam_to_xyz"):
        darken_capture(np.zeros((8, 8)), _meta(cam_to_xyz=None), stops=1, noise_profile=(NTIRE_2023,),
                       lamps=(Lamp(0.5, 0.5, 2),))


def test_remosaic_of_grey_gives_the_illuminant_response():
    """A grey JPEG re-mosaiced and white-balanced by the recorded gains is flat."""
    path = data_path("night", "nightimaging23_test.json")
    meta = CaptureMetadata(**parse_ntire_metadata(json.loads(path.read_text())))
    grey = np.full((8, 8, 3), 0.5, np.float32)
    mosaic, m2 = remosaic_display_image(grey, meta)
    assert m2.wb_gains is not None and m2.wb_gains[1] == 1.0
    from ispkit.frame import cfa_color_indices

    idx = np.tile(cfa_color_indices(m2.cfa_pattern), (4, 4))
    balanced = mosaic * np.asarray(m2.wb_gains)[idx]
    np.testing.assert_allclose(balanced, balanced.mean(), rtol=1e-4)
    lin = ((0.5 + 0.055) / 1.055) ** 2.4
    assert balanced.mean() == pytest.approx(0.9 * lin / float((1 / m2.wb_gains).max()), rel=1e-3)


def test_photo_scene_from_the_night_challenge_jpeg():
    jpg = data_path("night", "nightimaging23_test.jpg")
    scene = photo_night_scene(jpg, stops=4.0, size=(216, 324), seed=0)
    assert scene.frame.data.shape == (216, 324)
    assert scene.frame.meta.cfa_pattern == "GBRG" and scene.frame.meta.noise_profile[0] == pytest.approx(NTIRE_2023)
    assert scene.lamp_mask.any()                      # the shop sign's blown letters
    assert float(_normalised(scene.clean)[scene.lamp_mask].min()) >= 1.0 - 1e-6
