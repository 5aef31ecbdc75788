"""DNG dual-illuminant colour, camera → working-space matrices and the ColorMatrix / ColorConvert stages."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from ispkit.errors import DomainError, InputError, MissingMetadataError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.stages.color_matrix import (
    EXIF_LIGHT_SOURCES,
    ColorConvert,
    ColorimetryWarning,
    ColorMatrix,
    DNGProfile,
    camera_to_working_matrix,
    dng_camera_to_xyz,
    dng_color_solution,
    light_source_cct,
    resolve_color_source,
    scene_illuminant_rgb,
)
from ispkit.stages.colorspaces import (
    COLOR_SPACES,
    apply_color_matrix_reference,
    cct_to_xy,
    get_color_space,
    rgb_to_rgb_matrix,
    whitepoint_xyz,
    xy_to_cct,
)
from tests.conftest import data_path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

ILLUMINANTS = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]
D50_XY = ILLUMINANTS["D50"]
D50_XYZ = colour.xy_to_XYZ(D50_XY)

# Canon EOS 5D Mark II profile used in colour-hdri's Adobe DNG SDK examples (CCTs 2850 K / 6500 K)
CANON_CM1 = np.array([[0.5309, -0.0229, -0.0336], [-0.6241, 1.3265, 0.3337], [-0.0817, 0.1215, 0.6664]])
CANON_CM2 = np.array([[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]])
CANON_FM = np.array([[0.8924, -0.1041, 0.1760], [0.4351, 0.6621, -0.0972], [0.0505, -0.1562, 0.9308]])


def _bradford(src_xyz, dst_xyz):
    return colour.adaptation.matrix_chromatic_adaptation_VonKries(src_xyz, dst_xyz, transform="Bradford")


def _derived(name: str):
    cs = colour.RGB_COLOURSPACES[COLOR_SPACES[name][0]].copy()
    cs.use_derived_transformation_matrices(True)
    return cs


# --- Exif light sources ------------------------------------------------------------------

def test_light_source_cct():
    assert light_source_cct(17) == pytest.approx(2856, abs=0.5)   # Standard light A
    assert light_source_cct(21) == pytest.approx(6504, abs=0.5)   # D65
    assert light_source_cct(23) == pytest.approx(5003, abs=2.5)   # D50 (Robertson: 5000.7 K)
    assert light_source_cct(20) == pytest.approx(5503, abs=2.5)   # D55
    assert light_source_cct(22) == pytest.approx(7504, abs=1.0)   # D75
    assert light_source_cct(24) == 3200.0                          # ISO studio tungsten
    assert light_source_cct(14) == 4200.0                          # cool white fluorescent 3900–4500 K
    assert light_source_cct(3) == light_source_cct(17)
    assert light_source_cct(21) == xy_to_cct(ILLUMINANTS["D65"])   # same method as the white's CCT
    for code in (None, 0, 255, 5, 99):
        assert light_source_cct(code) is None
    assert all(light_source_cct(c) > 2000 for c in EXIF_LIGHT_SOURCES)


# --- the DNG model against published numbers and hand calculations -------------------------

def test_dng_matches_colour_hdri_published_examples():
    # colour-hdri (Adobe DNG SDK port) doctests: camera_neutral_to_xy, XYZ_to_camera_space_matrix,
    # camera_space_to_XYZ_matrix for the Canon 5D Mark II profile
    profile = DNGProfile(CANON_CM1, CANON_CM2, 2850.0, 6500.0)
    xy, iterations = profile.neutral_to_xy([0.413070, 1.000000, 0.646465])
    np.testing.assert_allclose(xy, [0.3281624, 0.3469816], atol=1e-7)
    assert iterations <= 12
    xyz_to_cam = profile.interpolated([0.34510414, 0.35162252])[0]
    np.testing.assert_allclose(xyz_to_cam, [[0.4854908, 0.0408106, -0.0714282],
                                            [-0.7433278, 1.4956549, 0.2680749],
                                            [-0.1336946, 0.1767874, 0.6654045]], atol=1e-7)
    fm_profile = DNGProfile(CANON_CM1, CANON_CM2, 2850.0, 6500.0, forward_matrix1=CANON_FM, forward_matrix2=CANON_FM)
    xy_white = np.array([0.32816244, 0.34698169])
    neutral = fm_profile.interpolated(xy_white)[0] @ colour.xy_to_XYZ(xy_white)  # xy_to_camera_neutral
    np.testing.assert_allclose(neutral / neutral[1], [0.4130699, 1.0, 0.646465], atol=1e-6)
    solution = dng_color_solution(fm_profile, neutral)
    np.testing.assert_allclose(solution.white_xy, xy_white, atol=1e-8)
    # ispkit normalises the ForwardMatrix so camera (1,1,1) is exactly D50 (as the SDK does); undo it
    rescale = np.diag((CANON_FM @ np.ones(3)) / D50_XYZ)
    published = np.array([[2.1604087, -0.1041, 0.2722498],
                          [1.0533324, 0.6621, -0.1503561],
                          [0.1222553, -0.1562, 1.4398304]])
    np.testing.assert_allclose(rescale @ solution.camera_to_xyz_d50, published, atol=2e-6)


BMPCC_CM1 = np.array([[0.94953, -0.45496, 0.02829], [-0.35699, 1.32274, 0.19503], [-0.04625, 0.15492, 0.73498]])
BMPCC_CM2 = np.array([[0.68795, -0.24747, -0.04866], [-0.39256, 1.20114, 0.15793], [-0.08916, 0.20063, 0.58148]])


def _sdk_normalised(cm: np.ndarray) -> np.ndarray:
    """dng_camera_profile::NormalizeColorMatrix: scale so max(CM · D50) = 1 when it is off by > 1 %."""
    top = (cm @ D50_XYZ).max()
    return cm / top if not 0.99 <= top <= 1.01 else cm


def _bmpcc_like_profile() -> DNGProfile:
    # the Blackmagic Pocket 4K ColorMatrix1/2, already scaled as the SDK scales them
    return DNGProfile(_sdk_normalised(BMPCC_CM1), _sdk_normalised(BMPCC_CM2), light_source_cct(17),
                      light_source_cct(21))


def test_color_matrix_scaling_follows_the_sdk():
    # the BMPCC matrices give max(CM · D50) = 1.139 and 0.953: scaled before interpolating
    assert (BMPCC_CM1 @ D50_XYZ).max() == pytest.approx(1.13942, abs=1e-5)
    assert (BMPCC_CM2 @ D50_XYZ).max() == pytest.approx(0.95290, abs=1e-5)
    raw = DNGProfile(BMPCC_CM1, BMPCC_CM2, light_source_cct(17), light_source_cct(21))
    neutral = np.array([0.4533, 1.0, 0.53])
    a, b = dng_color_solution(raw, neutral), dng_color_solution(_bmpcc_like_profile(), neutral)
    np.testing.assert_allclose(a.white_xy, b.white_xy, atol=1e-14)
    np.testing.assert_allclose(a.camera_to_xyz_d50, b.camera_to_xyz_d50, atol=1e-14)
    # without the scaling the white would differ visibly
    g = b.weight
    unscaled = g * BMPCC_CM1 + (1 - g) * BMPCC_CM2
    assert np.abs(colour.XYZ_to_xy(np.linalg.solve(unscaled, neutral)) - b.white_xy).max() > 2e-4
    # the Canon matrices are within 1 % (1.00002, 1.00007) and are left as they are
    m, _, _, _, g = DNGProfile(CANON_CM1, CANON_CM2, 2850.0, 6500.0).interpolated(D50_XY)
    np.testing.assert_allclose(m, g * CANON_CM1 + (1 - g) * CANON_CM2, rtol=0, atol=1e-15)


@pytest.mark.parametrize("cct", [3400.0, 4300.0, 5600.0])
def test_neutral_to_xy_recovers_a_constructed_white(cct):
    # hand construction: a white on the Planckian locus, its weight from inverse CCT, the
    # interpolated ColorMatrix, and the camera neutral it produces; the iteration must find it again
    profile = _bmpcc_like_profile()
    xy0 = cct_to_xy(cct)
    t0 = xy_to_cct(xy0)
    t1, t2 = profile.cct1, profile.cct2
    g = (1 / t0 - 1 / t2) / (1 / t1 - 1 / t2)
    assert 0 < g < 1
    cm = g * profile.color_matrix1 + (1 - g) * profile.color_matrix2  # both within 1 % of unit D50 response
    neutral = cm @ colour.xy_to_XYZ(xy0)
    solution = dng_color_solution(profile, neutral)
    np.testing.assert_allclose(solution.white_xy, xy0, atol=1e-10)
    assert solution.cct == pytest.approx(cct, rel=1e-5)
    assert solution.weight == pytest.approx(g, abs=1e-9)
    assert solution.iterations <= 15
    np.testing.assert_allclose(solution.xyz_to_camera, cm, atol=1e-9)
    # ColorMatrix path: Bradford(white → D50) · inverse(CM), scaled so the neutral (max 1) has Y = 1
    ref = _bradford(colour.xy_to_XYZ(xy0), D50_XYZ) @ np.linalg.inv(cm)
    n1 = neutral / neutral.max()
    ref = ref / (ref @ n1)[1]
    np.testing.assert_allclose(solution.camera_to_xyz_d50, ref, atol=1e-9)
    np.testing.assert_allclose(solution.camera_to_xyz_d50 @ n1, D50_XYZ, atol=1e-12)


def test_weights_clip_outside_the_calibration_range():
    profile = _bmpcc_like_profile()
    warm = profile.color_matrix1 @ colour.xy_to_XYZ(cct_to_xy(2200.0))
    cold = profile.color_matrix2 @ colour.xy_to_XYZ(cct_to_xy(9500.0))
    s_warm, s_cold = dng_color_solution(profile, warm), dng_color_solution(profile, cold)
    assert s_warm.weight == 1.0 and s_cold.weight == 0.0
    assert s_warm.cct == pytest.approx(2200, rel=1e-5) and s_cold.cct == pytest.approx(9500, rel=1e-5)
    np.testing.assert_allclose(s_warm.xyz_to_camera, profile.color_matrix1, atol=1e-15)
    np.testing.assert_allclose(s_cold.xyz_to_camera, profile.color_matrix2, atol=1e-15)
    assert profile.weight(light_source_cct(17)) == 1.0 and profile.weight(light_source_cct(21)) == 0.0


def test_forward_matrix_path_with_calibration_and_analog_balance():
    base = _bmpcc_like_profile()
    cc1 = np.diag([1.02, 1.0, 0.97]) + 0.01
    cc2 = np.diag([0.98, 1.0, 1.03])
    ab = np.array([1.1, 1.0, 0.9])
    fm1 = np.array([[0.40018, 0.46878, 0.09517], [0.03209, 0.99278, -0.02487], [-0.00228, -0.45168, 1.2794]])
    fm2 = np.array([[0.61439, 0.34862, 0.00112], [0.20367, 0.95223, -0.1559], [0.01959, -0.22077, 1.02661]])
    profile = DNGProfile(base.color_matrix1, base.color_matrix2, base.cct1, base.cct2, cc1, cc2, ab, fm1, fm2)
    neutral = np.array([0.45, 1.0, 0.53])
    s = dng_color_solution(profile, neutral)
    assert s.forward_matrix_used and 0 < s.weight < 1
    g = s.weight
    # spec formulas by hand
    abcc = np.diag(ab) @ (g * cc1 + (1 - g) * cc2)
    xyz_to_cam = abcc @ (g * base.color_matrix1 + (1 - g) * base.color_matrix2)
    np.testing.assert_allclose(s.xyz_to_camera, xyz_to_cam, atol=1e-12)
    np.testing.assert_allclose(colour.XYZ_to_xy(np.linalg.solve(xyz_to_cam, neutral)), s.white_xy, atol=1e-10)
    norm = lambda fm: np.diag(D50_XYZ / (fm @ np.ones(3))) @ fm  # noqa: E731  (SDK NormalizeForwardMatrix)
    fm = g * norm(fm1) + (1 - g) * norm(fm2)
    n1 = neutral / neutral.max()
    reference_neutral = np.linalg.inv(abcc) @ n1
    expected = fm @ np.linalg.inv(np.diag(reference_neutral)) @ np.linalg.inv(abcc)
    np.testing.assert_allclose(s.camera_to_xyz_d50, expected, atol=1e-12)
    np.testing.assert_allclose(s.camera_to_xyz_d50 @ n1, D50_XYZ, atol=1e-13)


def test_single_illuminant_profile():
    cm = _bmpcc_like_profile().color_matrix2
    meta = CaptureMetadata(color_matrix1=cm, calibration_illuminant1=21, wb_gains=[2.2, 1.0, 1.9])
    s = dng_color_solution(meta)
    assert s.iterations == 1 and s.weight == 1.0 and not s.forward_matrix_used
    neutral = 1 / np.array([2.2, 1.0, 1.9])
    xyz = np.linalg.solve(cm, neutral)
    np.testing.assert_allclose(s.white_xy, colour.XYZ_to_xy(xyz), atol=1e-14)
    assert s.cct == pytest.approx(xy_to_cct(s.white_xy))
    ref = _bradford(xyz / xyz[1], D50_XYZ) @ np.linalg.inv(cm) / xyz[1]
    np.testing.assert_allclose(dng_camera_to_xyz(meta), ref, atol=1e-12)
    # only the second set present: it is used as the single one
    meta2 = CaptureMetadata(color_matrix2=cm, calibration_illuminant2=21, wb_gains=[2.2, 1.0, 1.9])
    np.testing.assert_allclose(dng_camera_to_xyz(meta2), ref, atol=1e-12)
    # an unknown calibration illuminant makes a dual profile single
    meta3 = meta.replace(color_matrix2=_bmpcc_like_profile().color_matrix1, calibration_illuminant2=0)
    np.testing.assert_allclose(dng_camera_to_xyz(meta3), ref, atol=1e-12)


def _dng_tags(path):
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffFile(path) as tif:
        tags = {t.name: t.value for t in tif.pages[0].tags.values()}

    def rational(name):
        v = np.asarray(tags[name], dtype=np.float64)
        return v[0::2] / v[1::2]

    return dict(
        color_matrix1=rational("ColorMatrix1").reshape(3, 3), color_matrix2=rational("ColorMatrix2").reshape(3, 3),
        forward_matrix1=rational("ForwardMatrix1").reshape(3, 3),
        forward_matrix2=rational("ForwardMatrix2").reshape(3, 3),
        camera_calibration1=rational("CameraCalibration1").reshape(3, 3),
        camera_calibration2=rational("CameraCalibration2").reshape(3, 3),
        analog_balance=rational("AnalogBalance"),
        calibration_illuminant1=int(tags["CalibrationIlluminant1"]),
        calibration_illuminant2=int(tags["CalibrationIlluminant2"]),
        wb_gains=1.0 / rational("AsShotNeutral"), source=str(path),
    )


def test_real_dng_blackmagic():
    path = data_path("raw", "blackmagic_pocket4k.dng")
    tags = _dng_tags(path)
    assert (tags["calibration_illuminant1"], tags["calibration_illuminant2"]) == (17, 21)
    meta = CaptureMetadata(**tags)
    s = dng_color_solution(meta)
    assert s.forward_matrix_used
    neutral = 1.0 / tags["wb_gains"]
    white = s.camera_to_xyz_d50 @ (neutral / neutral.max())
    np.testing.assert_allclose(colour.XYZ_to_xy(white), D50_XY, atol=1e-6)
    np.testing.assert_allclose(white, D50_XYZ, atol=1e-12)
    # as-shot neutral (0.4533, 1, 0.53): a white of about 4100 K, between A and D65
    assert s.cct == pytest.approx(4102.7, abs=0.5)
    np.testing.assert_allclose(s.white_xy, [0.377483, 0.379805], atol=2e-6)
    assert s.weight == pytest.approx(0.4581, abs=1e-3)
    assert s.iterations <= 12
    # the ColorMatrix path finds the same white and also sends it to D50
    cm_only = meta.replace(forward_matrix1=None, forward_matrix2=None)
    s2 = dng_color_solution(cm_only)
    assert not s2.forward_matrix_used
    np.testing.assert_allclose(s2.white_xy, s.white_xy, atol=1e-12)
    np.testing.assert_allclose(s2.camera_to_xyz_d50 @ (neutral / neutral.max()), D50_XYZ, atol=1e-12)
    # white-balanced (1,1,1) → sRGB white, in both paths
    for m in (meta, cm_only):
        np.testing.assert_allclose(camera_to_working_matrix(m, "srgb") @ np.ones(3), np.ones(3), atol=1e-13)


def test_real_dng_agrees_with_libraw_rgb_cam():
    # LibRaw builds rgb_cam from the D65 ColorMatrix (ColorMatrix2) with a D65 white; the same
    # white through ispkit's cam_to_xyz path gives the same matrix up to dcraw's rounded sRGB
    # matrix and float32 storage
    rawpy = pytest.importorskip("rawpy")
    path = data_path("raw", "blackmagic_pocket4k.dng")
    tags = _dng_tags(path)
    with rawpy.imread(str(path)) as raw:
        rgb_cam = np.array(raw.color_matrix[:, :3], dtype=np.float64)
    cm2 = tags["color_matrix2"]
    meta = CaptureMetadata(cam_to_xyz=np.linalg.inv(cm2), illuminant_rgb=cm2 @ whitepoint_xyz("srgb"))
    np.testing.assert_allclose(camera_to_working_matrix(meta, "srgb"), rgb_cam, atol=2e-4)


# --- camera → working space ----------------------------------------------------------------

XYZ_TO_CAM = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028], [-0.0908, 0.2162, 0.5668]])


def _sources_meta(**over) -> CaptureMetadata:
    bm = _bmpcc_like_profile()
    kw = dict(color_matrix1=bm.color_matrix1, color_matrix2=bm.color_matrix2, calibration_illuminant1=17,
              calibration_illuminant2=21, cam_to_xyz=np.linalg.inv(XYZ_TO_CAM),
              cam_to_srgb=[[1.7, -0.5, -0.2], [-0.2, 1.5, -0.3], [0.0, -0.5, 1.5]], wb_gains=[2.0, 1.0, 1.6],
              source="synthetic.dng")
    kw.update(over)
    return CaptureMetadata(**kw)


@pytest.mark.parametrize("space", list(COLOR_SPACES))
@pytest.mark.parametrize("source", ["dng", "cam_to_xyz", "libraw"])
def test_white_maps_to_space_white(space, source):
    m = camera_to_working_matrix(_sources_meta(), space, source)
    white = whitepoint_xyz("xyz") if space == "XYZ" else np.ones(3)
    np.testing.assert_allclose(m @ np.ones(3), white, atol=2e-15 if source != "libraw" else 1e-12)


def test_cam_to_xyz_source_against_colour(rng):
    # a consistent synthetic camera: native = XYZ_TO_CAM · XYZ under illuminant A
    xyz_white = colour.xy_to_XYZ(ILLUMINANTS["A"])
    illuminant = XYZ_TO_CAM @ xyz_white
    meta = CaptureMetadata(cam_to_xyz=np.linalg.inv(XYZ_TO_CAM), illuminant_rgb=illuminant * 7.5)
    xyz = rng.uniform(0.02, 0.9, (50, 3))
    native = xyz @ XYZ_TO_CAM.T
    wb = native / illuminant  # white-balanced: the white → (1, 1, 1)
    for space in ("sRGB", "ProPhoto RGB", "ITU-R BT.2020"):
        m = camera_to_working_matrix(meta, space, "cam_to_xyz")
        cs = get_color_space(space)
        adapted = colour.chromatic_adaptation(xyz, xyz_white, colour.xy_to_XYZ(cs.whitepoint),
                                              method="Von Kries", transform="Bradford")
        ref = colour.XYZ_to_RGB(adapted, _derived(space), illuminant=cs.whitepoint,
                                chromatic_adaptation_transform=None)
        np.testing.assert_allclose(wb @ m.T, ref, rtol=0, atol=1e-12)
    xyz_out = camera_to_working_matrix(meta, "xyz", "cam_to_xyz")
    np.testing.assert_allclose(wb @ xyz_out.T, colour.chromatic_adaptation(
        xyz, xyz_white, D50_XYZ, method="Von Kries", transform="Bradford"), atol=1e-12)


def test_dng_source_is_forward_chain():
    meta = _sources_meta(illuminant_rgb=[0.52, 1.0, 0.61])
    cam_to_xyz = dng_camera_to_xyz(meta)
    ill = np.array([0.52, 1.0, 0.61])
    expected = (get_color_space("srgb").xyz_to_rgb @ _bradford(D50_XYZ, whitepoint_xyz("srgb")) @ cam_to_xyz
                @ np.diag(ill / (cam_to_xyz @ ill)[1]))
    np.testing.assert_allclose(camera_to_working_matrix(meta, "sRGB", "dng"), expected, atol=1e-12)
    # illuminant_rgb wins over wb_gains; both absent means (1, 1, 1)
    np.testing.assert_array_equal(scene_illuminant_rgb(meta), ill)
    np.testing.assert_allclose(scene_illuminant_rgb(_sources_meta()), [0.5, 1.0, 0.625])
    np.testing.assert_array_equal(scene_illuminant_rgb(CaptureMetadata()), np.ones(3))


def test_libraw_source_and_none():
    meta = _sources_meta()
    rgb_cam = np.asarray(meta.cam_to_srgb)
    np.testing.assert_allclose(camera_to_working_matrix(meta, "srgb", "libraw"), rgb_cam, atol=1e-15)
    pro = camera_to_working_matrix(meta, "prophoto", "libraw")
    wb = np.array([[0.2, 0.5, 0.7], [1.0, 1.0, 1.0]])
    ref = colour.RGB_to_RGB(wb @ rgb_cam.T, _derived("sRGB"), _derived("ProPhoto RGB"),
                            chromatic_adaptation_transform="Bradford")
    np.testing.assert_allclose(wb @ pro.T, ref, atol=1e-12)
    np.testing.assert_array_equal(camera_to_working_matrix(meta, "p3", "none"), np.eye(3))


def test_auto_priority_and_missing():
    full = _sources_meta()
    assert resolve_color_source(full) == "dng"
    no_dng = full.replace(color_matrix1=None, color_matrix2=None)
    assert resolve_color_source(no_dng) == "cam_to_xyz"
    only_libraw = no_dng.replace(cam_to_xyz=None)
    assert resolve_color_source(only_libraw) == "libraw"
    assert resolve_color_source(only_libraw.replace(cam_to_srgb=None)) is None
    np.testing.assert_array_equal(camera_to_working_matrix(full), camera_to_working_matrix(full, source="dng"))
    np.testing.assert_array_equal(camera_to_working_matrix(no_dng), camera_to_working_matrix(no_dng, source="cam_to_xyz"))
    with pytest.raises(MissingMetadataError, match="synthetic.dng"):
        camera_to_working_matrix(only_libraw.replace(cam_to_srgb=None))
    with pytest.raises(MissingMetadataError, match="color_matrix1"):
        camera_to_working_matrix(no_dng, source="dng")
    with pytest.raises(MissingMetadataError, match="cam_to_xyz"):
        camera_to_working_matrix(only_libraw, source="cam_to_xyz")
    with pytest.raises(UnknownNameError, match="libraw"):
        camera_to_working_matrix(full, source="adobe")
    with pytest.raises(ParameterError):
        camera_to_working_matrix(full.replace(wb_gains=[1.0, 0.0, 1.0]), source="cam_to_xyz")
    with pytest.raises(InputError):  # a "white" with negative luminance is no colour
        camera_to_working_matrix(no_dng.replace(illuminant_rgb=[1e-3, 1e-3, 5.0],
                                                cam_to_xyz=np.diag([1.0, -1.0, 1.0])), source="cam_to_xyz")


# --- the stages ----------------------------------------------------------------------------

def _camera_frame(meta: CaptureMetadata, rng) -> Frame:
    return Frame(rng.uniform(0.0, 1.2, (12, 17, 3)).astype(np.float32), Domain.CAMERA_RGB, meta)


def test_color_matrix_stage(rng):
    meta = _sources_meta()
    frame = _camera_frame(meta, rng)
    out = ColorMatrix(output_space="prophoto")(frame)
    assert out.domain is Domain.LINEAR_RGB and out.meta.color_space == "ProPhoto RGB"
    assert out.data.dtype == np.float32
    m = camera_to_working_matrix(meta, "ProPhoto RGB")
    np.testing.assert_allclose(out.data, apply_color_matrix_reference(frame.data, m), rtol=1e-6, atol=1e-6)
    ccm = ((1.5, -0.3, -0.2), (-0.1, 1.2, -0.1), (0.0, -0.4, 1.4))
    out2 = ColorMatrix(ccm=ccm, output_space="p3")(frame)
    assert out2.meta.color_space == "Display P3"
    np.testing.assert_allclose(out2.data, apply_color_matrix_reference(frame.data, np.array(ccm)), rtol=1e-6, atol=1e-6)
    out3 = ColorMatrix(source="none")(frame)
    assert out3.meta.color_space == "camera"
    np.testing.assert_array_equal(out3.data, frame.data)
    clipped = ColorMatrix(clip=True)(frame)
    assert clipped.data.min() >= 0 and clipped.data.max() <= 1
    assert ColorMatrix().spec.pointwise and ColorMatrix().spec.out_domain is Domain.LINEAR_RGB


def test_color_matrix_without_any_matrix_warns(rng):
    meta = CaptureMetadata(wb_gains=[1.5, 1.0, 1.3], source="/data/kodak_dc50.kdc")
    frame = _camera_frame(meta, rng)
    with pytest.warns(ColorimetryWarning, match=r"kodak_dc50\.kdc.*camera RGB, not colorimetric"):
        out = ColorMatrix()(frame)
    assert out.domain is Domain.LINEAR_RGB and out.meta.color_space == "camera"
    np.testing.assert_array_equal(out.data, frame.data)
    assert issubclass(ColorimetryWarning, UserWarning)
    with pytest.raises(MissingMetadataError):
        ColorMatrix(source="cam_to_xyz")(frame)


def test_color_matrix_without_matrix_on_real_kdc():
    # the Kodak DC50 has no colour matrix in LibRaw: build its metadata from rawpy directly
    rawpy = pytest.importorskip("rawpy")
    path = data_path("raw", "kodak_dc50.kdc")
    with rawpy.imread(str(path)) as raw:
        assert not np.any(raw.rgb_xyz_matrix) and not np.any(raw.color_matrix)
    meta = CaptureMetadata(source=str(path))
    frame = Frame(np.full((4, 6, 3), 0.4, np.float32), Domain.CAMERA_RGB, meta)
    with pytest.warns(ColorimetryWarning, match="kodak_dc50.kdc"):
        assert ColorMatrix()(frame).meta.color_space == "camera"


def test_color_matrix_parameters():
    stage = ColorMatrix(output_space="rec2020", source="libraw", ccm=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert stage.ccm == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    assert ColorMatrix.from_params(stage.to_config()["params"]) == stage
    assert ColorMatrix(ccm=np.eye(3)).ccm == stage.ccm
    with pytest.raises(ParameterError, match="output_space"):
        ColorMatrix(output_space="cmyk")
    with pytest.raises(ParameterError, match="source"):
        ColorMatrix(source="adobe")
    with pytest.raises(ParameterError, match="ccm"):
        ColorMatrix(ccm=((1.0, 0.0), (0.0, 1.0)))
    with pytest.raises(ParameterError, match="ccm"):
        ColorMatrix(ccm=((np.nan, 0, 0), (0, 1, 0), (0, 0, 1)))
    with pytest.raises(ParameterError):
        ColorMatrix(clip="yes")


def test_color_convert_stage(rng):
    data = rng.uniform(0, 1, (9, 11, 3)).astype(np.float32)
    frame = Frame(data, Domain.LINEAR_RGB, CaptureMetadata(color_space="sRGB"))
    out = ColorConvert(output_space="p3")(frame)
    assert out.meta.color_space == "Display P3" and out.domain is Domain.LINEAR_RGB
    ref = colour.RGB_to_RGB(data.astype(np.float64), _derived("sRGB"), _derived("Display P3"),
                            chromatic_adaptation_transform="Bradford")
    np.testing.assert_allclose(out.data, ref, rtol=1e-6, atol=1e-6)
    back = ColorConvert(output_space="srgb")(ColorConvert(output_space="prophoto")(frame))
    np.testing.assert_allclose(back.data, data, atol=2e-6)
    np.testing.assert_allclose(rgb_to_rgb_matrix("srgb", "prophoto") @ rgb_to_rgb_matrix("prophoto", "srgb"),
                               np.eye(3), atol=1e-14)
    with pytest.raises(DomainError, match="camera RGB"):
        ColorConvert()(frame.replace(color_space="camera"))
    with pytest.raises(MissingMetadataError):
        ColorConvert()(frame.replace(color_space=None))
    with pytest.raises(UnknownNameError):
        ColorConvert()(frame.replace(color_space="weird"))
    with pytest.raises(ParameterError, match="cat"):
        ColorConvert(cat="nope")
    assert ColorConvert.from_params(ColorConvert(output_space="xyz", cat="cat16").to_config()["params"]) == \
        ColorConvert(output_space="xyz", cat="cat16")


# --- the render path stays free of colour-science -------------------------------------------

_NO_COLOUR_SCRIPT = """
import sys
import numpy as np
import ispkit
from ispkit.frame import CaptureMetadata
from ispkit.stages.color_matrix import EXIF_LIGHT_SOURCES, ColorConvert, ColorMatrix, light_source_cct
from ispkit.stages.colorspaces import COLOR_SPACES, cct_to_xy, chromatic_adaptation_matrix, xy_to_cct
cm1, cm2, fm = (np.array(m) for m in {matrices!r})
dual = dict(color_matrix1=cm1, color_matrix2=cm2, calibration_illuminant1=17, calibration_illuminant2=21,
            wb_gains=[2.1, 1.0, 1.5])
