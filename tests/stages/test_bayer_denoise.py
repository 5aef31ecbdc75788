"""Bayer denoising: PSNR gains on Kodak mosaics, noise estimation, VST, flat fields, plug-ins."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest

from ispkit.errors import DomainError, InputError, ParameterError, UnknownNameError
from ispkit.frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame, cfa_color_indices
from ispkit.stages._kernels import denoise as K
from ispkit.stages.bayer_denoise import (
    BAYER_DENOISE_METHODS,
    BayerDenoise,
    denoise_bayer,
    estimate_noise_profile,
    merge_cfa_planes,
    register_bayer_denoise_method,
    split_cfa_planes,
)
from tests.conftest import data_path

CLASSICAL = ("bilateral", "nlm", "wavelet")
LEVELS = ((0.001, 1e-5), (0.005, 1e-4), (0.02, 4e-4))  # (shot scale a, read variance b)


def psnr(x, ref) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(x, np.float64) - ref) ** 2)))


def mosaic_of(rgb, pattern="RGGB"):
    ci = cfa_color_indices(pattern)
    out = np.empty(rgb.shape[:2], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, ci[dy, dx]]
    return out


def add_noise(x, a, b, seed):
    """Poisson-Gaussian noise: variance a·x + b (a = gain per electron, b = read variance)."""
    rng = np.random.default_rng(seed)
    return (a * rng.poisson(np.maximum(x, 0) / a) + rng.normal(0.0, np.sqrt(b), x.shape)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def kodak_crops(n=6, size=256):
    import cv2

    files = sorted(data_path("rgb", "kodak24").glob("*.png"))[::4][:n]
    if len(files) < n:
        pytest.skip("Kodak images missing")
    crops = []
    for f in files:
        v = cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1] / 255.0
        lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        y0, x0 = (lin.shape[0] - size) // 4 * 2, (lin.shape[1] - size) // 4 * 2
        crops.append(lin[y0:y0 + size, x0:x0 + size].astype(np.float32))
    return tuple(crops)


def smooth_scene(h=192, w=256):
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    base = 0.05 + 0.8 * (0.5 * xx + 0.3 * yy + 0.2 * np.sin(3 * xx) ** 2)
    return base.astype(np.float32)


# ---------------------------------------------------------------------------
# the PSNR table
# ---------------------------------------------------------------------------

def test_psnr_gain_on_kodak_mosaics():
    crops = kodak_crops()
    results = {}  # (method, mode, level) → (noisy, denoised) lists
    for li, (a, b) in enumerate(LEVELS):
        for ci, rgb in enumerate(crops):
            clean = mosaic_of(rgb)
            noisy = add_noise(clean, a, b, seed=100 * li + ci)
            est = estimate_noise_profile(noisy)  # what sigma=None uses inside
            for method in CLASSICAL:
                for mode, prof in (("true", ((a, b),)), ("estimated", (est,))):
                    out = denoise_bayer(noisy, "RGGB", method, noise_profile=prof)
                    assert out.dtype == np.float32 and out.shape == clean.shape
                    r = results.setdefault((method, mode, li), ([], []))
                    r[0].append(psnr(noisy, clean))
                    r[1].append(psnr(out, clean))
    print(f"\nPSNR (dB) on {len(crops)} Kodak 256×256 RGGB mosaics, noise variance a·x + b")
    print(f"{'method':<10}{'σ from':<11}" + "".join(f"{f'a={a:g}, b={b:g}':>32}" for a, b in LEVELS))
    print(f"{'':<21}" + "".join(f"{'noisy → denoised (gain, min)':>32}" for _ in LEVELS))
    for method in CLASSICAL:
        for mode in ("true", "estimated"):
            cells = []
            for li in range(len(LEVELS)):
                n, d = (np.array(v) for v in results[(method, mode, li)])
                cells.append(f"{n.mean():.2f} → {d.mean():.2f} (+{(d - n).mean():.2f}, {(d - n).min():+.2f})")
            print(f"{method:<10}{mode:<11}" + "".join(f"{c:>32}" for c in cells))
    for (method, mode, li), (n, d) in results.items():
        gain = np.array(d) - np.array(n)
        if li >= 1:
            assert gain.mean() >= 1.0, (method, mode, LEVELS[li], gain)
        if li == 2:
            assert gain.min() >= 0.5, (method, mode, gain)


def test_sigma_none_uses_the_estimate():
    rgb = kodak_crops()[0][:128, :128]
    clean = mosaic_of(rgb)
    noisy = add_noise(clean, 0.02, 4e-4, seed=7)
    prof = estimate_noise_profile(noisy)
    np.testing.assert_array_equal(denoise_bayer(noisy, "RGGB", "wavelet"),
                                  denoise_bayer(noisy, "RGGB", "wavelet", noise_profile=(prof,)))


# ---------------------------------------------------------------------------
# noise estimation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.004, 0.02, 0.05])
def test_constant_sigma_estimate_on_smooth_scene(sigma):
    clean = smooth_scene()
    noisy = clean + np.random.default_rng(3).normal(0, sigma, clean.shape).astype(np.float32)
    a, b = estimate_noise_profile(noisy)
    est = np.sqrt(a * clean.mean() + b)
    assert abs(est / sigma - 1) < 0.1, (a, b, est)


def test_poisson_gaussian_profile_on_smooth_scene():
    clean = smooth_scene(256, 320)
    a, b = 0.01, 2e-4
    ea, eb = estimate_noise_profile(add_noise(clean, a, b, seed=5))
    for x in (0.1, 0.4, 0.8):
        assert abs(np.sqrt(ea * x + eb) / np.sqrt(a * x + b) - 1) < 0.1
    assert abs(ea / a - 1) < 0.2


def test_sigma_estimate_on_kodak_within_20_percent():
    """σ at the median signal level, estimated from the noisy mosaic, against the true profile."""
    rows = []
    for li, (a, b) in enumerate(LEVELS[1:], start=1):
        ratios = []
        for ci, rgb in enumerate(kodak_crops()):
            clean = mosaic_of(rgb)
            ea, eb = estimate_noise_profile(add_noise(clean, a, b, seed=100 * li + ci))
            xm = float(np.median(clean))
            ratios.append(np.sqrt(ea * xm + eb) / np.sqrt(a * xm + b))
        ratios = np.array(ratios)
        rows.append(ratios)
        print(f"\nσ estimate / truth at a={a}, b={b}: {np.round(ratios, 3)}")
        assert abs(np.median(ratios) - 1) < 0.2
        # Kodak is film: grain and texture add to the estimate when the added noise is low
        assert np.all(np.abs(ratios - 1) < (0.2 if li == 2 else 0.3))


def test_tiny_input_uses_immerkaer_and_noise_free_gives_zero():
    rng = np.random.default_rng(1)
    flat = np.full((60, 64), 0.4, np.float32)
    a, b = estimate_noise_profile(flat + rng.normal(0, 0.03, flat.shape).astype(np.float32))
    assert a == 0.0 and abs(np.sqrt(b) / 0.03 - 1) < 0.1
    assert estimate_noise_profile(flat) == (0.0, 0.0)
    assert estimate_noise_profile(np.full((400, 400), 0.2, np.float32)) == (0.0, 0.0)


def test_estimate_ignores_clipped_patches():
    clean = smooth_scene(256, 256) * 1.6  # the bright part clips at 1
    noisy = np.minimum(add_noise(clean, 0.005, 1e-4, seed=2), 1.0)
    a, b = estimate_noise_profile(noisy, white_level=1.0)
    assert abs(np.sqrt(a * 0.4 + b) / np.sqrt(0.005 * 0.4 + 1e-4) - 1) < 0.15


# ---------------------------------------------------------------------------
# variance stabilisation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [(0.01, 1e-4), (0.002, 1e-6), (0.05, 1e-3)])
def test_gat_stabilises_and_inverse_is_unbiased(a, b):
    xs = np.array([0.02, 0.1, 0.5, 0.9])
    n = 200_000
    z = np.stack([add_noise(np.full(n, x, np.float32), a, b, seed=int(x * 100)) for x in xs])
    z = z.reshape(4, 1, n)
    f = np.empty_like(z)
    K.gat_forward(z, np.full(4, a), np.full(4, b), f)
    std = f.std(axis=2).ravel()
    # unit variance; below a few expected counts (x / a) no transform stabilises exactly
    tol = np.where(xs / a < 5, 0.1, 0.03)
    assert np.all(np.abs(std - 1) < tol), std
    mean = f.mean(axis=2, keepdims=True).astype(np.float32)
    back = np.empty_like(mean)
    K.gat_inverse(mean, np.full(4, a), np.full(4, b), back)
    # the exact unbiased inverse maps E[f(z)] back to x (the algebraic inverse would not)
    np.testing.assert_allclose(back.ravel(), xs, rtol=0.02, atol=2e-3)


def test_gat_gaussian_branch_is_linear():
    z = np.random.default_rng(0).normal(0.3, 0.02, (4, 8, 8)).astype(np.float32)
    f = np.empty_like(z)
    K.gat_forward(z, np.zeros(4), np.full(4, 4e-4), f)
    np.testing.assert_allclose(f, z / 0.02, rtol=1e-6)
    back = np.empty_like(f)
    K.gat_inverse(f, np.zeros(4), np.full(4, 4e-4), back)
    np.testing.assert_allclose(back, z, rtol=1e-6)


def test_split_merge_roundtrip(rng):
    x = rng.random((6, 10)).astype(np.float32)
    p = split_cfa_planes(x)
    assert p.shape == (4, 3, 5)
    np.testing.assert_array_equal(merge_cfa_planes(p), x)


def test_bilateral_kernel_matches_numpy(rng):
    src = rng.normal(size=(4, 11, 13)).astype(np.float32)
    rad = 2
    yy, xx = np.mgrid[-rad:rad + 1, -rad:rad + 1]
    sp = np.exp(-(yy ** 2 + xx ** 2) / 3.0).astype(np.float32)
    out = np.empty_like(src)
    padded = np.pad(src, ((0, 0), (rad, rad), (rad, rad)), mode="reflect")
    K.joint_bilateral(padded, padded, sp, np.float32(0.2), out)
    pad = padded.astype(np.float64)
    num = np.zeros(src.shape)
    den = np.zeros(src.shape[1:])
    for dy in range(-rad, rad + 1):
        for dx in range(-rad, rad + 1):
            nb = pad[:, rad + dy:rad + dy + 11, rad + dx:rad + dx + 13]
            wgt = sp[dy + rad, dx + rad] * np.exp(-0.2 * ((nb - src) ** 2).sum(axis=0))
            num += wgt * nb
            den += wgt
    np.testing.assert_allclose(out, num / den, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# flat fields, patterns, odd sizes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", CLASSICAL)
def test_flat_field_stays_flat(method):
    level = np.array([0.3, 0.5, 0.2], np.float32)
    clean = mosaic_of(np.broadcast_to(level, (96, 128, 3)).copy(), "GBRG")
    # noise-free input with a given σ: every CFA plane stays exactly constant
    out = denoise_bayer(clean, "GBRG", method, sigma=0.01)
    for p, c in zip(split_cfa_planes(out), split_cfa_planes(clean)):
        assert np.ptp(p) < 1e-5 and abs(p.mean() - c.mean()) < 1e-4
    # noise-free input without σ: nothing to remove, returned untouched
    np.testing.assert_array_equal(denoise_bayer(clean, "GBRG", method), clean)
    # noisy flat field: the noise drops, the levels stay
    noisy = add_noise(clean, 0.005, 1e-4, seed=11)
    den = denoise_bayer(noisy, "GBRG", method, noise_profile=((0.005, 1e-4),))
    for p, n, c in zip(split_cfa_planes(den), split_cfa_planes(noisy), split_cfa_planes(clean)):
        assert p.std() < 0.5 * n.std()
        assert abs(p.mean() / c.mean() - 1) < 0.01


def test_every_cfa_pattern_with_per_color_sigma():
    rgb = kodak_crops()[2][:128, :128]
    sig = np.array([0.03, 0.015, 0.045], np.float32)
    gains = {}
    for pattern in CFA_PATTERNS:
        clean = mosaic_of(rgb, pattern)
        smap = mosaic_of(np.broadcast_to(sig, rgb.shape).copy(), pattern)
        noisy = clean + smap * np.random.default_rng(4).standard_normal(clean.shape).astype(np.float32)
        gains[pattern] = np.array([psnr(denoise_bayer(noisy, pattern, m, sigma=tuple(sig)), clean)
                                   - psnr(noisy, clean) for m in CLASSICAL])
        assert gains[pattern].min() > 1.0, (pattern, gains[pattern])
    # one scene, four layouts: every method gains about the same on each
    g = np.stack(list(gains.values()))
    assert np.all(g.max(axis=0) - g.min(axis=0) < 0.3), g


@pytest.mark.parametrize("shape", [(33, 40), (32, 41), (17, 9)])
def test_odd_sizes(shape, rng):
    x = (0.3 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    for m in CLASSICAL:
        out = denoise_bayer(x, "RGGB", m, sigma=0.05)
        assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert out.std() < x.std()


def test_strength_zero_and_scaling():
    clean = mosaic_of(np.broadcast_to(np.float32([0.3, 0.5, 0.2]), (64, 64, 3)).copy())
    noisy = add_noise(clean, 0.01, 1e-4, seed=3)
    np.testing.assert_array_equal(denoise_bayer(noisy, "RGGB", "bilateral", sigma=0.05, strength=0), noisy)
    weak = denoise_bayer(noisy, "RGGB", "bilateral", noise_profile=((0.01, 1e-4),), strength=0.3)
    strong = denoise_bayer(noisy, "RGGB", "bilateral", noise_profile=((0.01, 1e-4),), strength=2.0)
    assert strong.std() < weak.std()


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

@pytest.fixture
def no_providers(monkeypatch):
    import ispkit.pipeline.registry as registry

    monkeypatch.setattr(registry, "load_providers", lambda: [])


@pytest.mark.parametrize("kwargs,exc", [
    (dict(method="bm3d"), UnknownNameError),
    (dict(cfa_pattern="RGBG"), UnknownNameError),
    (dict(strength=-1.0), ParameterError),
    (dict(strength=np.nan), ParameterError),
    (dict(sigma=-0.1), ParameterError),
    (dict(sigma=(0.1, 0.2)), ParameterError),
    (dict(noise_profile=((0.1,),)), ParameterError),
    (dict(noise_profile=((-1e-3, 1e-4),)), ParameterError),
    (dict(radius=0), ParameterError),
    (dict(range_scale=-1.0), ParameterError),
    (dict(method="nlm", template_size=4), ParameterError),
    (dict(method="nlm", h_scale=0), ParameterError),
    (dict(method="wavelet", levels=0), ParameterError),
    (dict(method="wavelet", window=2), ParameterError),
    (dict(method="wavelet", radius=2), ParameterError),  # not a wavelet parameter
])
def test_bad_parameters_raise(kwargs, exc, no_providers):
    args = dict(cfa_pattern="RGGB", method="bilateral")
    args.update(kwargs)
    with pytest.raises(exc):
        denoise_bayer(np.full((8, 8), 0.5, np.float32), args.pop("cfa_pattern"), args.pop("method"), **args)


@pytest.mark.parametrize("x", [np.full((8, 8, 3), 0.5), np.ones(8), np.ones((1, 8)),
                               np.array([[0.5, np.nan], [0.5, 0.5]]), np.array([[0.5, np.inf], [0.5, 0.5]])])
def test_bad_input_raises(x):
    with pytest.raises(InputError):
        denoise_bayer(x, "RGGB", "bilateral", sigma=0.1)
    if x.ndim == 2 and x.shape[0] > 1:
        with pytest.raises(InputError):
            estimate_noise_profile(x)


# ---------------------------------------------------------------------------
# stage
# ---------------------------------------------------------------------------

def raw_frame(data, **meta):
    meta.setdefault("cfa_pattern", "RGGB")
    return Frame(np.asarray(data, np.float32), Domain.RAW_MOSAIC, CaptureMetadata(**meta))


def test_stage_uses_noise_profile_and_sigma():
    clean = mosaic_of(kodak_crops()[2][:96, :96])
    noisy = add_noise(clean, 0.005, 1e-4, seed=9)
    f = raw_frame(noisy, noise_profile=((0.005, 1e-4),), white_point=(1, 1, 1))
    out = BayerDenoise(method="wavelet")(f)
    np.testing.assert_array_equal(out.data, denoise_bayer(noisy, "RGGB", "wavelet", noise_profile=((0.005, 1e-4),)))
    np.testing.assert_array_equal(f.data, noisy)  # input unchanged
    assert out.domain is Domain.RAW_MOSAIC and out.data.dtype == np.float32
    out = BayerDenoise(method="bilateral", sigma=0.02, strength=0.5)(f)
    np.testing.assert_array_equal(out.data, denoise_bayer(noisy, "RGGB", "bilateral", sigma=0.02, strength=0.5))


def test_stage_on_raw_counts_normalises_and_restores():
    clean = mosaic_of(kodak_crops()[3][:64, :64])
    noisy = add_noise(clean, 0.01, 2e-4, seed=1)
    black, white = 600.0, 15520.0
    counts = noisy * (white - black) + black
    out = BayerDenoise(method="nlm", sigma=0.02)(raw_frame(counts, black_level=[black] * 4, white_level=white))
    ref = denoise_bayer(noisy, "RGGB", "nlm", sigma=0.02) * (white - black) + black
    np.testing.assert_allclose(out.data, ref, rtol=1e-5, atol=0.02)


def test_stage_on_tiny_frame_contract():
    f = raw_frame(np.random.default_rng(0).uniform(0.2, 0.4, (6, 8)), white_point=(1, 1, 1))
    for m in CLASSICAL:
        out = BayerDenoise(method=m)(f)
        assert out.shape == f.shape and out.data.dtype == np.float32 and np.isfinite(out.data).all()
    with pytest.raises(DomainError):
        BayerDenoise()(Frame(np.zeros((4, 4, 3), np.float32), Domain.CAMERA_RGB))


def test_stage_config_roundtrip_and_pickle(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"")  # a weights path must exist when the stage is built
    for st in (BayerDenoise(), BayerDenoise(method="wavelet", sigma=0.01, strength=1.5),
               BayerDenoise(method="nlm", weights=str(tmp_path / "x.pt"), device="cpu")):
        cfg = st.to_config()
        assert type(st).from_params(cfg["params"]) == st
        assert pickle.loads(pickle.dumps(st)) == st
    assert BayerDenoise.from_params({"sigma": 1}).sigma == 1.0
    spec = BayerDenoise().spec
    assert spec.in_domains == (Domain.RAW_MOSAIC,) and spec.out_domain is Domain.RAW_MOSAIC
    assert spec.requires == ("cfa_pattern",)


@pytest.mark.parametrize("kwargs", [dict(method="nope"), dict(sigma=-1.0), dict(sigma="0.1"), dict(strength=-0.5),
                                    dict(strength=True), dict(weights=5), dict(device="")])
def test_stage_bad_params(kwargs, no_providers):
    with pytest.raises(ParameterError):
        BayerDenoise(**kwargs)


# ---------------------------------------------------------------------------
# plug-in API
# ---------------------------------------------------------------------------

def _fake_unet(mosaic, cfa_pattern, sigma, weights=None, device="auto"):
    _fake_unet.calls.append((mosaic.shape, cfa_pattern, sigma, weights, device))
    return mosaic * np.float32(0.5)


_fake_unet.calls = []  # type: ignore[attr-defined]


@pytest.fixture
def fake_unet():
    register_bayer_denoise_method("fake_unet", _fake_unet, params=("weights", "device"))
    yield "fake_unet"
    BAYER_DENOISE_METHODS.pop("fake_unet", None)


def test_plugin_gets_fields_sigma_and_even_mosaic(fake_unet, tmp_path):
    x = np.full((6, 9), 0.4, np.float32)
    f = raw_frame(x, noise_profile=((0.01, 1e-4),), white_point=(1, 1, 1))
    w = tmp_path / "unet.pt"
    w.write_bytes(b"")  # a weights path must exist when the stage is built
    out = BayerDenoise(method=fake_unet, weights=str(w), device="cpu", strength=2.0)(f)
    shape, pattern, sigma, weights, device = _fake_unet.calls[-1]
    assert shape == (6, 10) and pattern == "RGGB" and weights == str(w) and device == "cpu"
    np.testing.assert_allclose(sigma, 2.0 * np.sqrt(0.01 * 0.4 + 1e-4), rtol=1e-5)  # σ map × strength
    assert sigma.shape == (6, 10)
    np.testing.assert_allclose(out.data, 0.2)
    assert out.shape == (6, 9)
    denoise_bayer(x, "GRBG", fake_unet, sigma=0.05)
    assert _fake_unet.calls[-1][2] == 0.05
    # per-colour σ arrives as a map laid out like the CFA
    denoise_bayer(np.zeros((4, 4), np.float32), "GRBG", fake_unet, sigma=(1.0, 2.0, 3.0))
    np.testing.assert_array_equal(_fake_unet.calls[-1][2][:2, :2], [[2.0, 1.0], [3.0, 2.0]])
    # nothing known: the estimated profile becomes the map
    noisy = add_noise(np.full((64, 64), 0.3, np.float32), 0.01, 1e-4, seed=0)
    denoise_bayer(noisy, "RGGB", fake_unet)
    smap = _fake_unet.calls[-1][2]
    assert smap.shape == (64, 64) and abs(np.median(smap) / np.sqrt(0.01 * 0.3 + 1e-4) - 1) < 0.2
    with pytest.raises(ParameterError):
        denoise_bayer(x, "RGGB", fake_unet, sigma=0.1, radius=3)


def test_plugin_registration_rejects(fake_unet):
    register_bayer_denoise_method(fake_unet, _fake_unet, params=("weights", "device"))  # same fn again: fine
    with pytest.raises(ParameterError):
        register_bayer_denoise_method(fake_unet, lambda m, c, s: m)
    with pytest.raises(ParameterError):
        register_bayer_denoise_method("bilateral", _fake_unet)
    for name, fn, params in [("Bad", _fake_unet, ()), ("ok", None, ()), ("ok", _fake_unet, "weights")]:
        with pytest.raises(ParameterError):
            register_bayer_denoise_method(name, fn, params=params)
    assert "ok" not in BAYER_DENOISE_METHODS


def test_plugin_wrong_shape_raises():
    register_bayer_denoise_method("bad_shape", lambda m, c, s: m[:2])
    try:
        with pytest.raises(InputError):
            denoise_bayer(np.zeros((4, 4), np.float32), "RGGB", "bad_shape", sigma=0.1)
    finally:
        BAYER_DENOISE_METHODS.pop("bad_shape")


def test_method_table():
    assert set(CLASSICAL) <= set(BAYER_DENOISE_METHODS)


@pytest.mark.parametrize("shape, kwargs", [
    ((96, 130), dict(noise_profile=[(0.002, 1e-5)])),
    ((97, 131), dict(sigma=0.02, strength=1.4)),
    ((80, 96), dict(noise_profile=[(0.002, 1e-5), (0.0, 0.0), (0.004, 0.0), (1e-4, 1e-6)])),
])
def test_nlm_mosaic_fast_path_equals_the_plane_path(monkeypatch, shape, kwargs):
    """The one-pass split+GAT+quantise / decode+inverse+merge kernels give the plane path's numbers exactly."""
    import dataclasses

    rng = np.random.default_rng(7)
    ramp = np.linspace(0.05, 0.4, shape[1])[None, :] * np.ones((shape[0], 1))
    x = (ramp + rng.normal(0, 0.02, shape)).astype(np.float32)
    fast = denoise_bayer(x, "GRBG", "nlm", **kwargs)
    entry = BAYER_DENOISE_METHODS["nlm"]
    assert entry.mosaic_fn is not None
    monkeypatch.setitem(BAYER_DENOISE_METHODS, "nlm", dataclasses.replace(entry, mosaic_fn=None))
    slow = denoise_bayer(x, "GRBG", "nlm", **kwargs)
    assert fast.shape == x.shape
    np.testing.assert_array_equal(fast, slow)
    err = np.abs(fast - ramp)[0::2, 1::2].mean()  # R (top right in GRBG) always has noise
    assert err < 0.7 * np.abs(x - ramp)[0::2, 1::2].mean()


