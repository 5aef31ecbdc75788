"""Finishing stages: unsharp mask, chroma denoise, resize, quantise."""

from __future__ import annotations

import pickle
import warnings

import cv2
import numpy as np
import pytest
from scipy import ndimage

from ispkit.errors import DomainError, InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import STAGES
from ispkit.stages.chroma_denoise import ChromaDenoise, chroma_denoise, rgb_to_ycbcr, ycbcr_to_rgb
from ispkit.stages.quantize import Quantize, dequantize, quantize
from ispkit.stages.resize import RESIZE_METHODS, Resize, resize
from ispkit.stages.sharpen import Sharpen, unsharp_mask

RGB_DOMAINS = [Domain.CAMERA_RGB, Domain.LINEAR_RGB, Domain.DISPLAY_RGB]


def _img(shape=(48, 64, 3), seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _frame(domain=Domain.DISPLAY_RGB, shape=(12, 16, 3), seed=0):
    return Frame(_img(shape, seed), domain, CaptureMetadata(color_space="sRGB"))


# -- sharpen -------------------------------------------------------------------

def test_unsharp_mask_matches_scipy_reference():
    img = _img()
    for sigma in (1.0, 2.5):
        blur = np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), sigma, mode="mirror", truncate=4.0)
                         for c in range(3)], axis=-1)
        ref = img + 0.7 * (img - blur)
        assert np.allclose(unsharp_mask(img, amount=0.7, radius=sigma), ref, atol=2e-5)


def test_unsharp_mask_properties():
    flat = np.full((20, 20, 3), 0.4, np.float32)
    assert np.allclose(unsharp_mask(flat, 2.0, 1.5), flat)
    step = np.zeros((20, 40), np.float32)
    step[:, 20:] = 1.0
    sharp = unsharp_mask(step, 1.0, 1.0)
    assert sharp.max() > 1.05 and sharp.min() < -0.05  # overshoot on both sides of the edge
    assert np.array_equal(unsharp_mask(step, 0.0), step)
    noise = (0.5 + 0.005 * np.random.default_rng(1).standard_normal((32, 32))).astype(np.float32)
    assert np.array_equal(unsharp_mask(noise, 1.0, 1.0, threshold=0.05), noise)  # small detail left out
    rgb = _img(seed=2)
    out = unsharp_mask(rgb, 1.0, 1.0, luma_only=True)
    assert np.allclose(rgb_to_ycbcr(out)[..., 1:], rgb_to_ycbcr(rgb)[..., 1:], atol=1e-5)  # chroma untouched
    assert not np.allclose(out, rgb)


def test_unsharp_mask_validation():
    with pytest.raises(ParameterError, match="'sharpen'.*radius"):
        Sharpen(radius=0.0)
    with pytest.raises(ParameterError, match="amount"):
        unsharp_mask(_img(), amount=-1)
    bad = _img()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InputError):
        unsharp_mask(bad)


# -- chroma denoise ------------------------------------------------------------

def test_ycbcr_matches_colour_science():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    rgb = _img((10, 10, 3))
    ref = colour.RGB_to_YCbCr(rgb.astype(np.float64), K=colour.WEIGHTS_YCBCR["ITU-R BT.709"],
                              in_legal=False, out_legal=False, in_int=False, out_int=False)
    assert np.allclose(rgb_to_ycbcr(rgb), ref, atol=1e-6)
    assert np.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-6)


def test_chroma_denoise_keeps_luma_and_reduces_chroma_noise():
    rng = np.random.default_rng(3)
    base = np.zeros((96, 96, 3), np.float32)
    base[:, :48] = (0.6, 0.3, 0.2)
    base[:, 48:] = (0.2, 0.4, 0.6)
    noisy = np.clip(base + 0.05 * rng.standard_normal(base.shape).astype(np.float32), 0, 1)
    out = chroma_denoise(noisy, strength=1.0, radius=2.0)
    y_in, y_out = rgb_to_ycbcr(noisy), rgb_to_ycbcr(out)
    assert np.abs(y_out[..., 0] - y_in[..., 0]).max() < 1e-5
    clean = rgb_to_ycbcr(base)
    interior = (slice(8, -8), np.r_[8:40, 56:88])
    var_in = ((y_in - clean)[interior][..., 1:] ** 2).mean()
    var_out = ((y_out - clean)[interior][..., 1:] ** 2).mean()
    assert var_out < var_in / 10, (var_in, var_out)
    assert np.allclose(chroma_denoise(noisy, strength=0.0), noisy, atol=1e-6)
    half = chroma_denoise(noisy, strength=0.5)
    assert np.allclose(rgb_to_ycbcr(half)[..., 1:], 0.5 * (y_in[..., 1:] + y_out[..., 1:]), atol=1e-5)


