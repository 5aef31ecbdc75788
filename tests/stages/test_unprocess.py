"""Unprocessing (Brooks et al. 2019): camera sampling, noise, and the round trip through the default preset."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from ispkit.errors import InputError, NotInvertibleError, ParameterError, UnknownNameError
from ispkit.frame import CFA_PATTERNS, CaptureMetadata, Domain
from ispkit.presets import load_preset
from ispkit.stages import CameraSample, add_noise, sample_camera, unprocess
from ispkit.stages.unprocess import (CAMERA_COLOR_MATRICES, inverse_smoothstep, invert_white_balance_safe,
                                     noise_from_profile, smoothstep)
from tests.conftest import data_path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def _smooth_image(h: int = 64, w: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    yy, xx = yy / h, xx / w
    return np.stack([0.15 + 0.6 * xx, 0.25 + 0.5 * yy, 0.6 - 0.4 * xx * yy], axis=-1).astype(np.float32)


def test_sample_camera_follows_brooks_ranges_and_is_seeded():
    cams = [sample_camera(np.random.default_rng(s)) for s in range(40)]
    again = sample_camera(np.random.default_rng(3))
    assert np.array_equal(again.rgb_to_cam, cams[3].rgb_to_cam) and again.shot_noise == cams[3].shot_noise
    red = np.array([c.wb_gains[0] for c in cams])
    blue = np.array([c.wb_gains[2] for c in cams])
    assert red.min() >= 1.9 and red.max() <= 2.4 and blue.min() >= 1.5 and blue.max() <= 1.9
    assert all(c.wb_gains[1] == 1.0 for c in cams)
    b = np.array([c.brightness for c in cams])
    assert 0.7 < b.mean() < 0.9 and b.min() >= 0.4 and b.max() <= 1.2
    shot = np.array([c.shot_noise for c in cams])
    read = np.array([c.read_noise for c in cams])
    assert shot.min() >= 1e-4 and shot.max() <= 1.2e-2
    # read noise follows the log-linear fit within a few sigma (0.26)
    resid = np.log(read) - (2.18 * np.log(shot) + 1.20)
    assert np.abs(resid).max() < 5 * 0.26
    for c in cams:
        # a neutral stays neutral before white balance
        np.testing.assert_allclose(c.rgb_to_cam.sum(axis=1), 1.0, atol=1e-9)


def test_sampled_colour_matrix_is_a_convex_mix_of_the_given_cameras():
    one = np.linalg.inv(np.asarray(CAMERA_COLOR_MATRICES["Nikon D750"]).reshape(3, 3) / 1e4)
    cam = sample_camera(np.random.default_rng(0), matrices=[one, one])
    # the same camera twice: the mix is that camera (up to the D65 normalisation scale)
    ratio = cam.cam_to_xyz / one
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-9)


def test_sample_camera_accepts_metadata_and_rejects_bad_matrices():
    meta = CaptureMetadata(color_matrix2=np.asarray(CAMERA_COLOR_MATRICES["Canon EOS 7D"]).reshape(3, 3) / 1e4)
    cam = sample_camera(np.random.default_rng(1), matrices=[meta], noise="none", cfa_pattern="gbrg")
    assert cam.cfa_pattern == "GBRG" and cam.shot_noise == 0 and cam.read_noise == 0
    with pytest.raises(ParameterError, match="singular"):
        sample_camera(np.random.default_rng(1), matrices=[np.ones((3, 3))])
    with pytest.raises(ParameterError, match="empty"):
        sample_camera(np.random.default_rng(1), matrices=[])
    with pytest.raises(UnknownNameError, match="brooks"):
        sample_camera(np.random.default_rng(1), noise="gauss")


def test_noise_from_dng_and_ntire_profiles():
    assert noise_from_profile((2e-4, 3e-7)) == (2e-4, 3e-7)
    shot, read = noise_from_profile(((1e-4, 1e-7), (3e-4, 3e-7), (2e-4, 2e-7)))
    assert shot == pytest.approx(2e-4) and read == pytest.approx(2e-7)
    path = data_path("night", "nightimaging23_test.json")
    profile = json.loads(path.read_text())["noise_profile"]  # NTIRE form [[scale], [offset]]
    cam = sample_camera(np.random.default_rng(0), noise=profile)
    assert cam.shot_noise == pytest.approx(0.00010826276035706111)
    assert cam.read_noise == pytest.approx(3.175930183461187e-07)
    with pytest.raises(ParameterError):
        noise_from_profile([1, 2, 3])


def test_add_noise_has_the_requested_variance():
    rng = np.random.default_rng(7)
    x = np.full(200_000, 0.25, dtype=np.float32)
    y = add_noise(x, 0.01, 1e-4, rng)
    assert y.dtype == np.float32
    assert np.var(y - x) == pytest.approx(0.01 * 0.25 + 1e-4, rel=0.02)
    assert abs(float(np.mean(y - x))) < 1e-3
    with pytest.raises(ParameterError):
        add_noise(x, -1.0, 0.0, rng)


def test_smoothstep_inverse_round_trips():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(smoothstep(inverse_smoothstep(x)), x, atol=2e-6)
    np.testing.assert_allclose(inverse_smoothstep(smoothstep(x)), x, atol=1e-5)


def test_highlight_safe_inverse_is_exact_below_the_inflection_and_keeps_white_saturated():
    img = np.array([[[0.2, 0.3, 0.4], [1.0, 1.0, 1.0]]], dtype=np.float32)
    gains = np.array([0.5, 0.8, 0.6])
    out = invert_white_balance_safe(img, gains)
    np.testing.assert_allclose(out[0, 0], img[0, 0] * gains, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 1.0, rtol=1e-6)


def _default_and_tone():
    """The ``default`` preset and the display tone stage unprocess must undo for it (None: it has none).

    A display tone stage without an inverse is left out of the render (its roll-off is not undone)."""
    pipe = load_preset("default")
    for name, stage in pipe.nodes:
        if stage.spec.in_domains == (Domain.LINEAR_RGB,) or name == "tone":
            if callable(getattr(stage, "inverse", None)):
                return pipe, stage
            return pipe.remove(name), None
    return pipe, None


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_default_preset_renders_an_unprocessed_smooth_image_back(pattern):
    """Measured interior PSNR ≈ 97 dB (float32 arithmetic only): on a smooth image demosaicing is
    exact, so this checks that the colour matrix, gains, brightness and OETF are inverted exactly."""
    img = _smooth_image()
    cam = sample_camera(np.random.default_rng(11), cfa_pattern=pattern)
    pipe, tone = _default_and_tone()
    res = unprocess(img, cam, rng=np.random.default_rng(0), add_noise=False, tone=tone or "none")
    f = res.frame
    assert f.domain is Domain.RAW_MOSAIC and f.meta.cfa_pattern == pattern and f.data.dtype == np.float32
    assert f.meta.white_level == 1.0 and not np.any(f.meta.black_level)
    assert f.meta.noise_profile is None
    np.testing.assert_array_equal(f.data, res.mosaic_clean)
    out = pipe.run(f).output.data
    assert _psnr(out[4:-4, 4:-4], img[4:-4, 4:-4]) > 60.0


def test_default_preset_round_trip_on_a_kodak_crop():
    """Measured with the sigmoid display transform undone (kodim01–03, 256² crops): 26.8 / 31.7 / 29.9 dB
    on the pixels more than 2 px from a display value ≥ 0.9 — the demosaic's (Malvar) error amplified by
    the camera → sRGB matrix — and 26.8 / 30.6 / 18.1 dB overall: display whites need scene values far
    above the sensor's white (the curve reaches 1 only at infinity), so they come back clipped and grey."""
    from PIL import Image
    from scipy.ndimage import maximum_filter

    path = data_path("rgb", "kodak24", "kodim03.png")
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)[:256, :256] / 255.0
    cam = sample_camera(np.random.default_rng(5))
    pipe, tone = _default_and_tone()
    res = unprocess(img, cam, add_noise=False, tone=tone or "none")
    out = pipe.run(res.frame).output.data[8:-8, 8:-8]
    ref = img[8:-8, 8:-8]
    keep = maximum_filter(img.max(axis=-1), size=5)[8:-8, 8:-8] < 0.9
    assert keep.mean() > 0.5
    assert _psnr(out[keep], ref[keep]) > 25.0


