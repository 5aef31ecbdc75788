"""Exact inverses of the classical stages, Pipeline.inverse(), and the RAW round trip on real captures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ispkit.errors import NotInvertibleError
from ispkit.frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame
from ispkit.pipeline import Pipeline
from ispkit.stages import (BayerDenoise, BlackLevel, ColorMatrix, Demosaic, Exposure, Filmic, Gamma, GammaExpand,
                           HighlightRecovery, Identity, InverseBlackLevel, InverseColorMatrix, InverseWhiteBalance,
                           LocalContrast, Mosaic,
                           PackBayer, Sharpen, ToneCurve, UnpackBayer, WhiteBalance, apply_color_matrix,
                           apply_tone_curve, apply_white_balance, gamma_compress, gamma_expand, invert_black_level,
                           invert_color_matrix, invert_filmic, invert_tone_curve, invert_white_balance, pack_bayer,
                           subtract_black_level, unpack_bayer)
from ispkit.stages.demosaic import DEMOSAIC_METHODS, demosaic, mosaic
from ispkit.stages.gamma import GAMMA_CURVES
from ispkit.stages.tone import filmic
from tests.conftest import data_path

XYZ_TO_CAM = np.array([[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])  # D750


def _rgb(seed: int = 0, h: int = 16, w: int = 24, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, (h, w, 3)).astype(np.float32)


def _meta(pattern: str = "RGGB", **kw) -> CaptureMetadata:
    base = dict(black_level=np.full(4, 600.0), white_level=15520.0, cfa_pattern=pattern, wb_gains=[1.95, 1.0, 1.34],
                cam_to_xyz=np.linalg.inv(XYZ_TO_CAM))
    base.update(kw)
    return CaptureMetadata(**base)


# -- pure functions -----------------------------------------------------------

@pytest.mark.parametrize("curve", sorted(GAMMA_CURVES))
def test_gamma_round_trips_every_curve(curve):
    x = np.linspace(0.0, 1.0, 4097, dtype=np.float32)
    back = gamma_expand(gamma_compress(x, curve, gamma=2.4, toe_slope=4.5), curve, gamma=2.4, toe_slope=4.5)
    np.testing.assert_allclose(back, x, atol=3e-6)
    stage = Gamma(curve=curve, gamma=2.4, toe_slope=4.5)
    assert stage.inverse() == GammaExpand(curve=curve, gamma=2.4, toe_slope=4.5)
    assert stage.inverse().inverse() == stage


def test_tone_curve_inverse_is_exact_inside_and_outside_the_control_range():
    pts = ((0.0, 0.0), (0.2, 0.35), (0.7, 0.85), (1.0, 1.0))
    x = np.linspace(-0.2, 1.5, 3001, dtype=np.float32)
    np.testing.assert_allclose(invert_tone_curve(apply_tone_curve(x, pts), pts), x, atol=2e-6)
    y = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    np.testing.assert_allclose(apply_tone_curve(invert_tone_curve(y, pts), pts), y, atol=2e-6)
    assert ToneCurve(points=pts).inverse().inverse() == ToneCurve(points=pts)


def test_tone_curve_with_a_flat_part_is_not_invertible():
    with pytest.raises(NotInvertibleError, match="flat between control points 1 and 2"):
        ToneCurve(points=((0, 0), (0.3, 0.5), (0.6, 0.5), (1, 1))).inverse()


@pytest.mark.parametrize("method", ["hable2010", "narkowicz2016"])
def test_filmic_inverse_round_trips_below_white(method):
    x = np.linspace(0.0, 4.0, 2001, dtype=np.float32)
    y = filmic(x, method)
    keep = y < 0.999
    assert keep.sum() > 500
    np.testing.assert_allclose(invert_filmic(y, method)[keep], x[keep], rtol=2e-4, atol=2e-5)
    assert Filmic(method=method).inverse().inverse() == Filmic(method=method)


def test_color_matrix_inverse_and_singular_refusal():
    img = _rgb(1, lo=-0.1, hi=1.3)
    m = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]])
    np.testing.assert_allclose(invert_color_matrix(apply_color_matrix(img, m), m), img, atol=2e-6)
    singular = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [2.0, 0.0, 0.0]])
    with pytest.raises(NotInvertibleError, match="singular"):
        invert_color_matrix(img, singular)
    frame = Frame(img, Domain.LINEAR_RGB, _meta())
    with pytest.raises(NotInvertibleError, match="singular"):
        ColorMatrix(ccm=tuple(map(tuple, singular))).inverse()(frame)
    with pytest.raises(NotInvertibleError, match="HueSatMap"):
        ColorMatrix(profile="camera.dcp").inverse()


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_color_matrix_stage_inverse_from_metadata(pattern):
    cam = Frame(_rgb(2, lo=0.0, hi=1.2), Domain.CAMERA_RGB, _meta(pattern, illuminant_rgb=[0.5, 1.0, 0.75]))
    fwd = ColorMatrix()
    assert fwd.inverse() == InverseColorMatrix() and fwd.inverse().inverse() == fwd
    out = fwd(cam)
    back = fwd.inverse()(out)
    assert back.domain is Domain.CAMERA_RGB and back.meta.color_space is None
    np.testing.assert_allclose(back.data, cam.data, atol=3e-6)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_white_balance_inverse_on_mosaic_rgb_and_packed(pattern):
    g = np.array([2.1, 1.0, 1.6])
    m = np.random.default_rng(3).uniform(0, 1, (16, 24)).astype(np.float32)
    np.testing.assert_allclose(invert_white_balance(apply_white_balance(m, g, cfa_pattern=pattern), g,
                                                    cfa_pattern=pattern), m, rtol=3e-7)
    for img in (_rgb(4), pack_bayer(m, pattern)):
        np.testing.assert_allclose(invert_white_balance(apply_white_balance(img, g), g), img, rtol=3e-7)
    frame = Frame(m, Domain.RAW_MOSAIC, _meta(pattern, white_point=[1, 1, 1], noise_profile=((1e-3, 1e-5),)))
    for stage in (WhiteBalance(), WhiteBalance(normalize="min"), WhiteBalance(method="gray_world")):
        out = stage(frame)
        back = stage.inverse()(out)
        np.testing.assert_allclose(back.data, m, rtol=3e-7)
        np.testing.assert_allclose(back.meta.white_point, 1.0, rtol=1e-12)
        np.testing.assert_allclose(back.meta.noise_profile[0], (1e-3, 1e-5), rtol=1e-12)


def test_highlight_safe_white_balance_inverse_keeps_white_saturated():
    g = np.array([2.0, 1.0, 1.5])
    img = np.array([[[0.2, 0.3, 0.25], [1.0, 1.0, 1.0]]], dtype=np.float32)
    out = invert_white_balance(img, g, highlight_safe=True)
    np.testing.assert_allclose(out[0, 0], img[0, 0] / g, rtol=1e-6)  # below the inflection: exact
    np.testing.assert_allclose(out[0, 1], 1.0, rtol=1e-6)  # saturated white stays saturated
    safe = InverseWhiteBalance(highlight_safe=True)
    frame = Frame(img, Domain.CAMERA_RGB, _meta(illuminant_rgb=1.0 / g))
    np.testing.assert_allclose(safe(frame).data, out, rtol=1e-6)
    with pytest.raises(NotInvertibleError, match="refine"):
        WhiteBalance(method="gray_world", refine=True).inverse()


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("method", sorted(m for m in DEMOSAIC_METHODS if not m.startswith("opencv")))
def test_mosaic_inverts_demosaic_exactly_on_the_samples(pattern, method):
    m = np.random.default_rng(5).uniform(0.02, 0.98, (24, 32)).astype(np.float32)
    np.testing.assert_array_equal(mosaic(demosaic(m, pattern, method), pattern), m)
    frame = Frame(m, Domain.RAW_MOSAIC, _meta(pattern))
    stage = Demosaic(method=method)
    assert stage.inverse() == Mosaic()
    back = stage.inverse()(stage(frame))
    assert back.domain is Domain.RAW_MOSAIC and back.meta.cfa_pattern == pattern
    np.testing.assert_array_equal(back.data, m)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_pack_and_unpack_are_exact_inverses(pattern):
    m = np.random.default_rng(6).uniform(0, 1, (8, 12)).astype(np.float32)
    packed = pack_bayer(m, pattern)
    np.testing.assert_array_equal(unpack_bayer(packed, pattern), m)
    # the R plane holds the red samples whatever the layout
    r_pos = pattern.index("R")
    np.testing.assert_array_equal(packed[..., 0], m[r_pos // 2::2, r_pos % 2::2])
    frame = Frame(m, Domain.RAW_MOSAIC, _meta(pattern))
    out = PackBayer()(frame)
    assert out.domain is Domain.RAW_PACKED and out.shape == (4, 6, 4)
    assert PackBayer().inverse() == UnpackBayer() and UnpackBayer().inverse() == PackBayer()
    np.testing.assert_array_equal(PackBayer().inverse()(out).data, m)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_black_level_inverse_restores_counts_and_levels(pattern):
    rng = np.random.default_rng(7)
    counts = rng.integers(610, 15520, (16, 24)).astype(np.float32)
    black = [600.0, 610.0, 590.0, 605.0]
    frame = Frame(counts, Domain.RAW_MOSAIC, _meta(pattern, black_level=black))
    out = BlackLevel()(frame)
    back = BlackLevel().inverse()(out)
    np.testing.assert_array_equal(np.round(back.data), counts)
    assert np.abs(back.data - counts).max() < 2e-3
    assert back.meta.black_level.tolist() == black and back.meta.white_level == 15520.0
    assert "raw_levels" not in back.meta.extra
    np.testing.assert_array_equal(BlackLevel()(back.replace(data=np.round(back.data))).data, out.data)
    # explicit levels override the record (mapping into another camera's counts)
    other = InverseBlackLevel(black_level=(64, 64, 64, 64), white_level=1023)(out)
    assert other.meta.white_level == 1023 and other.data.max() <= 1023 + 1e-3


def test_black_level_inverse_with_pattern_and_linearization_table():
    table = np.sqrt(np.arange(4096, dtype=np.float64)) * 64.0  # strictly increasing
    counts = np.random.default_rng(8).integers(0, 4096, (8, 12)).astype(np.float32)
    back = invert_black_level(subtract_black_level(counts, 0, float(table[-1]), linearization_table=table),
                              0, float(table[-1]), linearization_table=table)
    np.testing.assert_allclose(back, counts, atol=2e-2)
    pat = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    x = np.random.default_rng(9).uniform(100, 900, (6, 9)).astype(np.float32)
    norm = subtract_black_level(x, 0, 1000.0, black_level_pattern=pat)
    np.testing.assert_allclose(invert_black_level(norm, 0, 1000.0, black_level_pattern=pat), x, rtol=1e-6)
    with pytest.raises(NotInvertibleError, match="strictly increasing"):
        invert_black_level(norm, 0, 1000.0, linearization_table=[0, 5, 5, 9])


def test_exposure_inverse_uses_the_same_baseline():
    frame = Frame(_rgb(10), Domain.CAMERA_RGB, _meta(white_point=[1, 1, 1], extra={"baseline_exposure": 0.7}))
    stage = Exposure(ev=0.5)
    back = stage.inverse()(stage(frame))
    np.testing.assert_allclose(back.data, frame.data, rtol=3e-7)
    np.testing.assert_allclose(back.meta.white_point, 1.0)


# -- Pipeline.inverse ---------------------------------------------------------

def _forward() -> Pipeline:
    return Pipeline([BlackLevel(), WhiteBalance(), Demosaic(), ColorMatrix(),
                     ToneCurve(points=((0.0, 0.0), (0.25, 0.35), (1.0, 1.0))), Gamma()], name="invertible")


def test_pipeline_inverse_reverses_the_stages():
    inv = _forward().inverse()
    assert inv.name == "invertible-inverse"
    assert inv.names == ["gamma", "tone_curve", "color_matrix", "demosaic", "white_balance", "black_level"]
    assert [type(s).__name__ for s in inv.stages] == ["GammaExpand", "InverseToneCurve", "InverseColorMatrix",
                                                      "Mosaic", "InverseWhiteBalance", "InverseBlackLevel"]
    assert inv.input_domain is None or inv.input_domain is Domain.DISPLAY_RGB
    assert "illuminant_rgb" in inv.input_provides


@pytest.mark.parametrize("stage, after, why", [
    (BayerDenoise(), "black_level", "BayerDenoise"), (Sharpen(), "gamma", "Sharpen"),
])
def test_pipeline_inverse_refuses_a_stage_without_inverse(stage, after, why):
    pipe = _forward().insert_after(after, stage)
    with pytest.raises(NotInvertibleError, match=rf"stage '\w+' \({why}\) has no inverse"):
        pipe.inverse()


def test_pipeline_inverse_names_the_first_non_invertible_stage_from_the_output_end():
    pipe = _forward().append(LocalContrast())
    with pytest.raises(NotInvertibleError, match=r"stage 'local_contrast' \(LocalContrast\)"):
        pipe.inverse()
    flat = _forward().replace("tone_curve", ToneCurve(points=((0, 0), (0.5, 0.6), (0.7, 0.6), (1, 1))))
    with pytest.raises(NotInvertibleError, match=r"stage 'tone_curve' \(ToneCurve\) cannot be inverted: .*flat"):
        flat.inverse()


# -- the RAW round trip on real captures --------------------------------------

def _psnr_unclipped(back: np.ndarray, raw: np.ndarray, black: np.ndarray, white: float) -> float:
    """PSNR in normalised units over the pixels below the white level."""
    keep = raw < white
    err = (back.astype(np.float64) - raw)[keep] / (white - float(np.min(black)))
    return float(10 * np.log10(1.0 / np.mean(err ** 2))) if np.any(err) else float("inf")


def _round_trip(frame: Frame) -> tuple[float, np.ndarray]:
    """``inverse(forward(raw))`` for black level → WB → demosaic → colour matrix → tone → gamma.

    Why the demosaic → mosaic step is exact: each demosaicing method fills in only
    the two colours a pixel's filter did not record and keeps its own sample, so
    sampling the demosaiced image at the CFA positions returns the mosaic (the
    interpolated values are thrown away again). Every other stage is a bijection
    (affine per position, per-channel gains, an invertible 3×3 matrix, strictly
    increasing curves), so only float32 rounding remains.
    """
    fwd = _forward()
    back = fwd.inverse().run(fwd.run(frame).output).output
    assert back.domain is Domain.RAW_MOSAIC and back.meta.cfa_pattern == frame.meta.cfa_pattern
    np.testing.assert_array_equal(back.meta.black_level, frame.meta.black_level)
    assert back.meta.white_level == frame.meta.white_level
    return _psnr_unclipped(back.data, frame.data, frame.meta.black_level, frame.meta.white_level), back.data


def _d750(pattern: str) -> Frame:
    side = json.loads(data_path("bayer", "d750_rose_768x512.json").read_text())
    raw = np.fromfile(data_path("bayer", f"d750_rose_768x512_{pattern.lower()}.raw"), "<u2").reshape(512, 768)
    meta = CaptureMetadata(black_level=side["black_level"], white_level=side["white_level"], cfa_pattern=pattern,
                           wb_gains=side["wb_gains_R_G_B"],
                           cam_to_xyz=np.linalg.inv(side["color_matrix_xyz_to_cam_ColorMatrix2"]))
    return Frame(raw[:256, :384].astype(np.float32), Domain.RAW_MOSAIC, meta)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_round_trip_recovers_the_d750_crops(pattern):
    """Measured ≈ 146 dB (normalised units) on all four layouts: max error 0.015 counts, every count
    back exactly after rounding."""
    frame = _d750(pattern)
    raw = frame.data
    psnr, back = _round_trip(frame)
    assert psnr >= 45.0
    np.testing.assert_array_equal(np.round(back), raw)


@pytest.mark.parametrize("name", ["n900_dog_256x344_grbg.png", "openisp_chart_1920x1080_rggb.raw"])
def test_round_trip_recovers_the_sidecar_mosaics(name):
    """Measured ≈ 139 dB (N900: fractional black levels, LibRaw-style cam→sRGB matrix) and ≈ 137 dB
    (openISP chart: no colour matrix, so the colour stage keeps camera RGB both ways)."""
    import warnings

    from ispkit.io import load_bayer_raw

    frame = load_bayer_raw(data_path("bayer", name))
    crop = frame.replace(data=np.ascontiguousarray(frame.data[:256, :320]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the chart has no colour matrix: ColorimetryWarning
        psnr, back = _round_trip(crop)
    assert psnr >= 45.0
    np.testing.assert_array_equal(np.round(back), crop.data)


def test_round_trip_recovers_the_blackmagic_dng():
    """Measured on a 512×768 crop: ≈ 149 dB (max error 0.01 counts); the DNG colour tags (dual
    illuminant) are inverted as applied."""
    from ispkit.io import read_raw

    frame = read_raw(data_path("raw", "blackmagic_pocket4k.dng"))
    crop = frame.replace(data=np.ascontiguousarray(frame.data[800:1312, 1600:2368]))
    assert crop.meta.color_matrix1 is not None
    psnr, back = _round_trip(crop)
    assert psnr >= 45.0
    np.testing.assert_array_equal(np.round(back), crop.data)


def _clipping_default() -> Pipeline:
    """The ``default`` preset's classical chain: exposure, min-normalised gains, highlight and display clips."""
    return Pipeline([BlackLevel(), Exposure(), WhiteBalance(normalize="min"), Demosaic(), HighlightRecovery(),
                     ColorMatrix(), Gamma(clip=True)], name="clipping")


