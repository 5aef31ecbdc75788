"""End-to-end physics checks of the synthetic capture (ispkit.io.synthetic)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ispkit.errors import ParameterError, UnknownNameError
from ispkit.frame import Domain
from ispkit.io.synthetic import SyntheticCapture, synthesize_capture
from ispkit.metrics import angular_error

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

_CHANNEL = {"R": 0, "G": 1, "B": 2}
_D65_XYZ = colour.xy_to_XYZ(colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])


def _normalised(cap: SyntheticCapture) -> np.ndarray:
    """Black-subtract and scale the mosaic to [0, 1] per 2×2 position."""
    m = cap.frame.meta
    raw = cap.frame.data.astype(np.float64)
    h, w = raw.shape
    black = np.tile(m.black_level.reshape(2, 2), (h // 2, w // 2))
    return (raw - black) / (m.white_level - black)


def _reference_render(cap: SyntheticCapture) -> np.ndarray:
    """A tiny independent pipeline: black level, WB gains, 2×2-block demosaic, colour, sRGB.

    Returns a half-size H/2×W/2×3 display-sRGB image.
    """
    m = cap.frame.meta
    x = _normalised(cap)
    gains = np.asarray(m.wb_gains)
    h, w = x.shape
    cam = np.zeros((h // 2, w // 2, 3))
    for k, letter in enumerate(m.cfa_pattern):
        dy, dx = divmod(k, 2)
        c = _CHANNEL[letter]
        cam[..., c] += x[dy::2, dx::2] * gains[c] * (0.5 if letter == "G" else 1.0)
    # white-balanced camera RGB → XYZ (undo the gains, then the camera matrix), exposure to Y=1 white
    to_xyz = m.cam_to_xyz @ np.diag(1.0 / gains) * 2.0 ** m.extra["baseline_exposure"]
    xyz = cam @ to_xyz.T
    white = m.cam_to_xyz @ (1.0 / gains)
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(white / white[1], _D65_XYZ,
                                                                 transform="Bradford")
    return np.clip(colour.XYZ_to_sRGB(xyz @ cat.T, apply_cctf_encoding=True), 0.0, 1.0)


def _patch_delta_e(cap: SyntheticCapture, display: np.ndarray) -> np.ndarray:
    means = np.array([display[y0 // 2:y1 // 2, x0 // 2:x1 // 2].reshape(-1, 3).mean(axis=0)
                      for y0, y1, x0, x1 in cap.patch_boxes])
    lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(means))
    return colour.delta_E(lab, cap.reference_lab, method="CIE 2000")


@pytest.mark.parametrize("illuminant, mean_limit, max_limit", [("D65", 1.5, 4.0), ("A", 3.0, 8.0)])
def test_colorchecker_delta_e_through_reference_pipeline(illuminant, mean_limit, max_limit):
    cap = synthesize_capture(illuminant=illuminant, size=(256, 384))
    de = _patch_delta_e(cap, _reference_render(cap))
    # measured: D65 mean 0.88 / max 2.5; A mean 2.56 / max 6.8 (2.1 of A's mean is the
    # Bradford adaptation error of the real reflectances, not the camera matrix)
    assert de.mean() < mean_limit and de.max() < max_limit
    assert de[18:22].max() < 1.0                          # the light neutrals stay neutral


def test_colorimetry_matches_colour_science_integration():
    cap = synthesize_capture(size=(128, 192), noise=False)
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    d65 = colour.SDS_ILLUMINANTS["D65"]
    sds = colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # colour reports aligning the spectra
        xyz = np.array([colour.sd_to_XYZ(sd, cmfs, d65) for sd in sds.values()]) / 100.0
    srgb = np.clip(colour.XYZ_to_sRGB(xyz, apply_cctf_encoding=True), 0, 1)
    lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(srgb))
    de = colour.delta_E(lab, cap.reference_lab, method="CIE 2000")
    assert de.max() < 0.6                 # 400–700 nm at 5 nm vs colour's ASTM E308 integration
    assert cap.patch_names[0] == "dark skin" and cap.patch_names[23].startswith("black")


def test_noise_matches_noise_profile_on_flat_patches():
    cap = synthesize_capture(size=(1024, 1536), iso=800, seed=3)
    m = cap.frame.meta
    x = _normalised(cap)
    checked = 0
    for patch in range(18, 24):                                  # the six neutral patches
        y0, y1, x0, x1 = cap.patch_boxes[patch]
        for c in range(3):
            samples = []
            for k, letter in enumerate(m.cfa_pattern):
                if _CHANNEL[letter] != c:
                    continue
                dy, dx = divmod(k, 2)
                samples.append(x[y0 + (dy - y0) % 2:y1:2, x0 + (dx - x0) % 2:x1:2].ravel())
            v = np.concatenate(samples)
            scale, offset = m.noise_profile[c]
            predicted = scale * v.mean() + offset
            assert v.var(ddof=1) == pytest.approx(predicted, rel=0.10), (patch, c)
            checked += 1
    assert checked == 18


@pytest.mark.parametrize("iso", [100, 3200])
def test_dark_frame_variance_is_the_noise_offset(iso):
    cap = synthesize_capture(size=(256, 384), iso=iso, exposure=1e-9)
    m = cap.frame.meta
    x = _normalised(cap)
    offset = m.noise_profile[0][1]
    assert x.var() == pytest.approx(offset, rel=0.05)
    assert abs(x.mean()) < 0.1 * np.sqrt(offset)


def test_noise_profile_scales_with_iso():
    lo = synthesize_capture(size=(64, 96), iso=100).frame.meta.noise_profile
    hi = synthesize_capture(size=(64, 96), iso=1600).frame.meta.noise_profile
    assert hi[0][0] == pytest.approx(16 * lo[0][0])
    assert lo[0][0] == pytest.approx(1e-4)                     # 1 / 10 000 e- full well
    assert hi[0][1] > lo[0][1] > 0


@pytest.mark.parametrize("illuminant", ["D65", "A", "F2", 3200.0])
def test_wb_gains_neutralise_gray_patches(illuminant):
    cap = synthesize_capture(illuminant=illuminant, size=(256, 384))
    m = cap.frame.meta
    x = _normalised(cap)
    angles = []
    for patch in range(18, 24):
        y0, y1, x0, x1 = cap.patch_boxes[patch]
        rgb = np.zeros(3)
        for k, letter in enumerate(m.cfa_pattern):
            dy, dx = divmod(k, 2)
            block = x[y0 + (dy - y0) % 2:y1:2, x0 + (dx - x0) % 2:x1:2]
            rgb[_CHANNEL[letter]] += block.mean() * (0.5 if letter == "G" else 1.0)
        angles.append(angular_error(rgb, 1.0 / np.asarray(m.wb_gains)))
    # white … neutral 5 are spectrally flat enough for < 0.5°; the real neutral 3.5 and
    # black patches are slightly tinted (≈0.5° and ≈1°).
    assert max(angles[:4]) < 0.5
    assert max(angles) < 1.5
    assert m.wb_gains[1] == 1.0
    np.testing.assert_allclose(cap.illuminant_rgb, 1.0 / np.asarray(m.wb_gains), rtol=1e-12)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_cfa_layouts_sample_the_right_channels(pattern):
    cap = synthesize_capture(cfa_pattern=pattern, size=(128, 192), noise=False)
    assert cap.frame.meta.cfa_pattern == pattern
    x = _normalised(cap)
    scene = cap.scene_camera_rgb
    span = cap.frame.meta.white_level - cap.frame.meta.black_level[0]
    for k, letter in enumerate(pattern):
        dy, dx = divmod(k, 2)
        got = x[dy::2, dx::2]
        want = scene[dy::2, dx::2, _CHANNEL[letter]]
        np.testing.assert_allclose(got, want, atol=0.5 / span + 1e-6)
        for other in {0, 1, 2} - {_CHANNEL[letter]}:          # any other channel is far off
            assert np.abs(got - scene[dy::2, dx::2, other]).max() > 0.05
    # on the red patch the red sites are brighter than the blue sites
    y0, y1, x0, x1 = cap.patch_boxes[14]
    r_at = divmod(pattern.index("R"), 2)
    b_at = divmod(pattern.index("B"), 2)
    red_mean = x[y0 + (r_at[0] - y0) % 2:y1:2, x0 + (r_at[1] - x0) % 2:x1:2].mean()
    blue_mean = x[y0 + (b_at[0] - y0) % 2:y1:2, x0 + (b_at[1] - x0) % 2:x1:2].mean()
    assert red_mean > 3 * blue_mean


def test_deterministic_for_a_seed():
    a = synthesize_capture(size=(64, 96), seed=7)
    b = synthesize_capture(size=(64, 96), seed=7)
    c = synthesize_capture(size=(64, 96), seed=8)
    np.testing.assert_array_equal(a.frame.data, b.frame.data)
    assert np.any(a.frame.data != c.frame.data)
    np.testing.assert_array_equal(a.scene_camera_rgb, c.scene_camera_rgb)   # the scene never depends on the seed
    assert a.frame.meta.to_dict() == b.frame.meta.to_dict()


def test_frame_counts_and_metadata():
    cap = synthesize_capture(size=(128, 192), bit_depth=14, black_level=512, iso=400)
    f, m = cap.frame, cap.frame.meta
    assert f.domain is Domain.RAW_MOSAIC and f.data.dtype == np.float32 and f.shape == (128, 192)
    assert np.all(f.data == np.round(f.data)) and f.data.min() >= 0 and f.data.max() <= 2 ** 14 - 1
    assert m.white_level == 2 ** 14 - 1 and np.all(m.black_level == 512)
    assert np.any(f.data == m.white_level)          # the neutral ramp runs into clipping
    assert m.make == "ispkit" and m.model == "synthetic Nikon 5100 (NPL)" and m.source == "synthetic:D65"
    assert m.iso == 400 and m.exposure_time == pytest.approx(1 / 500)
    assert len(m.noise_profile) == 3
    # DNG ColorMatrix normalisation: the illuminant's XYZ (Y = 1) maps to a camera neutral with max 1
    neutral = m.color_matrix1 @ cap.illuminant_xyz
    assert neutral.max() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(neutral / neutral[1], 1.0 / np.asarray(m.wb_gains), rtol=1e-10)
    np.testing.assert_allclose(m.cam_to_xyz @ m.color_matrix1, np.eye(3), atol=1e-12)
    assert cap.illuminant_xyz[1] == pytest.approx(1.0)
    np.testing.assert_allclose(m.cam_to_srgb.sum(axis=1), 1.0, atol=1e-12)
    assert m.calibration_illuminant1 == 21
    # exposure: the white patch's brightest channel sits at 0.7 of full scale
    y0, y1, x0, x1 = cap.patch_boxes[18]
    assert cap.scene_camera_rgb[y0:y1, x0:x1].max() == pytest.approx(0.7, abs=1e-5)
    assert cap.reference_lab.shape == (24, 3) and cap.reference_srgb.shape == (24, 3)
    assert cap.reference_image.shape == (128, 192, 3)
    assert len(cap.patch_boxes) == 24 and all(y1 > y0 and x1 > x0 for y0, y1, x0, x1 in cap.patch_boxes)


@pytest.mark.parametrize("illuminant, code", [("A", 17), ("F2", 14), (5000.0, 23), (2900.0, 17), (6400, 21)])
def test_calibration_illuminant_codes(illuminant, code):
    cap = synthesize_capture(illuminant=illuminant, size=(64, 96), noise=False)
    assert cap.frame.meta.calibration_illuminant1 == code


@pytest.mark.parametrize("cct", [2800.0, 5000.0, 7500.0])
def test_cct_illuminants_have_that_temperature(cct):
    cap = synthesize_capture(illuminant=cct, size=(64, 96), noise=False)
    xy = colour.XYZ_to_xy(cap.illuminant_xyz)
    measured, _duv = colour.temperature.uv_to_CCT_Ohno2013(colour.xy_to_UCS_uv(xy))
    assert measured == pytest.approx(cct, rel=0.01)
    assert cap.illuminant == f"{cct:.0f}K" and cap.frame.meta.source == f"synthetic:{cct:.0f}K"


def test_other_camera_and_exposure():
    cap = synthesize_capture(camera="Sigma SDMerill (NPL)", size=(64, 96), exposure=1.2, noise=False)
    y0, y1, x0, x1 = cap.patch_boxes[18]
    assert cap.scene_camera_rgb[y0:y1, x0:x1].max() == pytest.approx(1.0)   # overexposed: clipped
    assert cap.frame.meta.model == "synthetic Sigma SDMerill (NPL)"


def test_rejects_bad_parameters():
    with pytest.raises(UnknownNameError):
        synthesize_capture(illuminant="D93")
    with pytest.raises(UnknownNameError):
        synthesize_capture(camera="Canon 5D")
    with pytest.raises(UnknownNameError):
        synthesize_capture(cfa_pattern="RGBG")
    for bad in ({"size": (63, 96)}, {"size": (64, 95)}, {"size": (32, 48)}, {"bit_depth": 20},
                {"black_level": 5000}, {"exposure": -1.0}, {"exposure": "bright"}, {"iso": 0},
                {"illuminant": 100.0}, {"seed": -1}):
        with pytest.raises(ParameterError):
            synthesize_capture(**bad)