def test_chroma_denoise_validation():
    with pytest.raises(ParameterError, match="'chroma_denoise'.*strength.*1.5"):
        ChromaDenoise(strength=1.5)
    with pytest.raises(InputError):
        chroma_denoise(np.zeros((4, 4), np.float32))


# -- resize --------------------------------------------------------------------

def test_resize_area_equals_block_mean():
    img = _img((40, 60, 3))
    out = resize(img, 0.5)
    ref = img.reshape(20, 2, 30, 2, 3).mean(axis=(1, 3))
    assert out.shape == (20, 30, 3) and np.allclose(out, ref, atol=1e-6)
    out = resize(img, size=(10, 15), method="area")
    assert np.allclose(out, img.reshape(10, 4, 15, 4, 3).mean(axis=(1, 3)), atol=1e-6)


@pytest.mark.parametrize("method", sorted(RESIZE_METHODS))
def test_resize_matches_opencv(method):
    img = _img((30, 40, 3))
    out = resize(img, size=(45, 70), method=method)
    assert out.shape == (45, 70, 3) and out.dtype == np.float32
    assert np.array_equal(out, cv2.resize(img, (70, 45), interpolation=RESIZE_METHODS[method]))
    assert resize(img[..., 0], 2.0, method=method).shape == (60, 80)