def test_clipping_pipeline_inverts_on_the_unclipped_pixels():
    """Measured on the D750 RGGB crop: 70 % of the pixels render inside (0, 1) in every channel; on them
    ≈ 152 dB, every raw count back exactly after rounding (max error before rounding 0.004 counts)."""
    frame = _d750("RGGB")
    fwd = _clipping_default()
    inv = fwd.inverse()
    assert isinstance(inv["highlight_recovery"], Identity)
    display = fwd(frame).data
    back = inv(fwd(frame)).data
    inside = np.all((display > 0) & (display < 1), axis=-1)
    assert inside.mean() > 0.3
    err = (back - frame.data)[inside]
    assert np.abs(err).max() < 0.5
    psnr = 10 * np.log10(1.0 / np.mean((err / (15520 - 600)) ** 2))
    assert psnr >= 45.0


def test_inverse_runs_on_a_display_image_with_only_the_capture_metadata():
    """No forward record (illuminant_rgb, raw_levels): the white balance falls back to the as-shot
    neutral, the colour matrix to cam_to_xyz and the black level stays normalised."""
    frame = _d750("GRBG")
    fwd = _clipping_default()
    normalised = BlackLevel()(frame).data
    display = fwd(frame)
    fresh = Frame(display.data, Domain.DISPLAY_RGB, frame.meta.replace(black_level=np.zeros(4), white_level=1.0))
    back = fwd.inverse()(fresh)
    inside = np.all((display.data > 0) & (display.data < 1), axis=-1)
    np.testing.assert_allclose(back.data[inside], normalised[inside], atol=1e-5)
    with pytest.raises(NotInvertibleError, match="reconstruct"):
        HighlightRecovery(method="reconstruct").inverse()


