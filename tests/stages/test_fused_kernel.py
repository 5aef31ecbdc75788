"""The fused render kernel equals the stage-by-stage computation.

Reference: NumPy + colour-demosaicing on the whole-sample mirror-padded mosaic
(the border convention of ispkit.stages.demosaic).
"""

import numpy as np
import pytest
from colour_demosaicing import demosaicing_CFA_Bayer_bilinear, demosaicing_CFA_Bayer_Malvar2004

from ispkit.frame import CFA_PATTERNS, cfa_color_indices
from ispkit.stages._kernels.fused import (METHOD_BILINEAR, METHOD_MALVAR, fused_render_f32,
                                          fused_render_u8)

REFS = {METHOD_BILINEAR: demosaicing_CFA_Bayer_bilinear, METHOD_MALVAR: demosaicing_CFA_Bayer_Malvar2004}


def _srgb(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0), 1 / 2.4) - 0.055)


def _reference(mosaic, pattern, black, scale, wb_clip, method, hl_clip, ccm):
    h, w = mosaic.shape
    norm = (mosaic.astype(np.float64) - np.tile(black, (h // 2, w // 2))) * np.tile(scale, (h // 2, w // 2))
    norm = np.minimum(norm, wb_clip)
    rgb = REFS[method](np.pad(norm, 2, mode="reflect"), pattern)[2:-2, 2:-2]  # parity-keeping mirror
    rgb = np.minimum(rgb, hl_clip) @ ccm.T
    return _srgb(np.clip(rgb, 0, 1))


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("method", [METHOD_BILINEAR, METHOD_MALVAR])
def test_fused_matches_reference(pattern, method):
    rng = np.random.default_rng(3)
    h, w = 46, 62
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 0.5 + 0.4 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    mosaic = (64 + 900 * scene + 30 * rng.standard_normal((h, w))).astype(np.float32)
    black = np.array([[64.0, 60.0], [62.0, 66.0]])
    scale = np.array([[1.9, 1.0], [1.0, 1.4]]) / 960.0
    ccm = np.array([[1.7, -0.5, -0.2], [-0.25, 1.45, -0.2], [0.05, -0.55, 1.5]])
    cfa = cfa_color_indices(pattern)
    ref = _reference(mosaic, pattern, black, scale, 1.0, method, 1.0, ccm)
    lut = _srgb(np.linspace(0, 1, 16385))
    out = np.empty((h, w, 3), np.float32)
    fused_render_f32(mosaic, cfa, black, scale, -np.inf, 1.0, method, 1.0, ccm, 0.0, 1.0, lut, out)
    np.testing.assert_allclose(out, ref, atol=2e-5)
    codes = np.round(_srgb(np.linspace(0, 1, 65536)) * 255).astype(np.uint8)
    out8 = np.empty((h, w, 3), np.uint8)
    fused_render_u8(mosaic, cfa, black, scale, -np.inf, 1.0, method, 1.0, ccm, 0.0, 1.0, codes, out8)
    diff = np.abs(out8.astype(int) - np.round(ref * 255).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_fused_uint16_input_equals_float32():
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 4096, size=(32, 40)).astype(np.uint16)
    args = (cfa_color_indices("GRBG"), np.full((2, 2), 64.0), np.full((2, 2), 1 / 4000), 0.0, 1.0,
            METHOD_MALVAR, 1.0, np.eye(3), 0.0, 1.0, np.linspace(0, 1, 16385))
    a = np.empty((32, 40, 3), np.float32)
    b = np.empty((32, 40, 3), np.float32)
    assert fused_render_f32(raw, *args, a) == 0
    assert fused_render_f32(raw.astype(np.float32), *args, b) == 0
    np.testing.assert_array_equal(a, b)
    bad = raw.astype(np.float32)
    bad[3, 5] = np.nan
    bad[20, 7] = np.inf
    assert fused_render_f32(bad, *args, b) == 2


@pytest.mark.parametrize("method", [METHOD_BILINEAR, METHOD_MALVAR])
def test_u8_codes_saturate_and_round_at_the_table_ends(method):
    """Black → code 0, clipped white → 255, mid grey → the rounded sRGB code (table ends and rounding)."""
    h, w = 24, 32
    mosaic = np.full((h, w), 64.0, np.float32)
    mosaic[:, 12:20] = 64 + 0.2 * 960  # linear 0.2 → sRGB 0.4845 → code 124 (123.54 rounds up)
    mosaic[:, 24:] = 5000.0  # far above white: clipped, neutral
    cfa = cfa_color_indices("RGGB")
    codes = np.round(_srgb(np.linspace(0, 1, 65536)) * 255).astype(np.uint8)
    out8 = np.empty((h, w, 3), np.uint8)
    n_bad = fused_render_u8(mosaic, cfa, np.full((2, 2), 64.0), np.full((2, 2), 1 / 960), 0.0, 1.0, method, 1.0,
                            np.eye(3), 0.0, 1.0, codes, out8)
    assert n_bad == 0
    assert (out8[:, :8] == 0).all()
    assert (out8[:, 15:17] == round(float(_srgb(0.2)) * 255)).all() and round(float(_srgb(0.2)) * 255) == 124
    assert (out8[:, 28:] == 255).all()


@pytest.mark.parametrize("method", [METHOD_BILINEAR, METHOD_MALVAR])
def test_u8_non_finite_input_is_counted_not_a_crash(method):
    rng = np.random.default_rng(6)
    mosaic = rng.uniform(64, 1000, size=(40, 48)).astype(np.float32)
    mosaic[5, 7] = np.nan
    mosaic[20:22, 30:34] = np.inf
    mosaic[33, 2] = -np.inf
    codes = np.round(_srgb(np.linspace(0, 1, 65536)) * 255).astype(np.uint8)
    out8 = np.empty((40, 48, 3), np.uint8)
    n_bad = fused_render_u8(mosaic, cfa_color_indices("GBRG"), np.full((2, 2), 64.0), np.full((2, 2), 1 / 936),
                            -np.inf, np.inf, method, np.inf, np.eye(3), 0.0, 1.0, codes, out8)
    assert n_bad >= 1 + 8 + 1  # rows read twice (mirrored border, block seams) count twice
    mosaic[~np.isfinite(mosaic)] = 500.0
    assert fused_render_u8(mosaic, cfa_color_indices("GBRG"), np.full((2, 2), 64.0), np.full((2, 2), 1 / 936),
                           -np.inf, np.inf, method, np.inf, np.eye(3), 0.0, 1.0, codes, out8) == 0


@pytest.mark.parametrize("shape", [(4, 4), (4, 6), (6, 4), (8, 10), (34, 18), (66, 70)])
@pytest.mark.parametrize("method", [METHOD_BILINEAR, METHOD_MALVAR])
def test_fused_matches_reference_at_small_and_seam_sizes(shape, method):
    """Minimal frames, widths that are not a multiple of 4 or 8, and heights across the 32-row block seam."""
    h, w = shape
    rng = np.random.default_rng(h * 100 + w)
    mosaic = rng.uniform(80, 900, size=(h, w)).astype(np.float32)
    black = np.full((2, 2), 64.0)
    scale = np.array([[1.7, 1.0], [1.0, 1.3]]) / 960.0
    ccm = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]])
    for pattern in ("RGGB", "GBRG"):
        cfa = cfa_color_indices(pattern)
        ref = _reference(mosaic, pattern, black, scale, 1.0, method, 1.0, ccm)
        out = np.empty((h, w, 3), np.float32)
        assert fused_render_f32(mosaic, cfa, black, scale, -np.inf, 1.0, method, 1.0, ccm, 0.0, 1.0,
                                _srgb(np.linspace(0, 1, 16385)), out) == 0
        np.testing.assert_allclose(out, ref, atol=2e-5)
        out8 = np.empty((h, w, 3), np.uint8)
        fused_render_u8(mosaic, cfa, black, scale, -np.inf, 1.0, method, 1.0, ccm, 0.0, 1.0,
                        np.round(_srgb(np.linspace(0, 1, 65536)) * 255).astype(np.uint8), out8)
        assert np.abs(out8.astype(int) - np.round(ref * 255).astype(int)).max() <= 1
