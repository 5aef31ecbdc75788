"""Tests of ispkit.metrics against hand-computed and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ispkit.errors import InputError, ParameterError
from ispkit.frame import Domain, Frame
from ispkit.io.synthetic import synthesize_capture
from ispkit.metrics import (
    angular_error,
    colorchecker_delta_e,
    cpsnr,
    delta_e2000,
    delta_e_summary,
    psnr,
    ssim,
    srgb_to_lab,
)


# -- PSNR ---------------------------------------------------------------------

def test_psnr_known_mse():
    a = np.zeros((8, 9, 3))
    b = np.full((8, 9, 3), 0.1)
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-12)          # MSE 0.01
    assert psnr(a * 255, b * 255, data_range=255) == pytest.approx(20.0, abs=1e-12)
    assert psnr(a, a) == math.inf


def test_psnr_border_excludes_edges():
    a = np.zeros((10, 10))
    b = a.copy()
    b[0, :] = 1.0
    b[:, -2:] = 1.0
    assert psnr(a, b, border=2) == math.inf
    # 28 differing pixels of 100 → MSE 0.28
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.28), abs=1e-12)


def test_cpsnr_joint_mse_over_channels(rng):
    a = rng.random((30, 32, 3))
    b = a + rng.normal(0, [0.01, 0.02, 0.05], size=a.shape)
    inner = (slice(10, -10), slice(10, -10))
    mse_c = [np.mean((a[inner][..., c] - b[inner][..., c]) ** 2) for c in range(3)]
    assert cpsnr(a, b) == pytest.approx(10 * math.log10(1 / np.mean(mse_c)), abs=1e-10)
    assert cpsnr(a, b, border=0) == pytest.approx(psnr(a, b), abs=1e-12)
    with pytest.raises(InputError):
        cpsnr(a[..., :2], b[..., :2])
    with pytest.raises(InputError):
        cpsnr(a[:20, :20], b[:20, :20])        # a 10 px border leaves nothing


def test_psnr_rejects_bad_input():
    a = np.zeros((4, 4))
    with pytest.raises(InputError):
        psnr(a, np.zeros((4, 5)))
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        psnr(a, bad)
    with pytest.raises(ParameterError):
        psnr(a, a, border=-1)
    with pytest.raises(ParameterError):
        psnr(a, a, data_range=0)


def test_psnr_accepts_frames(rng):
    x = rng.random((6, 6, 3)).astype(np.float32)
    fa = Frame(x, Domain.DISPLAY_RGB)
    assert psnr(fa, x * 0.5) == pytest.approx(psnr(x, x * 0.5), abs=1e-9)


# -- SSIM ---------------------------------------------------------------------

def _ssim_brute_force(x, y, data_range=1.0):
    """Window-by-window SSIM with an explicit 11×11 Gaussian (σ=1.5), 'valid' region."""
    k = np.arange(11) - 5.0
    g1 = np.exp(-k ** 2 / (2 * 1.5 ** 2))
    w = np.outer(g1, g1)
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_identical_is_one(rng):
    x = rng.random((20, 24, 3))
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_images_hand_computed():
    # σ = 0 everywhere, so SSIM = (2·μx·μy + C1) / (μx² + μy² + C1).
    x, y = np.full((16, 16), 0.2), np.full((16, 16), 0.6)
    c1 = 0.01 ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_brute_force_per_channel(rng):
    x = rng.random((15, 17, 2))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    y[..., 1] = 0.5 * x[..., 1] + 0.3               # a contrast and mean change on channel 1
    expected = np.mean([_ssim_brute_force(x[..., c], y[..., c], 2.0) for c in range(2)])
    assert ssim(x, y, data_range=2.0) == pytest.approx(expected, abs=1e-12)
    assert ssim(x[..., 0], y[..., 0]) == pytest.approx(_ssim_brute_force(x[..., 0], y[..., 0]), abs=1e-12)


def test_ssim_orders_distortions(rng):
    x = rng.random((32, 32))
    light = ssim(x, x + rng.normal(0, 0.02, x.shape))
    heavy = ssim(x, x + rng.normal(0, 0.2, x.shape))
    assert 1.0 > light > heavy > 0.0
    with pytest.raises(InputError):
        ssim(x[:10], x[:10])


def test_ssim_against_scikit_image_if_installed(rng):
    skm = pytest.importorskip("skimage.metrics")
    x = rng.random((40, 48, 3))
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    ref = skm.structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0, channel_axis=2)
    assert ssim(x, y) == pytest.approx(ref, abs=1e-9)


# -- colour differences ------------------------------------------------------------

def _srgb_gray_to_lightness(v):
    lin = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    fy = lin ** (1 / 3) if lin > (6 / 29) ** 3 else lin / (3 * (6 / 29) ** 2) + 4 / 29
    return 116 * fy - 16


def test_delta_e2000_neutrals_hand_computed():
    # For a* = b* = 0 CIEDE2000 reduces to ΔL / S_L.
    v1, v2 = 0.5, 0.55
    l1, l2 = _srgb_gray_to_lightness(v1), _srgb_gray_to_lightness(v2)
    lbar = (l1 + l2) / 2
    s_l = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    got = delta_e2000(np.array([v1] * 3), np.array([v2] * 3))
    assert float(got) == pytest.approx(abs(l2 - l1) / s_l, abs=1e-3)
    assert srgb_to_lab(np.array([1.0, 1.0, 1.0]))[0] == pytest.approx(100.0, abs=1e-3)


def test_delta_e2000_shapes_and_zero(rng):
    a = rng.random((5, 6, 3))
    assert np.all(delta_e2000(a, a) == 0)
    b = np.clip(a + 0.05, 0, 1)
    de = delta_e2000(a, b)
    assert de.shape == (5, 6) and np.all(de >= 0) and de.max() > 0.5
    with pytest.raises(InputError):
        delta_e2000(a[..., :2], b[..., :2])


def test_delta_e_summary_matches_percentiles(rng):
    a = rng.random((20, 22, 3))
    b = np.clip(a + rng.normal(0, 0.03, a.shape), 0, 1)
    de = delta_e2000(a, b)
    s = delta_e_summary(a, b)
    assert s["mean"] == pytest.approx(de.mean())
    assert s["median"] == pytest.approx(np.median(de))
    assert s["p95"] == pytest.approx(np.percentile(de, 95))
    assert s["p99"] == pytest.approx(np.percentile(de, 99))
    assert s["max"] == pytest.approx(de.max())
    s2 = delta_e_summary(a, b, border=3)
    assert s2["mean"] == pytest.approx(de[3:-3, 3:-3].mean())
    assert delta_e_summary(a, a) == {"mean": 0.0, "median": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


def test_angular_error_known_angles():
    assert angular_error([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert angular_error([1, 1, 0], [3, 0, 0]) == pytest.approx(45.0)
    assert angular_error([0.2, 0.4, 0.6], [1, 2, 3]) == pytest.approx(0.0, abs=1e-6)
    eps = 1e-9
    assert angular_error([1, eps, 0], [1, 0, 0]) == pytest.approx(math.degrees(eps), rel=1e-6)
    many = angular_error(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 2]]), np.array([1, 0, 0]))
    assert many.shape == (3,)
    np.testing.assert_allclose(many, [0.0, 45.0, 90.0], atol=1e-9)
    with pytest.raises(InputError):
        angular_error([0, 0, 0], [1, 1, 1])


# -- ColorChecker scoring ---------------------------------------------------------

@pytest.fixture(scope="module")
def small_capture():
    return synthesize_capture(size=(128, 192), illuminant="D65", noise=False)


def _paint(capture, colors, shape=None):
    h, w = capture.frame.data.shape if shape is None else shape
    img = np.full((h, w, 3), 0.1)
    sy, sx = h / capture.frame.height, w / capture.frame.width
    for (y0, y1, x0, x1), c in zip(capture.patch_boxes, colors):
        img[int(y0 * sy):int(np.ceil(y1 * sy)), int(x0 * sx):int(np.ceil(x1 * sx))] = c
    return img


def test_colorchecker_delta_e_perfect_render_is_zero(small_capture):
    cap = small_capture
    de = colorchecker_delta_e(_paint(cap, cap.reference_srgb), cap)
    assert de.shape == (24,) and de.max() < 1e-6
    half = _paint(cap, cap.reference_srgb, shape=(64, 96))
    assert colorchecker_delta_e(Frame(half.astype(np.float32), Domain.DISPLAY_RGB), cap).max() < 1e-3
    # the reference render of the whole scene shows the same patch colours
    assert colorchecker_delta_e(cap.reference_image, cap).max() < 1e-3


def test_colorchecker_delta_e_scores_each_patch(small_capture):
    cap = small_capture
    colors = cap.reference_srgb.copy()
    colors[14] = np.clip(colors[14] * [0.9, 1.0, 1.1], 0, 1)
    de = colorchecker_delta_e(_paint(cap, colors), cap)
    expected = float(delta_e2000(colors[14], cap.reference_srgb[14]))
    assert de[14] == pytest.approx(expected, abs=1e-3) and expected > 1.0
    assert np.delete(de, 14).max() < 1e-6


def test_colorchecker_delta_e_match_exposure(small_capture):
    cap = small_capture
    lin = np.where(cap.reference_srgb <= 0.04045, cap.reference_srgb / 12.92,
                   ((cap.reference_srgb + 0.055) / 1.055) ** 2.4)
    dark = lin * 0.7
    enc = np.where(dark <= 0.0031308, dark * 12.92, 1.055 * dark ** (1 / 2.4) - 0.055)
    img = _paint(cap, enc)
    assert colorchecker_delta_e(img, cap).mean() > 3.0
    assert colorchecker_delta_e(img, cap, match_exposure=True).max() < 1e-3
    with pytest.raises(InputError):
        colorchecker_delta_e(img[..., 0], cap)