@pytest.mark.parametrize("encoding", ["srgb", "linear"])
@pytest.mark.parametrize("hue", [0.0, 1.0])
def test_sigmoid_display_transform_inverse(encoding, hue):
    """Measured: 99 % of the values back within 5e-6 relative, forward(inverse(y)) within 6e-7."""
    from ispkit.stages import SigmoidToneMap

    x = np.random.default_rng(11).uniform(0.0, 4.0, (64, 64, 3)).astype(np.float32)
    stage = SigmoidToneMap(hue_preservation=hue, hue_encoding=encoding)
    frame = Frame(x, Domain.LINEAR_RGB, _meta(color_space="sRGB"))
    y = stage(frame)
    back = stage.inverse()(y)
    np.testing.assert_allclose(back.data, x, rtol=1e-3, atol=1e-5)
    assert np.percentile(np.abs(back.data - x) / np.maximum(x, 1e-3), 99) < 5e-5
    np.testing.assert_allclose(stage(back).data, y.data, atol=3e-6)
    assert stage.inverse().inverse() == stage
    with pytest.raises(NotInvertibleError, match="hue_preservation"):
        SigmoidToneMap(hue_preservation=0.5).inverse()


# -- the default preset: highlight reconstruction and the display transform -----------

def _blown_capture(pattern: str = "RGGB") -> Frame:
    """A smooth, low-saturation scene (inside the sRGB gamut) in raw counts with a blown light:
    a saturated disc (every photosite at the white level) in a ring where only green saturates."""
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    neutral = 1.0 / np.array([1.95, 1.0, 1.34])  # the as-shot gains of _meta()
    tint = 1.0 + 0.15 * np.stack([np.sin(xx / 17), np.cos(yy / 13), np.sin((xx + yy) / 23)], -1)
    cam = 0.05 + 0.3 * (xx / w)[..., None] * tint * neutral  # white-balances to a soft colour, 0.05–0.45
    r = np.hypot(yy - 48, xx - 64)
    cam[r < 24] = np.minimum(1.0, 1.4 * np.array([0.8, 1.0, 0.9]))  # green clips, red and blue below it
    cam[r < 14] = 1.0
    mosaic_norm = mosaic(cam.astype(np.float32), pattern)
    return Frame(np.round(600.0 + mosaic_norm * 14920.0).astype(np.float32), Domain.RAW_MOSAIC, _meta(pattern))


