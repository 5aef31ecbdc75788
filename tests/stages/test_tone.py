"""Tone operators: curve (vs scipy PCHIP), Reinhard, filmic, auto exposure, CLAHE (vs OpenCV), night tone."""

from __future__ import annotations

import logging
import pickle

import cv2
import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from ispkit.errors import DomainError, InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import STAGES
from ispkit.stages.tone import (LUMA_WEIGHTS, AutoExposure, Filmic, LocalContrast, NightTone, Reinhard,
                                ToneCurve, apply_tone_curve, auto_exposure, exposure_gain, filmic,
                                local_contrast, night_tone, reinhard, tone_curve_lut)
from tests.conftest import data_path

W = np.array(LUMA_WEIGHTS)
STAGE_CLASSES = [ToneCurve, Reinhard, Filmic, AutoExposure, LocalContrast, NightTone]


def _frame(domain=Domain.LINEAR_RGB, shape=(16, 20, 3), seed=0, scale=1.0):
    data = (np.random.default_rng(seed).random(shape) * scale).astype(np.float32)
    return Frame(data, domain, CaptureMetadata(color_space="sRGB", source="synthetic"))


# -- ToneCurve ---------------------------------------------------------------

def test_tone_curve_matches_scipy_pchip():
    pts = ((0.0, 0.0), (0.1, 0.2), (0.25, 0.3), (0.6, 0.8), (1.0, 1.0))
    x = np.random.default_rng(1).random(100_000).astype(np.float32)
    ref = PchipInterpolator([p[0] for p in pts], [p[1] for p in pts])(x.astype(np.float64))
    assert np.abs(apply_tone_curve(x, pts) - ref).max() < 1e-6


def test_tone_curve_extrapolates_linearly_and_is_monotone():
    pts = ((0.0, 0.0), (0.25, 0.3), (1.0, 1.0))
    f = PchipInterpolator([0, 0.25, 1], [0, 0.3, 1])
    d = f.derivative()
    x = np.array([-0.5, 1.0, 2.0], np.float32)
    y = apply_tone_curve(x, pts)
    assert y[0] == pytest.approx(-0.5 * d(0.0), rel=1e-5)
    assert y[2] == pytest.approx(1.0 + d(1.0), rel=1e-5)
    ramp = np.linspace(-1, 3, 100_001, dtype=np.float32)
    assert np.all(np.diff(apply_tone_curve(ramp, pts)) >= 0)
    lut, x0, x1, _, _ = tone_curve_lut(pts, 16)
    assert lut.shape == (16,) and (x0, x1) == (0.0, 1.0)


def test_tone_curve_rejects_bad_points():
    with pytest.raises(ParameterError, match="monotone"):
        ToneCurve(points=((0, 0), (0.5, 0.7), (0.7, 0.6), (1, 1)))
    with pytest.raises(ParameterError, match="increasing x"):
        apply_tone_curve(np.ones(3), ((0, 0), (0, 1)))
    with pytest.raises(ParameterError, match="'tone_curve'.*points"):
        ToneCurve(points=((0, 0),))
    with pytest.raises(UnknownNameError, match="space"):
        ToneCurve(space="log")


def test_tone_curve_stage_identity_space_and_config():
    f = _frame()
    ident = ToneCurve(points=((0, 0), (0.5, 0.5), (1, 1)))
    assert ident.is_identity and ident(f) is f
    s = ToneCurve()
    assert s.points == ((0.0, 0.0), (0.25, 0.3), (1.0, 1.0))
    assert ToneCurve.from_params(s.to_config()["params"]) == s
    out = s(f)
    assert out.domain is Domain.LINEAR_RGB and np.allclose(out.data, apply_tone_curve(f.data, s.points))
    disp = ToneCurve(space="display")
    assert disp(_frame(Domain.DISPLAY_RGB)).domain is Domain.DISPLAY_RGB
    with pytest.raises(DomainError):
        disp(f)
    with pytest.raises(DomainError):
        s(_frame(Domain.DISPLAY_RGB))


# -- Reinhard ----------------------------------------------------------------

def _reinhard_reference(rgb, key, white):
    rgb = rgb.astype(np.float64)
    lum = rgb @ W
    lbar = np.exp(np.mean(np.log(1e-6 + np.maximum(lum, 0))))
    L = key / lbar * np.maximum(lum, 0)
    Ld = L * (1 + L / white ** 2) / (1 + L) if white else L / (1 + L)
    return rgb * (Ld / np.where(lum > 0, lum, 1))[..., None]


@pytest.mark.parametrize("key, white", [(0.18, None), (0.36, 2.0), (0.09, 0.5)])
def test_reinhard_matches_paper(key, white):
    rgb = (np.random.default_rng(2).random((32, 24, 3)) ** 3 * 8).astype(np.float32)
    got = reinhard(rgb, key, white)
    assert np.allclose(got, _reinhard_reference(rgb, key, white), rtol=2e-5, atol=1e-6)
    ratio = got / np.maximum(rgb, 1e-12)
    assert np.allclose(ratio[..., 0], ratio[..., 1], rtol=1e-4) and np.allclose(ratio[..., 2], ratio[..., 1], rtol=1e-4)