metas = [CaptureMetadata(**dual), CaptureMetadata(**dual, forward_matrix1=fm, forward_matrix2=fm),
         CaptureMetadata(color_matrix1=cm2, calibration_illuminant1=23, wb_gains=[1.9, 1.0, 1.4]),
         CaptureMetadata(cam_to_xyz=np.linalg.inv(cm2), wb_gains=[1.9, 1.0, 1.4]),
         CaptureMetadata(cam_to_srgb=np.eye(3) * 1.1 - 0.05)]
out = [light_source_cct(code) for code in EXIF_LIGHT_SOURCES]
for meta in metas:
    for space in COLOR_SPACES:
        out.append(ColorMatrix(output_space=space).matrix_for(meta)[0])
out += [xy_to_cct(cct_to_xy(np.linspace(2000, 12000, 9))), chromatic_adaptation_matrix([0.44, 0.40], [0.31, 0.33])]
assert all(np.all(np.isfinite(v)) for v in out)
ColorConvert(output_space="prophoto", cat="bradford")
print(sorted(m for m in sys.modules if m.split(".")[0] == "colour" or m in ("scipy.interpolate", "scipy.special")))
"""


def test_render_colorimetry_does_not_import_colour_science():
    # importing colour-science costs about a second: the default render path (Exif light sources,
    # DNG dual-illuminant solution, Bradford, Robertson CCT, every working space) uses the literal
    # tables instead, and `import ispkit` pulls in neither colour nor scipy.interpolate/special
    matrices = tuple(m.tolist() for m in (CANON_CM1, CANON_CM2, CANON_FM))
    res = subprocess.run([sys.executable, "-c", _NO_COLOUR_SCRIPT.format(matrices=matrices)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
