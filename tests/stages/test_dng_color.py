"""The DNG colour model end to end: tags written into a DNG, read back, rendered, checked against the spec."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import ispkit
from ispkit.frame import cfa_color_indices
from ispkit.io import write_dng
from ispkit.io.synthetic import synthesize_capture

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

SMALL = (64, 96)


@functools.lru_cache(maxsize=None)
def _capture(illuminant: str):
    return synthesize_capture(illuminant=illuminant, size=SMALL, noise=False, seed=0)


def _lightness(srgb_display: np.ndarray) -> np.ndarray:
    """CIE L* of display sRGB pixels (D65 white, Y = 1)."""
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(srgb_display, np.float64)))[..., 0]


def _reflector_mosaic(cap, reflectance: float) -> np.ndarray:
    """Raw counts of a spectrally flat reflector filling the frame, exposed as ``cap`` is."""
    m = cap.frame.meta
    neutral = cap.illuminant_rgb / cap.illuminant_rgb.max()  # camera response of a perfect reflector, max 1
    scale = 2.0 ** -m.extra["baseline_exposure"]             # the capture's exposure of that reflector
    black = np.asarray(m.black_level, np.float64).reshape(2, 2)
    idx = cfa_color_indices(m.cfa_pattern)
    h, w = SMALL
    out = np.empty(SMALL)
    for dy in (0, 1):
        for dx in (0, 1):
            level = reflectance * scale * neutral[idx[dy, dx]]
            out[dy::2, dx::2] = black[dy, dx] + level * (m.white_level - black[dy, dx])
    return np.rint(out).astype(np.uint16)


# --- issue 12 §2: the white scaling does not depend on the illuminant -----------------------------


@pytest.mark.parametrize("illuminant", ["A", "D50", "D65", "F2", "LED"])
def test_flat_reflector_renders_at_the_same_lightness_under_every_illuminant(tmp_path, illuminant):
    """DNG 1.6 ch. 6: the camera neutral, scaled to a maximum of 1, maps to the PCS white (Y = 1).

    A 50 % flat reflector exposed with the capture's BaselineExposure must
    render at L* = 116·0.5^(1/3) − 16 = 76.07 whatever the light. Normalising
    the white balance to green = 1 rendered it darker wherever green is not
    the largest neutral component (under A by the ratio G/R: L* 74.3).
    """
    cap, cap_a, cap_d65 = _capture(illuminant), _capture("A"), _capture("D65")
    m = cap.frame.meta
    path = write_dng(tmp_path / f"flat_{illuminant}.dng", _reflector_mosaic(cap, 0.5), m.cfa_pattern,
                     black_level=m.black_level, white_level=m.white_level,
                     color_matrix1=cap_a.frame.meta.color_matrix1, calibration_illuminant1=17,
                     color_matrix2=cap_d65.frame.meta.color_matrix1, calibration_illuminant2=21,
                     as_shot_neutral=1.0 / m.wb_gains, baseline_exposure=m.extra["baseline_exposure"])
    img = ispkit.render(path, "default", orient=False)
    lab_l = _lightness(img[8:-8, 8:-8].reshape(-1, 3).mean(axis=0))
    assert lab_l == pytest.approx(116.0 * 0.5 ** (1.0 / 3.0) - 16.0, abs=0.1)
    # and it is neutral: the three display channels agree
    rgb = img[8:-8, 8:-8].reshape(-1, 3).mean(axis=0)
    assert np.ptp(rgb) < 2e-3, rgb


def test_chart_white_lightness_is_illuminant_independent():
    """The ColorChecker's white patch renders at its reference L* under A as under D65."""
    lightness = {}
    for ill in ("A", "D65"):
        cap = synthesize_capture(illuminant=ill, size=(128, 192), noise=False, seed=0)  # patches clear of edges
        img = ispkit.render(cap.frame, "default")
        y0, y1, x0, x1 = cap.patch_boxes[18]
        lightness[ill] = float(_lightness(img[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)))
        assert lightness[ill] == pytest.approx(cap.reference_lab[18][0], abs=0.3), (ill, lightness)