def _unclipped(raw: np.ndarray, display: np.ndarray, clip: float = 0.987) -> np.ndarray:
    """Photosites below the reconstruction's clip level whose pixel renders strictly inside the
    display transform's range in every channel (the sigmoid floors out-of-gamut negatives at its
    black target 0.000152; the OETF clips at 1)."""
    lin = gamma_expand(display, "srgb")
    inside = np.all((lin > 1.01 * 0.000152) & (display < 1.0), axis=-1)
    return inside & (raw < 600.0 + clip * 14920.0)


def test_highlight_reconstruction_inverse_clips_at_the_white_point():
    """inverse(reconstruct(x)) == x for a sensor mosaic below the clip level and at saturation; in the
    band between, within (1 − clip) of the white point."""
    from ispkit.stages import (HighlightReconstruction, InverseHighlightReconstruction, invert_highlight_reconstruction,
                               reconstruct_opposed)

    wp = np.array([1.95, 1.0, 1.34])
    frame = _blown_capture()
    x = apply_white_balance(BlackLevel()(frame).data, wp, cfa_pattern="RGGB")
    x[40:44, 20:24] = 0.993 * np.tile(np.array([[1.95, 1.0], [1.0, 1.34]]), (2, 2))  # the band below saturation
    rebuilt, _ = reconstruct_opposed(x, "RGGB", wp)
    assert (rebuilt > x + 1e-3).sum() > 100  # the reconstruction raised many photosites
    back = invert_highlight_reconstruction(rebuilt, "RGGB", wp)
    levels = np.tile(np.array([[1.95, 1.0], [1.0, 1.34]]), (48, 64)).astype(np.float32)
    exact = (x < 0.987 * levels) | (x == levels)
    assert exact.mean() > 0.9 and (x == levels).sum() > 500
    np.testing.assert_array_equal(back[exact], x[exact])
    assert np.abs(back - x).max() <= 0.013 * 1.95 + 1e-6
    stage = HighlightReconstruction()
    inv = stage.inverse()
    assert isinstance(inv, InverseHighlightReconstruction) and inv.inverse() == stage
    # the stage reads the levels the forward stage recorded, else rebuilds them from the gains
    f = Frame(x, Domain.RAW_MOSAIC, frame.meta.replace(white_point=wp))
    fwd = stage(f)
    assert fwd.meta.extra["highlight_clip_levels"] == pytest.approx(list(0.987 * wp))
    np.testing.assert_array_equal(inv(fwd).data, back)
    assert "highlight_clip_levels" not in inv(fwd).meta.extra
    np.testing.assert_allclose(inv.white_point_for(frame.meta), wp / wp.min())  # normalize="min"
    np.testing.assert_allclose(InverseHighlightReconstruction(normalize="green", ev=1.0).white_point_for(frame.meta),
                               2 * wp)


