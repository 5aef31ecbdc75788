"""Transfer functions: colour-science and LibRaw references, round trips, the stages."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from ispkit.errors import DomainError, InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import STAGES
from ispkit.stages._kernels.gamma import fast_pow_f32
from ispkit.stages.gamma import (GAMMA_CURVES, Gamma, GammaExpand, dcraw_gamma_coefficients, gamma_compress,
                                 gamma_expand)
from tests.conftest import data_path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

CURVES = sorted(GAMMA_CURVES)


def _grid() -> np.ndarray:
    """Dense [0, 1] grid plus log-spaced small values and the curves' break points."""
    special = [0.0, 0.0031308, 0.04045, 12.92 * 0.0031308, 0.018, 0.081, 1.099 * 0.018 ** 0.45 - 0.099,
               np.nextafter(0.018, 0), np.nextafter(0.0031308, 1), 1.0]
    return np.concatenate([np.linspace(0.0, 1.0, 200_001), np.geomspace(1e-9, 1.0, 5001), special])


REFERENCES = [
    ("srgb", gamma_compress, colour.models.eotf_inverse_sRGB),
    ("srgb", gamma_expand, colour.models.eotf_sRGB),
    ("rec709", gamma_compress, colour.models.oetf_BT709),
    ("rec709", gamma_expand, colour.models.oetf_inverse_BT709),
]


@pytest.mark.parametrize("curve, fn, ref", REFERENCES, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-6), (np.float64, 1e-6)])
def test_matches_colour_science(curve, fn, ref, dtype, tol):
    x = _grid().astype(dtype)
    expected = ref(x.astype(np.float64))
    got = fn(x, curve)
    assert got.dtype == dtype
    err = np.abs(got.astype(np.float64) - expected).max()
    assert err <= tol, f"{curve} {fn.__name__} {np.dtype(dtype).name}: max error {err:.3g}"


def test_float64_is_exact_to_rounding():
    x = _grid()
    assert np.abs(gamma_compress(x, "srgb") - colour.models.eotf_inverse_sRGB(x)).max() < 1e-12
    assert np.abs(gamma_expand(x, "rec709") - colour.models.oetf_inverse_BT709(x)).max() < 1e-12