def test_noise_is_added_with_its_profile_in_the_metadata():
    img = _smooth_image(32, 32)
    cam = CameraSample.from_matrix(np.linalg.inv(np.asarray(CAMERA_COLOR_MATRICES["Canon EOS 6D"]).reshape(3, 3)),
                                   (2.0, 1.0, 1.7), brightness=0.8, shot_noise=1e-3, read_noise=1e-5)
    res = unprocess(img, cam, rng=np.random.default_rng(2))
    assert res.frame.meta.noise_profile == ((1e-3, 1e-5),)
    diff = res.frame.data - res.mosaic_clean
    expected = np.mean(cam.shot_noise * res.mosaic_clean + cam.read_noise)
    assert np.var(diff) == pytest.approx(expected, rel=0.15)
    with pytest.raises(ParameterError, match="rng"):
        unprocess(img, cam)


def test_unprocess_rejects_bad_input():
    cam = sample_camera(np.random.default_rng(0), noise="none")
    with pytest.raises(InputError, match="even"):
        unprocess(np.zeros((5, 4, 3), np.float32), cam)
    with pytest.raises(InputError, match="255"):
        unprocess(np.zeros((4, 4, 3), np.uint8), cam)
    with pytest.raises(InputError, match="NaN"):
        unprocess(np.full((4, 4, 3), np.nan, np.float32), cam)
    with pytest.raises(UnknownNameError):
        unprocess(np.zeros((4, 4, 3), np.float32), cam, curve="log")


