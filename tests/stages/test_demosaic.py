"""Tests of ispkit.stages.demosaic against colour-demosaicing, OpenCV and NumPy references."""

from __future__ import annotations

import pickle
import sys
import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ispkit.errors import DomainError, InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame, cfa_color_indices
from ispkit.pipeline import STAGES
from ispkit.stages._kernels import demosaic as kern
from ispkit.stages.demosaic import DEMOSAIC_METHODS, Demosaic, demosaic, mosaic
from tests.conftest import data_path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour_demosaicing as cd

dm = sys.modules["ispkit.stages.demosaic"]  # the module (the package re-exports the function)
PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
NUMBA_METHODS = ("bilinear", "malvar2004", "menon2007")
COLOUR = {
    "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
    "malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": cd.demosaicing_CFA_Bayer_Menon2007,
}
#: frame (px) where colour-demosaicing's reflect borders differ from our mirrored ones
BORDER = {"bilinear": 1, "malvar2004": 2, "menon2007": 0}


# ---------------------------------------------------------------------------
# test images
def smooth_rgb(seed: int, h: int = 64, w: int = 96) -> np.ndarray:
    """A smooth-ish random RGB image in [0, 1] (blurred noise + gradients + one edge)."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.random((h, w, 3)), sigma=(2.0, 2.0, 0.0))
    img = (img - img.min()) / (img.max() - img.min())
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = 0.6 * img + 0.2 * np.stack([yy, xx, 1 - xx], axis=-1)
    img[:, w // 2:, 1] += 0.15  # a vertical edge in green
    return np.clip(img, 0.0, 1.0)


def read_png_rgb(path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgr is not None and bgr.dtype == np.uint8
    return bgr[..., ::-1].astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def kodim19_crop() -> np.ndarray:
    return read_png_rgb(data_path("rgb", "kodak24", "kodim19.png"))[300:396, 200:328]


def mirror_pad_reference(method: str, cfa: np.ndarray, pattern: str) -> np.ndarray:
    """colour-demosaicing on the mosaic mirror-padded by 2 px, cropped (our border convention)."""
    return COLOUR[method](np.pad(cfa, 2, mode="reflect"), pattern)[2:-2, 2:-2]


# ---------------------------------------------------------------------------
# NumPy references (plane by plane, float64, mirrored borders)
def _planes(shape, pattern):
    h, w = shape
    c = cfa_color_indices(pattern)
    idx = c[np.arange(h)[:, None] & 1, np.arange(w)[None, :] & 1]
    red_row = np.any(idx == 0, axis=1)[:, None] & np.ones((1, w), bool)
    red_col = np.any(idx == 0, axis=0)[None, :] & np.ones((h, 1), bool)
    return idx == 0, idx == 1, idx == 2, red_row, ~red_row, red_col, ~red_col


def _shifter(a, r, mode="reflect"):
    """S(dy, dx)[i, j] = a[i + dy, j + dx] with numpy 'reflect' (= scipy 'mirror') or zero padding."""
    p = np.pad(a, r, mode=mode) if mode != "zero" else np.pad(a, r)
    h, w = a.shape
    return lambda dy, dx: p[r + dy:r + dy + h, r + dx:r + dx + w]


def ref_bilinear(x, pattern):
    rm, gm, bm, rr, br, _, _ = _planes(x.shape, pattern)
    s = _shifter(x, 1)
    lr, ud = s(0, -1) + s(0, 1), s(-1, 0) + s(1, 0)
    diag = (s(-1, -1) + s(-1, 1)) + (s(1, -1) + s(1, 1))
    own = np.where(gm, 0.5 * lr, x)
    g = np.where(gm, x, 0.25 * (lr + ud))
    oth = np.where(gm, 0.5 * ud, 0.25 * diag)
    return np.stack([np.where(rr, own, oth), g, np.where(rr, oth, own)], axis=-1)


def ref_malvar2004(x, pattern):
    rm, gm, bm, rr, br, _, _ = _planes(x.shape, pattern)
    s = _shifter(x, 2)
    w1e1, n1s1 = s(0, -1) + s(0, 1), s(-1, 0) + s(1, 0)
    w2e2, n2s2 = s(0, -2) + s(0, 2), s(-2, 0) + s(2, 0)
    dg = (s(-1, -1) + s(-1, 1)) + (s(1, -1) + s(1, 1))
    cross = 0.5 * x + 0.25 * (n1s1 + w1e1) - 0.125 * (n2s2 + w2e2)
    horiz = 0.625 * x + 0.5 * w1e1 - 0.125 * (w2e2 + dg) + 0.0625 * n2s2
    vert = 0.625 * x + 0.5 * n1s1 - 0.125 * (n2s2 + dg) + 0.0625 * w2e2
    rbd = 0.75 * x + 0.25 * dg - 0.1875 * (n2s2 + w2e2)
    own = np.where(gm, horiz, x)
    g = np.where(gm, x, cross)
    oth = np.where(gm, vert, rbd)
    return np.stack([np.where(rr, own, oth), g, np.where(rr, oth, own)], axis=-1)


def ref_menon2007(x, pattern, refine=True):
    """DDFAPD written plane by plane from the paper's steps (colour-demosaicing's conventions)."""
    rm, gm, bm, rr, br, rc, bc = _planes(x.shape, pattern)
    s = _shifter(x, 2)
    gh = np.where(gm, x, 0.5 * (s(0, -1) + s(0, 1)) + (0.5 * x - 0.25 * (s(0, -2) + s(0, 2))))
    gv = np.where(gm, x, 0.5 * (s(-1, 0) + s(1, 0)) + (0.5 * x - 0.25 * (s(-2, 0) + s(2, 0))))
    ch, cv = x - gh, x - gv
    dh = np.abs(ch - _shifter(ch, 2)(0, 2))
    dv = np.abs(cv - _shifter(cv, 2)(2, 0))
    zh, zv = _shifter(dh, 2, "zero"), _shifter(dv, 2, "zero")
    d_h = zh(-2, -2) + zh(-2, 0) + zh(-1, -1) + zh(0, -2) * 3 + zh(0, 0) * 3 + zh(1, -1) + zh(2, -2) + zh(2, 0)
    d_v = zv(-2, -2) + zv(-2, 0) * 3 + zv(-2, 2) + zv(-1, -1) + zv(-1, 1) + zv(0, -2) + zv(0, 0) * 3 + zv(0, 2)
    m = d_v >= d_h
    g = np.where(m, gh, gv)

    def hz(a):
        t = _shifter(a, 1)
        return (t(0, -1) + t(0, 1)) * 0.5

    def vt(a):
        t = _shifter(a, 1)
        return (t(-1, 0) + t(1, 0)) * 0.5

    def box(a):
        t = _shifter(a, 1)
        third = 1.0 / 3.0
        return np.where(m, a * third + (t(0, -1) + t(0, 1)) * third, a * third + (t(-1, 0) + t(1, 0)) * third)

    r = np.where(rm, x, 0.0)
    b = np.where(bm, x, 0.0)
    r0, b0 = r, b
    r = np.where(gm & rr, (g + hz(r0)) - hz(g), r)
    r = np.where(gm & br, (g + vt(r0)) - vt(g), r)
    b = np.where(gm & br, (g + hz(b0)) - hz(g), b)
    b = np.where(gm & rr, (g + vt(b0)) - vt(g), b)
    r = np.where(bm, np.where(m, (b + hz(r)) - hz(b), (b + vt(r)) - vt(b)), r)
    b = np.where(rm, np.where(m, (r + hz(b)) - hz(r), (r + vt(b)) - vt(r)), b)
    if not refine:
        return np.stack([r, g, b], axis=-1)
    g2 = np.where(rm, r - box(r - g), g)
    g2 = np.where(bm, b - box(b - g), g2)
    rg, bg = r - g2, b - g2
    r2 = np.where(gm & br, g2 + vt(rg), r)
    r2 = np.where(gm & rr, g2 + hz(rg), r2)
    b2 = np.where(gm & rr, g2 + vt(bg), b)
    b2 = np.where(gm & br, g2 + hz(bg), b2)
    rb = r2 - b2
    r3 = np.where(bm, b2 + box(rb), r2)
    b3 = np.where(rm, r3 - box(rb), b2)
    return np.stack([r3, g2, b3], axis=-1)


REFERENCES = {"bilinear": ref_bilinear, "malvar2004": ref_malvar2004, "menon2007": ref_menon2007}


# ---------------------------------------------------------------------------
# agreement with colour-demosaicing
@pytest.mark.parametrize("method", NUMBA_METHODS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_colour_demosaicing_float64(method, pattern, kodim19_crop):
    for rgb in (smooth_rgb(1), kodim19_crop):
        cfa = cd.mosaicing_CFA_Bayer(rgb, pattern)
        ours = demosaic(cfa, pattern, method)
        assert ours.dtype == np.float32 and ours.shape == rgb.shape
        theirs = COLOUR[method](cfa, pattern)
        k = BORDER[method]
        inner = (slice(k, cfa.shape[0] - k), slice(k, cfa.shape[1] - k))
        assert np.abs(ours[inner] - theirs[inner]).max() <= 1e-4
        # the frame: colour-demosaicing on the mirror-padded mosaic (Menon mirrors by itself)
        assert np.abs(ours - mirror_pad_reference(method, cfa, pattern)).max() <= 1e-4 or method == "menon2007"
        if method == "menon2007":
            assert np.abs(ours - theirs).max() <= 1e-4


@pytest.mark.parametrize("method", NUMBA_METHODS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_colour_demosaicing_float32(method, pattern, kodim19_crop):
    for rgb in (smooth_rgb(2), kodim19_crop):
        cfa = cd.mosaicing_CFA_Bayer(rgb, pattern).astype(np.float32)
        ours = demosaic(cfa, pattern, method)
        theirs = COLOUR[method](cfa, pattern)  # the same mosaic (colour-demosaicing computes in float64)
        k = BORDER[method]
        diff = np.abs(ours - theirs)[k:cfa.shape[0] - k, k:cfa.shape[1] - k]
        assert np.mean(diff <= 1e-3) >= 0.999
        # stronger: Menon's classifier runs in float64, so no decision flips on the same mosaic
        assert diff.max() <= 1e-5


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2, 7), (7, 2), (5, 4), (9, 11), (33, 17)])
@pytest.mark.parametrize("method", NUMBA_METHODS)
def test_small_and_odd_sizes_match_colour(shape, method):
    rng = np.random.default_rng(sum(shape))
    cfa = rng.random(shape)
    for pattern in PATTERNS:
        ours = demosaic(cfa, pattern, method)
        if method == "menon2007":
            theirs = COLOUR[method](cfa, pattern)
        else:
            theirs = mirror_pad_reference(method, cfa, pattern)
        assert ours.shape == (*shape, 3)
        assert np.abs(ours - theirs).max() <= 1e-6


def test_menon_without_refining_step(kodim19_crop):
    for pattern in PATTERNS:
        cfa = cd.mosaicing_CFA_Bayer(kodim19_crop, pattern)
        ours = demosaic(cfa, pattern, "menon2007", refine=False)
        theirs = cd.demosaicing_CFA_Bayer_Menon2007(cfa, pattern, refining_step=False)
        assert np.abs(ours - theirs).max() <= 1e-4
        assert np.abs(ours - demosaic(cfa, pattern, "menon2007")).max() > 1e-3  # the step does something


def cpsnr(a: np.ndarray, b: np.ndarray, border: int = 10) -> float:
    """Colour PSNR over R, G, B jointly, peak 1, ``border`` px excluded."""
    d = (np.clip(a, 0, 1) - np.clip(b, 0, 1))[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean(d.astype(np.float64) ** 2)))


def test_kodak24_cpsnr_matches_colour_demosaicing():
    folder = data_path("rgb", "kodak24")
    paths = sorted(folder.glob("kodim*.png"))
    assert len(paths) == 24
    ours = {m: [] for m in NUMBA_METHODS}
    theirs = {m: [] for m in NUMBA_METHODS}
    for p in paths:
        rgb = read_png_rgb(p)
        cfa = cd.mosaicing_CFA_Bayer(rgb, "RGGB")
        cfa32 = cfa.astype(np.float32)
        for m in NUMBA_METHODS:
            ours[m].append(cpsnr(demosaic(cfa32, "RGGB", m), rgb))
            theirs[m].append(cpsnr(COLOUR[m](cfa, "RGGB"), rgb))
    print("\nKodak-24 CPSNR (RGGB, 10 px border excluded, mean of 24 images)")
    print(f"{'method':12s} {'ispkit':>9s} {'colour-demosaicing':>19s}")
    for m in NUMBA_METHODS:
        a, b = float(np.mean(ours[m])), float(np.mean(theirs[m]))
        print(f"{m:12s} {a:9.3f} {b:19.3f}")
        assert abs(a - b) <= 0.05
    # the known ordering of the three methods
    assert np.mean(ours["bilinear"]) + 3 < np.mean(ours["malvar2004"]) < np.mean(ours["menon2007"])


# ---------------------------------------------------------------------------
# Numba kernels against the NumPy references
@pytest.mark.parametrize("method", NUMBA_METHODS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_kernel_equals_numpy_reference(method, pattern):
    for shape in [(64, 96), (31, 45), (4, 6), (3, 2)]:
        cfa = mosaic(smooth_rgb(7, 64, 96), pattern)[:shape[0], :shape[1]].astype(np.float64)
        got = demosaic(cfa, pattern, method)
        want = REFERENCES[method](cfa, pattern)
        np.testing.assert_array_equal(got, want.astype(np.float32))
        got32 = demosaic(cfa.astype(np.float32), pattern, method)
        assert np.abs(got32 - want).max() <= 1e-5


def test_menon_reference_refine_false_equals_kernel():
    cfa = mosaic(smooth_rgb(8, 40, 50), "GBRG").astype(np.float64)
    np.testing.assert_array_equal(demosaic(cfa, "GBRG", "menon2007", refine=False),
                                  ref_menon2007(cfa, "GBRG", refine=False).astype(np.float32))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_band_split_does_not_change_the_result(pattern):
    """The row bands run in parallel with halos; any split must give the same image."""
    rng = np.random.default_rng(11)
    x = rng.random((45, 37)).astype(np.float32)
    cfa = cfa_color_indices(pattern)
    kc = kern.filter_constants(np.float32)
    results = []
    for nb in (1, 2, 3, 5, 9, 45):
        out = np.empty((45, 37, 3), np.float32)
        ws, wd, wm = kern.menon2007_workspace(nb, 37, np.float32)
        kern.menon2007_kernel(x, cfa, kern.color_masks(cfa, 37, kern.MENON_PAD), kc,
                              kern.filter_constants(np.float64), True, out, ws, wd, wm)
        o2 = np.empty_like(out)
        kern.malvar2004_kernel(x, cfa, kern.color_masks(cfa, 37), kc, o2, nb)
        o3 = np.empty_like(out)
        kern.bilinear_kernel(x, cfa, kern.color_masks(cfa, 37), kc, o3, nb)
        results.append((out, o2, o3))
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(results[0][0], ref_menon2007(x.astype(np.float64), pattern), atol=1e-5)


# ---------------------------------------------------------------------------
# mosaic / round trips
@pytest.mark.parametrize("pattern", PATTERNS)
def test_mosaic_matches_colour_demosaicing(pattern):
    rgb = smooth_rgb(3, 9, 7)
    m = mosaic(rgb, pattern)
    assert m.dtype == np.float32 and m.shape == (9, 7)
    np.testing.assert_array_equal(m, cd.mosaicing_CFA_Bayer(rgb, pattern).astype(np.float32))


@pytest.mark.parametrize("method", NUMBA_METHODS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_constant_image_round_trip_is_exact(method, pattern):
    for shape in [(8, 10), (7, 5), (2, 2)]:
        rgb = np.empty((*shape, 3))
        rgb[...] = (0.25, 0.625, 0.8125)
        got = demosaic(mosaic(rgb, pattern), pattern, method)
        np.testing.assert_array_equal(got, rgb.astype(np.float32))


@pytest.mark.parametrize("method", NUMBA_METHODS)
def test_mosaic_of_demosaic_returns_the_mosaic(method):
    cfa = mosaic(smooth_rgb(4), "GRBG")
    np.testing.assert_array_equal(mosaic(demosaic(cfa, "GRBG", method), "GRBG"), cfa)


# ---------------------------------------------------------------------------
# errors
@pytest.mark.parametrize("method", list(DEMOSAIC_METHODS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(method, bad):
    x = np.full((8, 8), 0.5, np.float32)
    x[3, 4] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        demosaic(x, "RGGB", method)


@pytest.mark.parametrize("method", NUMBA_METHODS)
def test_non_finite_values_are_counted(method):
    x = np.full((37, 41), 0.5)
    x[0, 0], x[20, 7], x[36, 40] = np.nan, np.inf, np.nan
    for dtype in (np.float32, np.float64):
        with pytest.raises(InputError, match=r"holds 3 NaN or infinite"):
            demosaic(x.astype(dtype), "GBRG", method)


@pytest.mark.parametrize("method", list(DEMOSAIC_METHODS))
def test_bad_shapes_raise(method):
    for shape in [(4, 4, 3), (16,), (1, 8), (8, 1), (0, 0)]:
        with pytest.raises(InputError):
            demosaic(np.zeros(shape, np.float32), "RGGB", method)
    with pytest.raises(InputError):
        demosaic(np.zeros((4, 4), np.complex64), "RGGB", method)


def test_unknown_method_and_pattern_list_valid_names():
    with pytest.raises(UnknownNameError) as err:
        demosaic(np.zeros((4, 4)), "RGGB", "ahd")
    for name in DEMOSAIC_METHODS:
        assert repr(name) in str(err.value)
    with pytest.raises(UnknownNameError, match="GBRG"):
        demosaic(np.zeros((4, 4)), "RGBG", "bilinear")
    assert set(DEMOSAIC_METHODS) == {"bilinear", "malvar2004", "menon2007", "rcd2017", "opencv_bilinear",
                                     "opencv_ea", "opencv_vng"}
    for fn in DEMOSAIC_METHODS.values():
        assert "References" in fn.__doc__


def test_refine_only_for_menon():
    x = mosaic(smooth_rgb(5, 8, 8), "RGGB")
    with pytest.raises(ParameterError, match="menon2007"):
        demosaic(x, "RGGB", "malvar2004", refine=False)
    with pytest.raises(ParameterError, match="refine"):
        demosaic(x, "RGGB", "menon2007", refine="no")


def test_out_buffer_reuse_and_checks():
    x = mosaic(smooth_rgb(6, 20, 30), "BGGR")
    for method in DEMOSAIC_METHODS:
        if method == "opencv_vng":
            continue
        out = np.full((20, 30, 3), -7.0, np.float32)
        res = demosaic(x, "BGGR", method, out=out)
        assert res is out
        np.testing.assert_array_equal(out, demosaic(x, "BGGR", method))
        demosaic(x[::-1].copy(), "GBRG", method, out=out)  # reuse the same buffer
        np.testing.assert_array_equal(out, demosaic(x[::-1].copy(), "GBRG", method))
    for bad in (np.empty((20, 30, 3), np.float64), np.empty((20, 31, 3), np.float32),
                np.empty((20, 30, 4), np.float32)[..., :3]):
        with pytest.raises(ParameterError, match="out"):
            demosaic(x, "BGGR", "malvar2004", out=bad)


def test_integer_input_is_not_rescaled():
    rng = np.random.default_rng(9)
    counts = rng.integers(0, 4096, (24, 30)).astype(np.uint16)
    for method in NUMBA_METHODS:
        got = demosaic(counts, "GRBG", method)
        np.testing.assert_array_equal(got, demosaic(counts.astype(np.float32), "GRBG", method))
        assert got.max() > 1000


def test_input_is_not_modified():
    x = mosaic(smooth_rgb(10, 16, 16), "RGGB")
    before = x.copy()
    for method in DEMOSAIC_METHODS:
        if method != "opencv_vng":
            demosaic(x, "RGGB", method)
    np.testing.assert_array_equal(x, before)


# ---------------------------------------------------------------------------
# OpenCV
@pytest.mark.parametrize("pattern", PATTERNS)
def test_opencv_bilinear_matches_ours_in_the_interior(pattern):
    """Checks the Bayer-code mapping: a wrong one would swap or shift the colours."""
    x = mosaic(smooth_rgb(12), pattern)
    ours = demosaic(x, pattern, "bilinear")
    cv = demosaic(x, pattern, "opencv_bilinear")
    assert cv.dtype == np.float32 and cv.shape == ours.shape
    assert np.abs(cv - ours)[2:-2, 2:-2].max() <= 1e-4
    # integer counts pass through unscaled
    counts = np.round(x * 4000).astype(np.uint16)
    cv_counts = demosaic(counts, pattern, "opencv_bilinear")
    assert np.abs(cv_counts - demosaic(counts, pattern, "bilinear"))[2:-2, 2:-2].max() <= 1.0


def test_opencv_legacy_code_names_agree_with_top_left_names():
    """OpenCV's two-letter Bayer names read the second row and column: RGGB is 'BG'."""
    import cv2

    for pattern, legacy in dm._OPENCV_LEGACY.items():
        for suffix in ("", "_EA", "_VNG"):
            new = getattr(cv2, f"COLOR_Bayer{pattern}2RGB{suffix}", None)
            if new is not None:
                assert new == getattr(cv2, f"COLOR_Bayer{legacy}2RGB{suffix}")
            assert dm._opencv_code(cv2, pattern, "opencv_" + {"": "bilinear", "_EA": "ea", "_VNG": "vng"}[suffix]) \
                == getattr(cv2, f"COLOR_Bayer{legacy}2RGB{suffix}")