@pytest.mark.parametrize("gamma", [2.2, 3.2, 1.0, 0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_power_matches_numpy(gamma, dtype):
    x = np.linspace(0, 4, 100_001).astype(dtype)
    ref = np.power(x.astype(np.float64), 1 / gamma)
    got = gamma_compress(x, "power", gamma=gamma)
    assert np.allclose(got, ref, rtol=1e-6, atol=1e-7)
    ref_inv = np.power(x.astype(np.float64), gamma)
    assert np.allclose(gamma_expand(x, "power", gamma=gamma), ref_inv, rtol=1e-6, atol=1e-7)


def test_fast_pow_kernel_matches_numpy():
    import numba

    @numba.njit
    def run(x, q, out):
        for i in range(x.size):
            out[i] = fast_pow_f32(x[i], q)

    x = np.geomspace(1e-6, 1e3, 200_001).astype(np.float32)
    for q in (0.45, 1 / 2.4, 2.4, 3.2, -1.0):
        out = np.empty_like(x)
        run(x, np.float32(q), out)
        ref = x.astype(np.float64) ** np.float64(np.float32(q))
        assert np.abs(out / ref - 1).max() < 2e-6, q
    out = np.empty(3, np.float32)
    run(np.array([0.0, 1e-45, 1.0], np.float32), np.float32(0.5), out)
    assert out[0] == 0 and out[2] == 1.0


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("dtype, tol", [(np.float32, 3e-6), (np.float64, 1e-12)])
def test_round_trip(curve, dtype, tol):
    x = np.concatenate([np.linspace(-2, 4, 60_001), np.geomspace(1e-7, 1, 1001)]).astype(dtype)
    back = gamma_expand(gamma_compress(x, curve), curve)
    assert np.allclose(back, x, rtol=tol, atol=tol)
    y = np.linspace(-1.5, 2, 30_001).astype(dtype)
    if curve == "rec709":  # the OETF jumps over (0.081, 0.08125): those codes are never produced
        y = y[(np.abs(y) < 0.081) | (np.abs(y) >= 1.099 * 0.018 ** 0.45 - 0.099)]
    assert np.allclose(gamma_compress(gamma_expand(y, curve), curve), y, rtol=tol, atol=tol)


@pytest.mark.parametrize("curve", CURVES)
def test_negative_values_mirror(curve):
    x = np.linspace(0, 3, 3001)
    assert np.array_equal(gamma_compress(-x, curve), -gamma_compress(x, curve))
    assert np.array_equal(gamma_expand(-x, curve), -gamma_expand(x, curve))


def test_clip_and_values_above_one():
    x = np.array([-0.5, 0.0, 0.5, 1.0, 4.0])
    clipped = gamma_compress(x, "srgb", clip=True)
    assert clipped[0] == 0 and clipped[-1] == pytest.approx(1.0) and clipped[3] == pytest.approx(1.0)
    free = gamma_compress(x, "power", gamma=2.2)
    assert free[-1] == pytest.approx(4.0 ** (1 / 2.2), rel=1e-12)
    assert gamma_compress(x, "srgb")[-1] == pytest.approx(1.055 * 4.0 ** (1 / 2.4) - 0.055, rel=1e-12)
    assert np.array_equal(gamma_compress(x, "linear", clip=True), np.clip(x, 0, 1))


def test_dcraw_matches_libraw_curve():
    """rawpy's gamma=(p, ts) output equals dcraw(...) applied to its linear (1, 1) output, bit for bit."""
    import rawpy

    path = data_path("raw", "kodak_dc50.kdc")

    def render(g):
        with rawpy.imread(str(path)) as raw:
            return raw.postprocess(gamma=g, no_auto_bright=True, output_bps=16, user_flip=0, half_size=True)

    linear = render((1, 1)).astype(np.float64)  # LibRaw's curve for (1, 1) is the identity
    for g in [(2.222, 4.5), (2.4, 12.92), (2.2, 0.0), (3.2, 0.0)]:
        encoded = render(g).astype(np.int64)
        ours = gamma_compress(linear / 65536.0, "dcraw", gamma=g[0], toe_slope=g[1])
        ours = np.minimum(np.floor(65536.0 * ours), 65535).astype(np.int64)  # LibRaw: curve[i] = 0x10000 * f(i / imax)
        assert np.array_equal(ours, encoded), g


def test_dcraw_coefficients_and_known_curves():
    g = dcraw_gamma_coefficients(2.222, 4.5)
    assert g[0] == pytest.approx(1 / 2.222) and g[1] == 4.5
    assert g[3] == pytest.approx(0.018, abs=1e-4) and g[4] == pytest.approx(0.099, abs=1e-3)  # ~BT.709
    x = np.linspace(0, 1, 10001)
    assert np.abs(gamma_compress(x, "dcraw", gamma=2.222, toe_slope=4.5) - colour.models.oetf_BT709(x)).max() < 1e-3
    assert np.abs(gamma_compress(x, "dcraw", gamma=2.4, toe_slope=12.92) - colour.models.eotf_inverse_sRGB(x)).max() < 1e-3
    assert np.array_equal(gamma_compress(x, "dcraw", gamma=2.2, toe_slope=0.0), gamma_compress(x, "power", gamma=2.2))
    # the junction is C1: value and slope of toe and power segment agree
    p, ts, _, x0, off, _ = dcraw_gamma_coefficients(2.4, 12.92)
    assert ts * x0 == pytest.approx(x0 ** p * (1 + off) - off, rel=1e-9)
    assert ts == pytest.approx(p * x0 ** (p - 1) * (1 + off), rel=1e-6)


def test_out_buffer_and_dtypes():
    x = np.linspace(0, 1, 1000, dtype=np.float32)
    buf = x.copy()
    res = gamma_compress(buf, "srgb", out=buf)
    assert res is buf and np.allclose(buf, gamma_compress(x, "srgb"))
    with pytest.raises(ParameterError, match="out"):
        gamma_compress(x, out=np.empty(1000, np.float64))
    assert gamma_compress(np.arange(3, dtype=np.uint8)).dtype == np.float32
    assert gamma_compress(np.zeros((0, 3), np.float32)).shape == (0, 3)
    img = np.random.default_rng(0).random((7, 5, 3)).astype(np.float32)
    assert gamma_compress(img[:, ::2]).shape == (7, 3, 3)  # non-contiguous input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_raises(bad):
    x = np.array([0.1, bad, 0.3], np.float32)
    for fn in (gamma_compress, gamma_expand):
        for curve in ("srgb", "linear"):
            with pytest.raises(InputError, match="NaN or inf"):
                fn(x, curve)


def test_bad_arguments():
    with pytest.raises(UnknownNameError, match="srgb"):
        gamma_compress(np.ones(3), "sRGB2")
    with pytest.raises(ParameterError, match="gamma"):
        gamma_compress(np.ones(3), "power", gamma=0)
    with pytest.raises(ParameterError, match="toe_slope"):
        gamma_compress(np.ones(3), "dcraw", toe_slope=-1)


# -- stages ----------------------------------------------------------------

def _frame(domain=Domain.LINEAR_RGB, seed=0):
    data = np.random.default_rng(seed).random((6, 8, 3)).astype(np.float32)
    return Frame(data, domain, CaptureMetadata(color_space="sRGB"))


def test_stage_registered_and_contract():
    assert STAGES["gamma"] is Gamma and STAGES["gamma_expand"] is GammaExpand
    for cls in (Gamma, GammaExpand):
        stage = cls()
        assert cls.from_params(stage.to_config()["params"]) == stage
        assert pickle.loads(pickle.dumps(stage)) == stage


@pytest.mark.parametrize("domain", [Domain.LINEAR_RGB, Domain.CAMERA_RGB])
def test_gamma_stage(domain):
    f = _frame(domain)
    before = f.data.copy()
    out = Gamma()(f)
    assert out.domain is Domain.DISPLAY_RGB and out.data.dtype == np.float32
    assert np.allclose(out.data, colour.models.eotf_inverse_sRGB(f.data.astype(np.float64)), atol=2e-6)
    assert np.array_equal(f.data, before)
    assert out.meta.extra["transfer_function"] == {"curve": "srgb"}
    back = GammaExpand()(out)
    assert back.domain is Domain.LINEAR_RGB and np.allclose(back.data, f.data, atol=3e-6)
    assert "transfer_function" not in back.meta.extra


def test_stage_domains_and_params():
    with pytest.raises(DomainError):
        Gamma()(_frame(Domain.DISPLAY_RGB))
    with pytest.raises(DomainError):
        GammaExpand()(_frame(Domain.LINEAR_RGB))
    with pytest.raises(UnknownNameError, match="'gamma'.*'curve'"):
        Gamma(curve="log")
    with pytest.raises(ParameterError, match="'gamma'.*'gamma'.*-2"):
        Gamma(gamma=-2.0)
    with pytest.raises(ParameterError, match="clip"):
        GammaExpand(clip="yes")
    s = Gamma(curve="dcraw", gamma=2.222, toe_slope=4.5)
    assert Gamma.from_params(s.to_config()["params"]) == s
    out = s(_frame())
    assert out.meta.extra["transfer_function"] == {"curve": "dcraw", "gamma": 2.222, "toe_slope": 4.5}