def test_default_preset_inverse_round_trips_a_synthetic_raw():
    """Measured: 85 % of the photosites unclipped, on them ≈ 150 dB (max error 0.003 counts); every
    count back ≤ white (without the inverse clip: up to 23 687 counts)."""
    from ispkit.presets import load_preset

    frame = _blown_capture("GRBG")
    pipe = load_preset("default")
    inv = pipe.inverse()
    assert [type(s).__name__ for s in inv.stages] == [
        "GammaExpand", "InverseSigmoidToneMap", "InverseColorMatrix", "Identity", "Mosaic",
        "InverseHighlightReconstruction", "InverseWhiteBalance", "InverseExposure", "InverseBlackLevel"]
    display = pipe.run(frame).output
    back = inv(display)
    assert back.domain is Domain.RAW_MOSAIC and back.meta.white_level == 15520.0
    keep = _unclipped(frame.data, display.data)
    assert keep.mean() > 0.5
    err = (back.data - frame.data)[keep] / 14920.0
    assert 10 * np.log10(1.0 / np.mean(err ** 2)) >= 45.0
    np.testing.assert_array_equal(np.round(back.data[keep]), frame.data[keep])
    # every count back at or below the white level; without the inverse clip the rebuilt highlights
    # would come back far above it
    assert back.data.max() <= 15520.0 + 1.0
    assert inv.replace("reconstruct", Identity())(display).data.max() > 15520.0 + 500.0
    # a display image with only the capture metadata: the levels come from the gains
    fresh = Frame(display.data, Domain.DISPLAY_RGB, frame.meta.replace(black_level=np.zeros(4), white_level=1.0))
    again = inv(fresh).data
    np.testing.assert_allclose(again[keep], BlackLevel()(frame).data[keep], atol=1e-5)
    assert again.max() <= 1.0 + 1e-4


def test_default_preset_inverse_round_trips_the_d750_crop():
    """Measured on the 256×384 RGGB crop: 71 % of the photosites unclipped (the rose's saturated red
    renders out of the sRGB gamut and floors in the display transform); on them ≈ 146 dB, max error
    0.02 counts."""
    from ispkit.presets import load_preset

    frame = _d750("RGGB")
    pipe = load_preset("default")
    display = pipe.run(frame).output
    back = pipe.inverse()(display).data
    keep = _unclipped(frame.data, display.data)
    assert keep.mean() > 0.3
    err = (back - frame.data)[keep] / 14920.0
    assert 10 * np.log10(1.0 / np.mean(err ** 2)) >= 45.0
    np.testing.assert_array_equal(np.round(back[keep]), frame.data[keep])


def test_default_preset_inverse_still_names_a_non_invertible_stage():
    from ispkit.presets import load_preset

    pipe = load_preset("default").replace("highlights", HighlightRecovery(method="blend"))
    with pytest.raises(NotInvertibleError, match=r"stage 'highlights' \(HighlightRecovery\)"):
        pipe.inverse()
    with pytest.raises(NotInvertibleError, match=r"stage 'sharpen' \(Sharpen\)"):
        load_preset("default").append(Sharpen()).inverse()