def test_a_display_tone_stage_is_undone_and_one_without_inverse_refused():
    from ispkit.pipeline import Pipeline
    from ispkit.stages import BlackLevel, ColorMatrix, Demosaic, Exposure, Gamma, LocalContrast, ToneCurve, WhiteBalance

    tone = ToneCurve(points=((0.0, 0.0), (0.18, 0.3), (1.0, 1.0)))
    pipe = Pipeline([BlackLevel(), Exposure(), WhiteBalance(), Demosaic(), ColorMatrix(), tone, Gamma()])
    img = _smooth_image()
    res = unprocess(img, sample_camera(np.random.default_rng(4), noise="none"), tone=tone)
    out = pipe(res.frame).data
    assert _psnr(out[4:-4, 4:-4], img[4:-4, 4:-4]) > 60.0
    assert res.frame.meta.extra["unprocess"]["tone"]["type"] == "tone_curve"
    with pytest.raises(NotInvertibleError, match="local_contrast"):
        unprocess(img, sample_camera(np.random.default_rng(4), noise="none"), tone=LocalContrast())


def test_matrices_read_from_the_shared_captures_mix_convexly():
    """Cameras read at run time (Blackmagic DNG tags, the D750 sidecar) are mixed with convex weights."""
    import warnings

    from ispkit.io import load_bayer_raw, read_raw

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metas = [read_raw(data_path("raw", "blackmagic_pocket4k.dng")).meta,
                 load_bayer_raw(data_path("bayer", "d750_rose_768x512_rggb.raw")).meta]
    sys_mod = sys.modules["ispkit.stages.unprocess"]  # the package attribute is the function
    d65 = sys_mod._D65_XYZ
    basis = [sys_mod._normalised_xyz_to_cam(np.linalg.inv(sys_mod.camera_matrix_from_metadata(m))) for m in metas]
    for seed in range(3):
        cam = sample_camera(np.random.default_rng(seed), matrices=metas)
        xyz_to_cam = np.linalg.inv(cam.cam_to_xyz)
        xyz_to_cam /= (xyz_to_cam @ d65).max()
        a = np.stack([b.ravel() for b in basis], axis=1)
        w, *_ = np.linalg.lstsq(a, xyz_to_cam.ravel(), rcond=None)
        np.testing.assert_allclose(a @ w, xyz_to_cam.ravel(), atol=1e-9)
        assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-9)