def test_reinhard_white_maps_to_one():
    rgb = np.full((2, 2, 3), 0.5, np.float32)
    # log-average 0.5 and key 0.18: scaled luminance 0.18; white=0.18 sends it to exactly 1
    out = reinhard(rgb, 0.18, white=0.18, log_average=0.5)
    assert np.allclose(out, 1.0, atol=1e-6)
    with pytest.raises(ParameterError):
        reinhard(rgb, key=0)


# -- filmic ------------------------------------------------------------------

def _hable(x):
    A, B, C, D, E, F = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return ((x * (A * x + C * B) + D * E) / (x * (A * x + B) + D * F)) - E / F


def test_filmic_hable_and_narkowicz_formulas():
    x = np.linspace(0, 20, 20001).astype(np.float32)
    xd = x.astype(np.float64)
    assert np.allclose(filmic(x), np.clip(_hable(2.0 * xd) / _hable(11.2), 0, 1), atol=2e-6)
    assert np.allclose(filmic(x, exposure=1.0, white=4.0), np.clip(_hable(xd) / _hable(4.0), 0, 1), atol=2e-6)
    aces = np.clip((xd * (2.51 * xd + 0.03)) / (xd * (2.43 * xd + 0.59) + 0.14), 0, 1)
    assert np.allclose(filmic(x, "narkowicz2016"), aces, atol=2e-6)
    assert filmic(np.float32([1.0]), "narkowicz2016")[0] == pytest.approx(0.8, abs=0.01)  # "1 maps to ~0.8"
    for method in ("hable2010", "narkowicz2016"):
        y = filmic(x, method)
        assert y.min() >= 0 and y.max() <= 1 and np.all(np.diff(y) >= 0)
    assert filmic(np.float32([-1.0]))[0] == pytest.approx(0.0, abs=1e-6)


def test_filmic_validation():
    with pytest.raises(UnknownNameError, match="hable2010"):
        Filmic(method="uncharted")
    with pytest.raises(ParameterError, match="white"):
        Filmic(method="narkowicz2016", white=3.0)
    with pytest.raises(ParameterError, match="'filmic'.*exposure"):
        Filmic(exposure=-1.0)


# -- auto exposure -----------------------------------------------------------

def test_auto_exposure_maps_percentile_to_target():
    rgb = (np.random.default_rng(3).random((40, 30, 3)) * 0.05).astype(np.float32)
    gain = exposure_gain(rgb, 97, 0.9)
    lum = rgb.astype(np.float64) @ W
    assert gain == pytest.approx(0.9 / np.percentile(lum, 97), rel=1e-5)
    out = auto_exposure(rgb, 97, 0.9)
    assert np.percentile(out.astype(np.float64) @ W, 97) == pytest.approx(0.9, rel=1e-4)
    f = AutoExposure()(Frame(rgb, Domain.LINEAR_RGB))
    assert f.meta.extra["exposure_gain"] == pytest.approx(gain)


def test_auto_exposure_black_frame(caplog):
    with caplog.at_level(logging.INFO, logger="ispkit.stages.tone"):
        assert exposure_gain(np.zeros((4, 4, 3), np.float32)) == 1.0
    assert "not positive" in caplog.text
    with pytest.raises(ParameterError, match="percentile"):
        AutoExposure(percentile=0)


# -- local contrast (CLAHE) --------------------------------------------------

def _kodak(name="kodim05.png"):
    img = cv2.imread(str(data_path("rgb", "kodak24", name)), cv2.IMREAD_COLOR)
    return img[..., ::-1].astype(np.float32) / 255.0


def test_local_contrast_agrees_with_opencv_8bit_clahe():
    rng = np.random.default_rng(4)
    img = _kodak()
    img = np.clip(img + (rng.random(img.shape, dtype=np.float32) - 0.5) / 255.0, 0, 1)  # continuous values
    out = local_contrast(img, clip_limit=2.0, tiles=8)
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2Lab)
    lab8 = cv2.cvtColor(np.rint(img * 255).astype(np.uint8), cv2.COLOR_RGB2Lab)
    ref_l = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab8[..., 0]).astype(np.float32) * (100 / 255)
    lab_in = cv2.cvtColor(img, cv2.COLOR_RGB2Lab)
    diff = np.abs(lab_out[..., 0] - ref_l).mean()
    change = np.abs(lab_in[..., 0] - ref_l).mean()
    assert diff < 1.0 and diff < 0.15 * change, (diff, change)
    assert np.abs(lab_out[..., 1:] - lab_in[..., 1:]).mean() < 1.0  # chroma kept
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_local_contrast_raises_contrast_of_flat_image():
    yy, xx = np.mgrid[0:96, 0:128]
    low = 0.45 + 0.05 * np.sin(xx / 6.0) * np.cos(yy / 9.0)
    img = np.repeat(low[..., None], 3, axis=2).astype(np.float32)
    out = LocalContrast(clip_limit=3.0, tiles=4)(Frame(img, Domain.DISPLAY_RGB)).data
    assert out.std() > 1.5 * img.std()
    with pytest.raises(DomainError):
        LocalContrast()(Frame(img, Domain.LINEAR_RGB))
    with pytest.raises(ParameterError, match="tiles"):
        LocalContrast(tiles=0)