@pytest.mark.parametrize("method", ["opencv_ea", "opencv_vng"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_opencv_methods_recover_a_constant_colour(method, pattern):
    rgb = np.empty((16, 20, 3))
    rgb[...] = np.array([51, 128, 204]) / 255.0
    got = demosaic(mosaic(rgb, pattern), pattern, method)
    assert np.abs(got - rgb)[3:-3, 3:-3].max() <= 2e-3


def test_opencv_ea_tracks_the_image(kodim19_crop):
    x = mosaic(kodim19_crop, "RGGB")
    ea = demosaic(x, "RGGB", "opencv_ea")
    bil = demosaic(x, "RGGB", "bilinear")
    assert cpsnr(ea, kodim19_crop, 4) > 25.0
    assert np.abs(ea - bil)[4:-4, 4:-4].mean() < 0.02


def test_opencv_vng_needs_8bit_data(kodim19_crop):
    x = mosaic(kodim19_crop, "RGGB")  # values k/255: representable
    vng = demosaic(x, "RGGB", "opencv_vng")
    assert cpsnr(vng, kodim19_crop, 4) > 25.0
    np.testing.assert_allclose(demosaic(np.round(x * 255).astype(np.uint8), "RGGB", "opencv_vng"), vng * 255,
                               rtol=0, atol=1e-4)
    with pytest.raises(ParameterError, match="8-bit"):
        demosaic(x + 1e-3, "RGGB", "opencv_vng")
    with pytest.raises(ParameterError, match="8-bit"):
        demosaic(np.full((8, 8), 300, np.uint16), "RGGB", "opencv_vng")


# ---------------------------------------------------------------------------
# the stage
def _frame(pattern="RGGB", shape=(12, 14)):
    data = mosaic(smooth_rgb(13, *shape), pattern)
    return Frame(data=data, domain=Domain.RAW_MOSAIC, meta=CaptureMetadata(cfa_pattern=pattern))


def test_stage_contract():
    assert STAGES["demosaic"] is Demosaic
    st = Demosaic()
    assert st.method == "malvar2004" and st.clip is False
    spec = st.spec
    assert spec.in_domains == (Domain.RAW_MOSAIC,) and spec.out_domain is Domain.CAMERA_RGB
    assert "cfa_pattern" in spec.requires
    for method in DEMOSAIC_METHODS:
        s = Demosaic(method=method, clip=True)
        assert type(s).from_params(s.to_config()["params"]) == s
        assert pickle.loads(pickle.dumps(s)) == s
    f = _frame("GBRG")
    before = f.data.copy()
    out = Demosaic(method="menon2007")(f)
    assert out.domain is Domain.CAMERA_RGB and out.data.dtype == np.float32 and out.data.shape == (12, 14, 3)
    np.testing.assert_array_equal(f.data, before)
    np.testing.assert_array_equal(out.data, demosaic(before, "GBRG", "menon2007"))
    assert out.meta.cfa_pattern == "GBRG"


def test_stage_clip_and_errors():
    f = _frame("RGGB")
    raw = Demosaic(method="malvar2004")(f).data
    clipped = Demosaic(method="malvar2004", clip=True)(f).data
    np.testing.assert_array_equal(clipped, np.clip(raw, 0, 1))
    with pytest.raises(UnknownNameError, match="malvar2004"):
        Demosaic(method="Malvar")
    with pytest.raises(ParameterError, match="clip"):
        Demosaic(clip="yes")
    rgb = Frame(data=np.zeros((4, 4, 3), np.float32), domain=Domain.CAMERA_RGB)
    with pytest.raises(DomainError):
        Demosaic()(rgb)


def test_module_exports():
    assert set(dm.__all__) == {"DEMOSAIC_METHODS", "NEAR_CLIP_METHODS", "NEAR_CLIP_SATURATION", "demosaic", "mosaic",
                               "near_clip_values", "Demosaic"}
