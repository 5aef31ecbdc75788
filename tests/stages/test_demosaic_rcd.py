"""Tests of the RCD (Sanz Rodríguez 2017) demosaicing kernel: golden behaviour, a NumPy reference, CPSNR."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ispkit.errors import InputError
from ispkit.frame import cfa_color_indices
from ispkit.stages._kernels import demosaic as kern
from ispkit.stages.demosaic import demosaic, mosaic
from tests.conftest import data_path
from tests.stages.test_demosaic import PATTERNS, cpsnr, read_png_rgb, smooth_rgb

EPS, EPSSQ, PAD = 1e-5, 1e-10, 10


# ---------------------------------------------------------------------------
# NumPy reference: the published steps written over whole planes (float64)
def ref_rcd2017(x: np.ndarray, pattern: str) -> np.ndarray:
    """RCD on the mosaic mirror-padded by 10 px (numpy 'reflect' = whole-sample mirror), cropped."""
    h, w = x.shape
    X = np.pad(np.asarray(x, np.float64), PAD, mode="reflect")
    c = cfa_color_indices(pattern)
    col = c[(np.arange(X.shape[0])[:, None] - PAD) & 1, (np.arange(X.shape[1])[None, :] - PAD) & 1]
    green = col == 1

    def s(a, dy, dx):  # s(a, dy, dx)[i, j] = a[i + dy, j + dx]; the wrapped margin never reaches the crop
        return np.roll(a, (-dy, -dx), axis=(0, 1))

    def disc(d):  # refined discrimination: the diagonal mean when it is further from 1/2
        nb = 0.25 * ((s(d, -1, -1) + s(d, -1, 1)) + (s(d, 1, -1) + s(d, 1, 1)))
        return np.where(np.abs(0.5 - d) < np.abs(0.5 - nb), nb, d)

    def hpf2(dy, dx):  # squared (1, -3, -1, 6, -1, -3, 1) response along (dy, dx)
        return ((s(X, -3 * dy, -3 * dx) - s(X, -dy, -dx) - s(X, dy, dx) + s(X, 3 * dy, 3 * dx))
                - 3.0 * (s(X, -2 * dy, -2 * dx) + s(X, 2 * dy, 2 * dx)) + 6.0 * X) ** 2

    # step 1: V/H discrimination
    tv, th = hpf2(1, 0), hpf2(0, 1)
    vs = np.maximum(EPSSQ, (s(tv, -1, 0) + tv) + s(tv, 1, 0))
    hs = np.maximum(EPSSQ, (s(th, 0, -1) + th) + s(th, 0, 1))
    vh = disc(vs / (vs + hs))
    # step 2: low-pass filter (floored at 0)
    lp = np.maximum(0.25 * X + 0.125 * ((s(X, -1, 0) + s(X, 1, 0)) + (s(X, 0, -1) + s(X, 0, 1)))
                    + 0.0625 * ((s(X, -1, -1) + s(X, -1, 1)) + (s(X, 1, -1) + s(X, 1, 1))), 0.0)

    # step 3: green at the chroma sites
    def grad(dy, dx):
        return (EPS + np.abs(s(X, dy, dx) - s(X, -dy, -dx)) + np.abs(X - s(X, 2 * dy, 2 * dx))
                + np.abs(s(X, dy, dx) - s(X, 3 * dy, 3 * dx)) + np.abs(s(X, 2 * dy, 2 * dx) - s(X, 4 * dy, 4 * dx)))

    def ratio_est(dy, dx):
        far = s(lp, 2 * dy, 2 * dx)
        return s(X, dy, dx) * (1.0 + (lp - far) / (EPS + lp + far))

    ng, sg, wg, eg = grad(-1, 0), grad(1, 0), grad(0, -1), grad(0, 1)
    v_est = (sg * ratio_est(-1, 0) + ng * ratio_est(1, 0)) / (ng + sg)
    h_est = (wg * ratio_est(0, 1) + eg * ratio_est(0, -1)) / (eg + wg)
    G = np.where(green, X, vh * h_est + (1.0 - vh) * v_est)
    # step 4.1: P/Q discrimination
    tp, tq = hpf2(1, 1), hpf2(1, -1)
    ps = np.maximum(EPSSQ, (s(tp, -1, -1) + tp) + s(tp, 1, 1))
    qs = np.maximum(EPSSQ, (s(tq, -1, 1) + tq) + s(tq, 1, -1))
    pq = disc(ps / (ps + qs))
    out = {1: G}
    for k in (0, 2):
        C = np.where(col == k, X, 0.0)

        # step 4.2: colour k at the sites of the other chroma colour
        def dgrad(dy, dx):
            return (EPS + np.abs(s(C, dy, dx) - s(C, -dy, -dx)) + np.abs(s(C, dy, dx) - s(C, 3 * dy, 3 * dx))
                    + np.abs(G - s(G, 2 * dy, 2 * dx)))

        def diff(dy, dx):
            return s(C, dy, dx) - s(G, dy, dx)

        nw, ne, sw, se = dgrad(-1, -1), dgrad(-1, 1), dgrad(1, -1), dgrad(1, 1)
        p_est = (nw * diff(1, 1) + se * diff(-1, -1)) / (nw + se)
        q_est = (ne * diff(1, -1) + sw * diff(-1, 1)) / (ne + sw)
        C = np.where(col == 2 - k, G + pq * q_est + (1.0 - pq) * p_est, C)
        # step 4.3: colour k at the green sites
        cn, cs, cw, ce = s(C, -1, 0), s(C, 1, 0), s(C, 0, -1), s(C, 0, 1)
        ng = EPS + np.abs(G - s(G, -2, 0)) + np.abs(cn - cs) + np.abs(cn - s(C, -3, 0))
        sg = EPS + np.abs(G - s(G, 2, 0)) + np.abs(cs - cn) + np.abs(cs - s(C, 3, 0))
        wg = EPS + np.abs(G - s(G, 0, -2)) + np.abs(cw - ce) + np.abs(cw - s(C, 0, -3))
        eg = EPS + np.abs(G - s(G, 0, 2)) + np.abs(ce - cw) + np.abs(ce - s(C, 0, 3))
        v_est = (ng * (cs - s(G, 1, 0)) + sg * (cn - s(G, -1, 0))) / (ng + sg)
        h_est = (eg * (cw - s(G, 0, -1)) + wg * (ce - s(G, 0, 1))) / (eg + wg)
        out[k] = np.where(green, G + vh * h_est + (1.0 - vh) * v_est, C)
    return np.stack([out[0], out[1], out[2]], axis=-1)[PAD:PAD + h, PAD:PAD + w]


# ---------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
def test_kernel_equals_numpy_reference(pattern):
    for shape in [(64, 96), (31, 45), (150, 23), (12, 14)]:
        cfa = mosaic(smooth_rgb(7, 150, 96), pattern)[:shape[0], :shape[1]].astype(np.float64)
        want = ref_rcd2017(cfa, pattern)
        got = demosaic(cfa, pattern, "rcd2017")
        # float64 arithmetic in both; the kernel groups a few sums differently, then rounds to float32
        assert np.abs(got - want).max() <= 1e-6
        assert np.abs(got - cfa[..., None]).max() > 1e-3  # interpolation happened


@pytest.mark.parametrize("pattern", PATTERNS)
def test_flat_field_stays_flat(pattern):
    for shape in [(8, 10), (7, 5), (2, 2), (131, 9)]:
        rgb = np.empty((*shape, 3))
        rgb[...] = (0.25, 0.625, 0.8125)
        np.testing.assert_array_equal(demosaic(mosaic(rgb, pattern), pattern, "rcd2017"), rgb.astype(np.float32))


def test_four_patterns_agree_on_rephased_mosaics():
    """RGGB cropped by a row and/or a column is GBRG/GRBG/BGGR; the interiors must agree exactly."""
    rgb = smooth_rgb(21, 80, 90)
    base = demosaic(mosaic(rgb, "RGGB"), "RGGB", "rcd2017")
    for (dy, dx), pattern in {(0, 1): "GRBG", (1, 0): "GBRG", (1, 1): "BGGR"}.items():
        shifted = demosaic(mosaic(rgb[dy:, dx:], pattern), pattern, "rcd2017")
        np.testing.assert_array_equal(shifted[PAD:-PAD, PAD:-PAD], base[dy:, dx:][PAD:-PAD, PAD:-PAD])


@pytest.mark.parametrize("nslots", [1, 2, 3])
def test_tiling_does_not_change_the_result(nslots):
    rng = np.random.default_rng(5)
    x = rng.random((300, 41)).astype(np.float32)  # three tiles, the last one short
    cfa = cfa_color_indices("GBRG")
    out = np.empty((300, 41, 3), np.float32)
    kern.rcd2017_kernel(x, cfa, kern.color_masks(cfa, 41, kern.RCD_PAD), kern.rcd_constants(np.float32), out,
                        kern.rcd2017_workspace(nslots, 41, np.float32))
    np.testing.assert_array_equal(out, demosaic(x, "GBRG", "rcd2017"))


def test_non_finite_values_are_counted():
    x = np.full((140, 41), 0.5)
    x[0, 0], x[130, 7], x[139, 40] = np.nan, np.inf, np.nan
    for dtype in (np.float32, np.float64):
        with pytest.raises(InputError, match=r"holds 3 NaN or infinite"):
            demosaic(x.astype(dtype), "GBRG", "rcd2017")


def test_mosaic_of_demosaic_returns_the_mosaic_and_input_is_kept():
    cfa = mosaic(smooth_rgb(4), "GRBG")
    before = cfa.copy()
    np.testing.assert_array_equal(mosaic(demosaic(cfa, "GRBG", "rcd2017"), "GRBG"), cfa)
    np.testing.assert_array_equal(cfa, before)


# ---------------------------------------------------------------------------
# quality
def _hsv_to_rgb(h, s, v):
    def f(n):
        k = (n + h * 6.0) % 6.0
        return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return np.stack([f(5.0), f(3.0), f(1.0)], axis=-1)


def saturated_scene(seed: int, h: int = 192, w: int = 256) -> np.ndarray:
    """A McMaster-like scene: saturated hue ramps and blocks of saturated colours, edges blurred by 0.7 px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = _hsv_to_rgb((xx / w + 0.1 * np.sin(yy / 7.0)) % 1.0, np.full((h, w), 0.9), 0.35 + 0.6 * yy / h)
    n = (h // 16, w // 16)
    blocks = _hsv_to_rgb(rng.random(n), 0.75 + 0.25 * rng.random(n), 0.3 + 0.7 * rng.random(n))
    rgb = np.where(((yy // 48 + xx // 64) % 2 == 0)[..., None], ramp, np.kron(blocks, np.ones((16, 16, 1))))
    return gaussian_filter(rgb, (0.7, 0.7, 0.0))


def test_saturated_colours_rcd_beats_malvar_and_menon():
    """McMaster (IMAX) is not in the shared data; this synthetic saturated scene stands in for it."""
    scores = {m: [] for m in ("bilinear", "malvar2004", "menon2007", "rcd2017")}
    for seed in (0, 1):
        rgb = saturated_scene(seed)
        cfa = mosaic(rgb, "RGGB")
        for m in scores:
            scores[m].append(cpsnr(demosaic(cfa, "RGGB", m), rgb))
    mean = {m: float(np.mean(v)) for m, v in scores.items()}
    print("\nsaturated synthetic scene CPSNR:", {m: round(v, 2) for m, v in mean.items()})
    # colour-difference methods assume correlated channels; with saturated colours they lose to bilinear
    assert mean["rcd2017"] > mean["bilinear"] + 1.0
    assert mean["rcd2017"] > mean["malvar2004"] + 3.0
    assert mean["rcd2017"] > mean["menon2007"] + 3.0


def test_kodak24_rcd_beats_malvar():
    folder = data_path("rgb", "kodak24")
    paths = sorted(folder.glob("kodim*.png"))
    if len(paths) != 24:
        pytest.skip(f"Kodak-24 not found in {folder}")
    scores = {m: [] for m in ("bilinear", "malvar2004", "menon2007", "rcd2017")}
    for p in paths:
        rgb = read_png_rgb(p)
        cfa = mosaic(rgb, "RGGB")
        for m in scores:
            scores[m].append(cpsnr(demosaic(cfa, "RGGB", m), rgb))
    mean = {m: float(np.mean(v)) for m, v in scores.items()}
    print("\nKodak-24 CPSNR (RGGB, 10 px border excluded):", {m: round(v, 3) for m, v in mean.items()})
    assert mean["rcd2017"] > mean["malvar2004"] + 0.5
    assert mean["bilinear"] + 3 < mean["malvar2004"]