# -- night tone --------------------------------------------------------------

def test_night_tone_lifts_shadows_keeps_highlights_below_one_and_order():
    ramp = np.geomspace(1e-5, 1e4, 20_001).astype(np.float32)
    gray = np.repeat(ramp[:, None], 3, axis=1)
    out = night_tone(gray, shadows=8.0, highlights=0.35)[:, 1]
    dark = ramp < 0.2
    assert np.all(out[dark] > ramp[dark])  # shadows lifted
    assert out[np.argmin(np.abs(ramp - 0.01))] > 2.5 * 0.01
    assert out.max() < 1.0  # light sources never reach 1
    assert np.all(np.diff(out) >= 0)  # order kept
    assert np.all(np.diff(out[ramp < 2.0]) > 0)  # strictly, where float32 resolves it
    # hue kept in the shadows (luminance ratio), and shadows=0 leaves values below the knee alone
    col = np.array([[0.02, 0.01, 0.005]], np.float32)
    o = night_tone(col)
    assert np.allclose(o / col, (o / col)[0, 1], rtol=1e-5)
    assert np.allclose(night_tone(col, shadows=0.0, highlights=0.5), col)


def test_night_tone_stage_and_validation():
    f = _frame(scale=0.05)
    out = NightTone()(f)
    assert out.domain is Domain.LINEAR_RGB and out.data.mean() > 2 * f.data.mean()
    with pytest.raises(ParameterError, match="'night_tone'.*highlights"):
        NightTone(highlights=1.0)
    with pytest.raises(ParameterError, match="shadows"):
        NightTone(shadows=-1.0)


# -- shared contract ---------------------------------------------------------

@pytest.mark.parametrize("cls", STAGE_CLASSES, ids=lambda c: c.type_name)
def test_stage_contract(cls):
    assert STAGES[cls.type_name] is cls
    stage = cls()
    assert cls.from_params(stage.to_config()["params"]) == stage
    assert pickle.loads(pickle.dumps(stage)) == stage
    domain = stage.spec.in_domains[0]
    f = _frame(domain)
    before = f.data.copy()
    out = stage(f)
    assert out.data.dtype == np.float32 and out.shape == f.shape and out.domain is domain
    assert np.array_equal(f.data, before) and np.isfinite(out.data).all()


@pytest.mark.parametrize("fn", [lambda x: apply_tone_curve(x, ((0, 0), (1, 1))), reinhard, filmic, auto_exposure,
                                local_contrast, night_tone])
def test_non_finite_input_raises(fn):
    x = np.full((4, 4, 3), 0.5, np.float32)
    x[1, 2, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fn(x)


def test_auto_exposure_cap_and_noise_floor_are_recorded():
    rgb = np.full((32, 32, 3), 1e-3, np.float32)
    meta = CaptureMetadata(noise_profile=((0.0, 1e-8),) * 3)       # read σ = 1e-4
    free = AutoExposure(target=0.5)(Frame(rgb, Domain.LINEAR_RGB, meta))
    assert free.meta.extra["exposure_gain"] == pytest.approx(500.0, rel=1e-5)
    assert free.meta.extra["exposure_gain_limit"] is None
    capped = AutoExposure(target=0.5, max_gain=64.0)(Frame(rgb, Domain.LINEAR_RGB, meta))
    assert capped.meta.extra["exposure_gain"] == 64.0 and capped.meta.extra["exposure_gain_limit"] == "max_gain"
    np.testing.assert_allclose(capped.data, 0.064, rtol=1e-5)
    floored = AutoExposure(target=0.5, min_snr=20.0)(Frame(rgb, Domain.LINEAR_RGB, meta))
    assert floored.meta.extra["exposure_gain"] == pytest.approx(0.5 / 2e-3)
    assert floored.meta.extra["exposure_gain_limit"] == "noise_floor"
    with pytest.raises(ParameterError, match="max_gain"):
        AutoExposure(max_gain=0)


def test_auto_exposure_exclude_lamps_ignores_clipped_sources_and_glow():
    rgb = np.full((100, 100, 3), 0.01, np.float32)
    yy, xx = np.mgrid[0:100, 0:100]
    d = np.hypot(yy - 50, xx - 50)
    rgb += (0.5 / (1 + (d / 4) ** 2))[..., None].astype(np.float32)   # glow
    rgb[d < 4] = 1.0                                                   # clipped core
    frame = Frame(rgb, Domain.LINEAR_RGB, CaptureMetadata(white_point=np.ones(3)))
    naive = AutoExposure(percentile=97.0, target=0.5)(frame)
    safe = AutoExposure(percentile=97.0, target=0.5, exclude_lamps=True)(frame)
    assert naive.meta.extra["exposure_gain"] < 20
    assert safe.meta.extra["exposure_gain"] > 2 * naive.meta.extra["exposure_gain"]
    np.testing.assert_allclose(safe.meta.white_point, safe.meta.extra["exposure_gain"])