def test_resize_validation_and_stage():
    img = _img((8, 8, 3))
    with pytest.raises(UnknownNameError, match="lanczos"):
        resize(img, 0.5, method="sinc")
    with pytest.raises(ParameterError, match="not both"):
        resize(img, 0.5, size=(4, 4))
    with pytest.raises(ParameterError, match="size"):
        Resize(size=(0, 4))
    with pytest.raises(ParameterError, match="scale"):
        Resize(scale=-1.0)
    stage = Resize(size=(6, 4), method="lanczos")
    assert Resize.from_params(stage.to_config()["params"]) == stage
    for domain in RGB_DOMAINS:
        out = stage(_frame(domain))
        assert out.shape == (6, 4, 3) and out.domain is domain
    assert np.array_equal(Resize()(_frame()).data, _frame().data)  # default: unchanged
    assert Resize(scale=0.5)(_frame()).shape == (6, 8, 3)
    mosaic = Frame(np.zeros((8, 8), np.float32), Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    with pytest.raises(DomainError):
        stage(mosaic)


# -- quantize ------------------------------------------------------------------

def test_quantize_rounds_half_to_even_and_clips():
    lsb = 1 / 255
    x = np.array([0, 0.5 * lsb, 1.5 * lsb, 2.5 * lsb, 0.49 * lsb, 0.51 * lsb, 1.0, 1.2, -0.1])
    assert quantize(x).tolist() == [0, 0, 2, 2, 0, 1, 255, 255, 0]
    q16 = quantize(np.array([0.5 / 65535, 1.5 / 65535, 1.0]), 16)
    assert q16.dtype == np.uint16 and q16.tolist() == [0, 2, 65535]


def test_quantize_error_statistics():
    x = np.random.default_rng(5).random(1_000_000).astype(np.float32)
    for bits in (8, 16):
        top = (1 << bits) - 1
        err = quantize(x, bits).astype(np.float64) - x.astype(np.float64) * top
        assert np.abs(err).max() <= 0.5 + 1e-3 and abs(err.mean()) < 2e-3
    assert np.allclose(dequantize(quantize(x)), np.rint(x * 255) / 255, atol=1e-7)


def test_tpdf_dither_mean_of_constant_field():
    field = np.full((512, 512), 0.5 / 255, np.float32)
    assert quantize(field).max() == 0  # without dither the half step vanishes
    d = quantize(field, dither="tpdf", seed=7)
    assert d.mean() == pytest.approx(0.5, abs=0.01)
    assert set(np.unique(d)) <= {0, 1, 2}
    assert np.array_equal(d, quantize(field, dither=True, seed=7))  # reproducible; True means "tpdf"
    assert not np.array_equal(d, quantize(field, dither="tpdf", seed=8))
    ramp = np.linspace(0.2, 0.2 + 3 / 255, 4000, dtype=np.float32)
    assert np.abs(quantize(np.tile(ramp, (400, 1)), dither="tpdf").mean(axis=0) - ramp * 255).max() < 0.15


def test_quantize_validation_and_stage():
    with pytest.raises(ParameterError, match="bit_depth"):
        quantize(np.zeros(3), 12)
    with pytest.raises(UnknownNameError, match="tpdf"):
        quantize(np.zeros(3), dither="rpdf")
    with pytest.raises(InputError):
        quantize(np.array([np.nan]))
    with pytest.raises(ParameterError, match="'quantize'.*seed"):
        Quantize(seed=-1)
    f = _frame()
    out = Quantize()(f)
    assert out.data.dtype == np.float32 and np.allclose(out.data * 255, np.rint(out.data * 255), atol=1e-4)
    assert np.abs(out.data - f.data).max() <= 0.5 / 255 + 1e-6
    s = Quantize(bit_depth=16, dither="tpdf", seed=3)
    assert Quantize.from_params(s.to_config()["params"]) == s


# -- shared contract -----------------------------------------------------------

@pytest.mark.parametrize("cls", [Sharpen, ChromaDenoise, Resize, Quantize], ids=lambda c: c.type_name)
def test_stage_contract(cls):
    assert STAGES[cls.type_name] is cls
    stage = cls()
    assert cls.from_params(stage.to_config()["params"]) == stage
    assert pickle.loads(pickle.dumps(stage)) == stage
    for domain in stage.spec.in_domains:
        f = _frame(domain)
        before = f.data.copy()
        out = stage(f)
        assert out.data.dtype == np.float32 and out.domain is domain and out.shape == f.shape
        assert np.array_equal(f.data, before)


def test_chroma_denoise_protect_keeps_clipped_cores_neutral(rng):
    img = np.zeros((64, 64, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.9, 0.5, 0.1                # orange glow
    img[28:36, 28:36] = 1.0                                             # clipped white core
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    img[28:36, 28:36] = 1.0
    blurred = chroma_denoise(img, 1.0, 4.0)
    kept = chroma_denoise(img, 1.0, 4.0, protect=0.98)
    core = (slice(30, 34), slice(30, 34))
    assert np.ptp(blurred[core], axis=-1).max() > 0.1                   # glow colour bled into the core
    np.testing.assert_array_equal(kept[core], img[core])
    outside = (slice(0, 16), slice(0, 16))
    assert np.std(rgb_to_ycbcr(kept[outside])[..., 1:], axis=(0, 1)).max() < 0.5 * np.std(rgb_to_ycbcr(img[outside])[..., 1:], axis=(0, 1)).min()
    stage = ChromaDenoise(radius=4.0, protect_highlights=True)
    out = stage(Frame(img, Domain.DISPLAY_RGB, CaptureMetadata(white_point=np.full(3, 50.0))))
    np.testing.assert_array_equal(out.data[core], img[core])           # display white is 1


def test_quantize_u8_kernel_equals_the_numpy_reference():
    """The one-pass float32 → uint8 kernel gives the codes of clip(rint(x · 255)) exactly, halves to even."""
    from ispkit.stages.quantize import _codes, quantize

    rng = np.random.default_rng(7)
    x = rng.uniform(-0.3, 1.3, (37, 53, 3)).astype(np.float32)
    x[0, :6, 0] = np.array([0.5, 1.5, 2.5, 3.5, 253.5, 254.5], np.float32) / np.float32(255.0)
    x[1, :3, 1] = [0.0, 1.0, np.float32(np.nextafter(np.float32(1.0), np.float32(2.0)))]
    ref = _codes(x, 8, "none", 0, "test").astype(np.uint8)
    got = quantize(x, 8)
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == np.uint8 and got[1, 0, 1] == 0 and got[1, 1, 1] == 255
    np.testing.assert_array_equal(quantize(x[0, 0], 8), ref[0, 0])  # 1-D input
    bad = x.copy()
    bad[5, 5, 2] = np.nan
    with pytest.raises(InputError, match="NaN or inf"):
        quantize(bad, 8)