def _nlm_reference(planes, h, search=9, template=3):
    """Brute-force joint NLM (exact exp weights, OpenCV's NORM_L1 weighting) in NumPy."""
    c, hh, ww = planes.shape
    p = search // 2 + template // 2
    pad = np.pad(planes.astype(np.float64), ((0, 0), (p, p), (p, p)), mode="reflect")
    t = template // 2
    s = search // 2
    acc = np.zeros((c, hh, ww))
    wsum = np.zeros((hh, ww))
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            d = np.zeros((hh, ww))
            for ty in range(-t, t + 1):
                for tx in range(-t, t + 1):
                    a = pad[:, p + ty:p + ty + hh, p + tx:p + tx + ww]
                    b = pad[:, p + dy + ty:p + dy + ty + hh, p + dx + tx:p + dx + tx + ww]
                    d += np.abs(a - b).sum(axis=0)
            wt = np.exp(-np.square(d / template ** 2) / (c * h * h))
            wt[wt < 1e-3] = 0.0
            acc += wt * pad[:, p + dy:p + dy + hh, p + dx:p + dx + ww]
            wsum += wt
    return acc / wsum


def test_nlm_kernel_matches_a_numpy_reference_and_opencv():
    import cv2

    from ispkit.stages.bayer_denoise import _nlm

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:37, 0:45]
    clean = 4.0 + 3.0 * np.sin(xx / 5.0) + 3.0 * (yy > 18)
    planes = (np.stack([clean * f for f in (1.0, 1.1, 0.9, 0.8)]) + rng.normal(0, 1, (4, 37, 45))).astype(np.float32)
    ours = _nlm(planes, 1.4)
    ref = _nlm_reference(planes, 1.8 * 1.4)
    assert np.abs(ours - ref).max() < 0.005         # weight table vs exact exp (unit noise σ); measured 4e-4
    # the weighting is OpenCV's fastNlMeansDenoising(NORM_L1) on the 4-channel image (16-bit codes, 64 per σ)
    lo = float(planes.min())
    q = np.rint((planes - lo) * 64).astype(np.uint16).transpose(1, 2, 0).copy()
    cv = cv2.fastNlMeansDenoising(q, h=[1.8 * 1.4 * 64], templateWindowSize=3, searchWindowSize=9,
                                  normType=cv2.NORM_L1).transpose(2, 0, 1) / 64.0 + lo
    assert np.sqrt(np.mean((ours - cv) ** 2)) < 0.015  # measured 0.0046
    assert np.sqrt(np.mean((ours - clean * np.array([1.0, 1.1, 0.9, 0.8])[:, None, None]) ** 2)) < 0.5  # σ 1 → 0.34
