"""DNG profile rendering after the colour matrix: ProfileHueSatMap and DefaultBlackRender (issue 12 §3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ispkit
from ispkit.errors import ParameterError
from ispkit.frame import cfa_color_indices
from ispkit.io import write_dng
from ispkit.stages.color_matrix import dng_color_solution
from ispkit.stages.colorspaces import rgb_to_rgb_matrix
from ispkit.stages.dng_render import BlackRender, HueSatMap, LookTable, apply_hue_sat_map, exposure_ramp

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

BMPCC4K_A = np.array([[0.94953, -0.45496, 0.02829], [-0.35699, 1.32274, 0.19503], [-0.04625, 0.15492, 0.73498]])
BMPCC4K_D65 = np.array([[0.68795, -0.24747, -0.04866], [-0.39256, 1.20114, 0.15793], [-0.08916, 0.20063, 0.58148]])
SIZE = (64, 96)
#: native camera values (fraction of white − black) of six flat patches, 2 rows × 3 columns
PATCHES = np.array([[0.20, 0.30, 0.15], [0.30, 0.25, 0.08], [0.08, 0.20, 0.22],
                    [0.12, 0.12, 0.12], [0.05, 0.09, 0.03], [0.28, 0.18, 0.26]])


def _patch_mosaic(pattern="RGGB", black=256, white=4095, scale=1.0):
    h, w = SIZE
    idx = cfa_color_indices(pattern)
    out = np.empty(SIZE)
    for k in range(6):
        y, x = divmod(k, 3)
        ys, xs = slice(y * h // 2, (y + 1) * h // 2), slice(x * w // 3, (x + 1) * w // 3)
        for dy in (0, 1):
            for dx in (0, 1):
                out[ys, xs][dy::2, dx::2] = black + scale * PATCHES[k, idx[dy, dx]] * (white - black)
    return np.rint(out).astype(np.uint16)


def _patch_means(img):
    h, w = SIZE
    m = 7
    return np.array([img[(k // 3) * h // 2 + m:(k // 3 + 1) * h // 2 - m,
                         (k % 3) * w // 3 + m:(k % 3 + 1) * w // 3 - m].reshape(-1, 3).mean(axis=0)
                     for k in range(6)])


def _srgb_decode(v):
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb_encode(v):
    v = np.maximum(np.asarray(v, np.float64), 0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


# --- the exposure ramp (DefaultBlackRender = Auto) --------------------------------------------------


def test_exposure_ramp_is_the_sdk_ramp():
    """dng_function_exposure_ramp(white 1, black b, minBlack b): 0, parabola of radius b/2, then (x − b)/(1 − b)."""
    b = 0.005
    slope, r = 1 / (1 - b), b / 2
    x = np.array([0.0, b - r, b - r / 2, b, b + r, 0.1, 0.5, 1.0, 1.5])
    q = slope / (4 * r)
    want = np.where(x <= b - r, 0, np.where(x >= b + r, (x - b) * slope, q * (x - b + r) ** 2))
    np.testing.assert_allclose(exposure_ramp(x, b), want, rtol=1e-6, atol=1e-9)
    assert exposure_ramp([1.0], b)[0] == pytest.approx(1.0) and exposure_ramp([1.5], b)[0] > 1  # no clip at 1
    # C1 at the join: the parabola meets the line with the line's slope
    eps = 1e-7
    left = (exposure_ramp([b + r], b)[0] - exposure_ramp([b + r - eps], b)[0]) / eps
    assert left == pytest.approx(slope, rel=1e-2)
    with pytest.raises(ParameterError):
        exposure_ramp([0.1], 1.0)


@pytest.mark.parametrize("default_black_render", [None, 0, 1])
def test_default_black_render_from_the_dng(tmp_path, default_black_render):
    """Auto (0, or the tag absent) subtracts the SDK's default black 5·0.001·2^max(0, BE); None (1) leaves the frame."""
    be = 0.5
    path = write_dng(tmp_path / "dbr.dng", _patch_mosaic(scale=0.5), "RGGB", black_level=256, white_level=4095,
                     color_matrix1=BMPCC4K_D65, calibration_illuminant1=21, as_shot_neutral=[0.55, 1.0, 0.62],
                     baseline_exposure=be, default_black_render=default_black_render)
    frame = ispkit.read_raw(path)
    plain = ispkit.load_preset("default").remove("tone").remove("gamma")  # linear sRGB out
    with_black = plain.insert_after("color_matrix", BlackRender())
    a = plain.run(frame, fuse=False).output.data
    out = with_black.run(frame, fuse=False).output
    b = out.data
    black = 0.0 if default_black_render == 1 else 0.005 * 2 ** be
    assert out.meta.extra["black_render"] == pytest.approx(black)
    lin_a, lin_b = _patch_means(a).astype(np.float64), _patch_means(b).astype(np.float64)
    assert np.all(lin_a > 0.01) and np.all(lin_a < 0.95)
    if default_black_render == 1:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(lin_b, (lin_a - black) / (1 - black), rtol=1e-5, atol=1e-6)
        assert np.all(lin_b < lin_a)
    # respect_dng=False applies the black even when the file says None
    forced = plain.insert_after("color_matrix", BlackRender(respect_dng=False)).run(frame, fuse=False).output
    assert forced.meta.extra["black_render"] == pytest.approx(0.005 * 2 ** be)


# --- ProfileHueSatMap ---------------------------------------------------------------------------------


def _identity(n_val, n_hue, n_sat):
    t = np.zeros((n_val, n_hue, n_sat, 3))
    t[..., 1:] = 1.0
    return t


def test_hue_sat_map_identity_and_uniform_edits():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.02, 0.9, (200, 3))
    for enc in ("linear", "srgb"):
        np.testing.assert_allclose(apply_hue_sat_map(x, _identity(3, 6, 4), encoding=enc), x, atol=2e-6)
    hsv = colour.RGB_to_HSV(x)
    t = _identity(1, 6, 4)
    t[..., 0] = 30.0       # every hue turned by +30°
    t[..., 1] = 0.5        # saturation halved
    t[..., 2] = 0.8        # value × 0.8
    got = colour.RGB_to_HSV(apply_hue_sat_map(x, t).astype(np.float64))
    np.testing.assert_allclose(np.mod(got[:, 0] - hsv[:, 0] - 30 / 360 + 0.5, 1) - 0.5, 0, atol=2e-6)
    np.testing.assert_allclose(got[:, 1], 0.5 * hsv[:, 1], atol=2e-6)
    np.testing.assert_allclose(got[:, 2], 0.8 * hsv[:, 2], atol=2e-6)
    with pytest.raises(ParameterError):
        apply_hue_sat_map(x, np.zeros((1, 6, 1, 3)))


def _reference_hue_sat_map(rgb, table, encoding):
    """Per-pixel transcription of the DNG 1.6 ProfileHueSatMap description.

    Hue divisions are spaced around the circle from red (hue 0), saturation
    divisions from 0 to 1 inclusive, value divisions from 0 to 1 inclusive
    (in sRGB-encoded value when the encoding is sRGB); the three entries are
    interpolated (tri)linearly, the hue shift is added in degrees, saturation
    and value are scaled (and limited to 1).
    """
    n_val, n_hue, n_sat = table.shape[:3]
    out = np.empty_like(rgb)
    for i, px in enumerate(rgb):
        h, s, v = colour.RGB_to_HSV(px)
        v_axis = float(_srgb_encode(v)) if encoding == "srgb" else v
        hc = h * n_hue
        h_lo = int(np.floor(hc)) % n_hue
        h_hi, hw = (h_lo + 1) % n_hue, hc - np.floor(hc)
        sc = min(s, 1.0) * (n_sat - 1)
        s_lo = min(int(np.floor(sc)), n_sat - 1)
        s_hi, sw = min(s_lo + 1, n_sat - 1), sc - s_lo
        vc = min(max(v_axis, 0.0), 1.0) * (n_val - 1)
        v_lo = min(int(np.floor(vc)), n_val - 1)
        v_hi, vw = min(v_lo + 1, n_val - 1), vc - v_lo
        e = np.zeros(3)
        for vi, a in ((v_lo, 1 - vw), (v_hi, vw)):
            for hi, b in ((h_lo, 1 - hw), (h_hi, hw)):
                for si, c in ((s_lo, 1 - sw), (s_hi, sw)):
                    e += a * b * c * table[vi, hi, si]
        h2 = (h + e[0] / 360.0) % 1.0
        s2 = min(s * e[1], 1.0)
        if encoding == "srgb":
            v2 = float(_srgb_decode(min(v_axis * e[2], 1.0)))
        else:
            v2 = min(v * e[2], 1.0)
        out[i] = colour.HSV_to_RGB([h2, s2, v2])
    return out


def _random_table(rng, n_val, n_hue, n_sat, strength=1.0):
    t = _identity(n_val, n_hue, n_sat)
    t[..., 0] = rng.uniform(-12, 12, t.shape[:3]) * strength
    t[..., 1] = 1 + rng.uniform(-0.25, 0.25, t.shape[:3]) * strength
    t[..., 2] = 1 + rng.uniform(-0.15, 0.15, t.shape[:3]) * strength
    return t


@pytest.mark.parametrize("encoding", ["linear", "srgb"])
@pytest.mark.parametrize("dims", [(1, 90, 25), (4, 12, 6)], ids=["2.5D", "3D"])
def test_hue_sat_map_matches_the_spec_description(encoding, dims):
    rng = np.random.default_rng(7)
    table = _random_table(rng, *dims)
    x = rng.uniform(0.0, 1.0, (300, 3)) ** 1.5
    x[:3] = [[0.5, 0.5, 0.5], [0.9, 0.1, 0.1], [0.2, 0.4, 0.4]]  # a neutral, a red (hue 0), a cyan
    np.testing.assert_allclose(apply_hue_sat_map(x, table, encoding=encoding),
                               _reference_hue_sat_map(x, table, encoding), atol=5e-6)


def test_dng_hue_sat_map_tags_render_through_the_pipeline(tmp_path):
    """Dims, Data1/Data2 (mixed with the colour matrices' weight) and Encoding written into a DNG.

    The stage's output equals the render without it, taken to linear
    ProPhoto, mapped by the spec description with the tables mixed at the
    white's interpolation weight (indexing the value axis at the unexposed
    level), and taken back to sRGB.
    """
    rng = np.random.default_rng(3)
    n_hue, n_sat, n_val = 8, 5, 3
    t1 = _random_table(rng, n_val, n_hue, n_sat)
    t2 = _random_table(rng, n_val, n_hue, n_sat)
    be = 0.4
    path = write_dng(tmp_path / "hsm.dng", _patch_mosaic("BGGR"), "BGGR", black_level=256, white_level=4095,
                     color_matrix1=BMPCC4K_A, calibration_illuminant1=17, color_matrix2=BMPCC4K_D65,
                     calibration_illuminant2=21, as_shot_neutral=[0.62, 1.0, 0.48], baseline_exposure=be,
                     hue_sat_map_dims=(n_hue, n_sat, n_val), hue_sat_map_data1=t1.ravel(),
                     hue_sat_map_data2=t2.ravel(), hue_sat_map_encoding=1)
    frame = ispkit.read_raw(path)
    plain = ispkit.load_preset("default").remove("tone").remove("gamma")  # linear sRGB out
    mapped = plain.insert_after("color_matrix", HueSatMap())
    a = _patch_means(plain.run(frame, fuse=False).output.data).astype(np.float64)
    b = _patch_means(mapped.run(frame, fuse=False).output.data).astype(np.float64)
    g = dng_color_solution(frame.meta).weight
    assert 0.05 < g < 0.95
    table = g * t1.astype(np.float32) + (1 - g) * t2.astype(np.float32)
    to_pp = rgb_to_rgb_matrix("sRGB", "ProPhoto RGB", "bradford")
    pp = a @ to_pp.T / 2 ** be                       # the SDK maps before the exposure
    want = (_reference_hue_sat_map(pp, table, "srgb") * 2 ** be) @ np.linalg.inv(to_pp).T
    assert np.abs(b - a).max() > 0.01                 # the map does something visible
    np.testing.assert_allclose(b, want, atol=2e-5)


def test_hue_sat_map_stage_without_tags_is_a_no_op(tmp_path):
    path = write_dng(tmp_path / "plain.dng", _patch_mosaic(), "RGGB", black_level=256, white_level=4095,
                     color_matrix1=BMPCC4K_D65, calibration_illuminant1=21, as_shot_neutral=[0.55, 1.0, 0.62])
    frame = ispkit.read_raw(path)
    plain = ispkit.load_preset("default")
    a = plain.run(frame, fuse=False).output.data
    b = plain.insert_after("color_matrix", HueSatMap()).run(frame, fuse=False).output.data
    np.testing.assert_array_equal(a, b)


def test_dng_look_table_tags_render_through_the_pipeline(tmp_path):
    """ProfileLookTableDims / Data / Encoding written into a DNG: one table, indexed at the exposed values."""
    rng = np.random.default_rng(5)
    n_hue, n_sat, n_val = 10, 4, 5
    table = _random_table(rng, n_val, n_hue, n_sat)
    path = write_dng(tmp_path / "look.dng", _patch_mosaic("GBRG"), "GBRG", black_level=256, white_level=4095,
                     color_matrix1=BMPCC4K_D65, calibration_illuminant1=21, as_shot_neutral=[0.55, 1.0, 0.62],
                     baseline_exposure=0.3, look_table_dims=(n_hue, n_sat, n_val), look_table_data=table.ravel(),
                     look_table_encoding=0)
    frame = ispkit.read_raw(path)
    assert frame.meta.extra["dng"]["look_table_dims"] == [n_hue, n_sat, n_val]
    plain = ispkit.load_preset("default").remove("tone").remove("gamma")
    looked = plain.insert_after("color_matrix", LookTable())
    a = _patch_means(plain.run(frame, fuse=False).output.data).astype(np.float64)
    b = _patch_means(looked.run(frame, fuse=False).output.data).astype(np.float64)
    to_pp = rgb_to_rgb_matrix("sRGB", "ProPhoto RGB", "bradford")
    want = _reference_hue_sat_map(a @ to_pp.T, table.astype(np.float32), "linear") @ np.linalg.inv(to_pp).T
    assert np.abs(b - a).max() > 0.01
    np.testing.assert_allclose(b, want, atol=2e-5)


# --- ProfileToneCurve ---------------------------------------------------------------------------------

CURVE = np.array([[0.0, 0.0], [0.05, 0.09], [0.18, 0.32], [0.45, 0.68], [0.8, 0.93], [1.0, 1.0]])


def test_tone_curve_spline_is_the_natural_cubic_spline():
    """DNG SDK dng_spline_solver: C2 with zero second derivative at the ends = scipy's natural CubicSpline."""
    from scipy.interpolate import CubicSpline

    from ispkit.stages.dng_render import evaluate_spline, spline_slopes

    t = np.linspace(0, 1, 1001)
    ref = CubicSpline(CURVE[:, 0], CURVE[:, 1], bc_type="natural")
    s = spline_slopes(CURVE[:, 0], CURVE[:, 1])
    np.testing.assert_allclose(s, ref(CURVE[:, 0], 1), atol=1e-12)
    np.testing.assert_allclose(evaluate_spline(CURVE[:, 0], CURVE[:, 1], s, t), ref(t), atol=1e-12)
    # two knots: the identity line
    np.testing.assert_allclose(evaluate_spline([0, 1], [0, 1], spline_slopes([0, 1], [0, 1]), t), t, atol=1e-15)


def test_dng_profile_tone_curve_renders_hue_preserving(tmp_path):
    """ProfileToneCurve written into a DNG: max and min ProPhoto channels through the curve, the middle in proportion."""
    from scipy.interpolate import CubicSpline

    from ispkit.stages.dng_render import ProfileToneCurve

    path = write_dng(tmp_path / "tone.dng", _patch_mosaic(scale=0.6), "RGGB", black_level=256, white_level=4095,
                     color_matrix1=BMPCC4K_D65, calibration_illuminant1=21, as_shot_neutral=[0.55, 1.0, 0.62],
                     profile_tone_curve=CURVE)
    frame = ispkit.read_raw(path)
    np.testing.assert_allclose(frame.meta.extra["dng"]["profile_tone_curve"], CURVE.astype(np.float32))
    plain = ispkit.load_preset("default").remove("tone").remove("gamma")
    toned = plain.insert_after("color_matrix", ProfileToneCurve())
    a = _patch_means(plain.run(frame, fuse=False).output.data).astype(np.float64)
    b = _patch_means(toned.run(frame, fuse=False).output.data).astype(np.float64)
    to_pp = rgb_to_rgb_matrix("sRGB", "ProPhoto RGB", "bradford")
    pp = np.clip(a @ to_pp.T, 0, 1)
    curve = CubicSpline(CURVE[:, 0].astype(np.float32), CURVE[:, 1].astype(np.float32), bc_type="natural")
    want = np.empty_like(pp)
    for i, px in enumerate(pp):
        lo, hi = px.min(), px.max()
        want[i] = curve(lo) + (curve(hi) - curve(lo)) * (px - lo) / (hi - lo)
    want = want @ np.linalg.inv(to_pp).T
    assert np.abs(b - a).max() > 0.02
    np.testing.assert_allclose(b, want, atol=2e-5)


# --- an external DCP profile in place of the file's own -------------------------------------------


def test_camera_profile_stage_replaces_the_file_profile(tmp_path):
    """A DNG rendered with a DCP in place of its own tags = the same DNG carrying the DCP's tags itself."""
    from ispkit.io.dng import write_dcp
    from ispkit.stages.color_matrix import CameraProfile

    rng = np.random.default_rng(11)
    fm1 = np.array([[0.40018, 0.46878, 0.09517], [0.03209, 0.99278, -0.02487], [-0.00228, -0.45168, 1.2794]])
    fm2 = np.array([[0.61439, 0.34862, 0.00112], [0.20367, 0.95223, -0.1559], [0.01959, -0.22077, 1.02661]])
    t1, t2 = _random_table(rng, 1, 12, 4), _random_table(rng, 1, 12, 4)
    profile = dict(color_matrix1=BMPCC4K_A, calibration_illuminant1=17, color_matrix2=BMPCC4K_D65,
                   calibration_illuminant2=21, forward_matrix1=fm1, forward_matrix2=fm2,
                   baseline_exposure_offset=-0.3, hue_sat_map_dims=(12, 4, 1), hue_sat_map_data1=t1.ravel(),
                   hue_sat_map_data2=t2.ravel(), hue_sat_map_encoding=0)
    shot = dict(black_level=256, white_level=4095, as_shot_neutral=[0.6, 1.0, 0.5], baseline_exposure=0.2)
    mosaic = _patch_mosaic("GRBG")
    own = write_dng(tmp_path / "own.dng", mosaic, "GRBG", **shot, **profile)
    d750 = np.array([[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])
    other = write_dng(tmp_path / "other.dng", mosaic, "GRBG", **shot, color_matrix1=d750, calibration_illuminant1=21,
                      hue_sat_map_dims=(12, 4, 1), hue_sat_map_data1=_random_table(rng, 1, 12, 4).ravel(),
                      camera_calibration1=np.diag([1.05, 1.0, 0.95]))
    dcp = write_dcp(tmp_path / "cam.dcp", **profile)
    base = ispkit.load_preset("default").remove("tone").remove("gamma").insert_after("color_matrix", HueSatMap())
    with_dcp = base.insert_before("black_level", CameraProfile(path=str(dcp)))
    want = _patch_means(base.run(ispkit.read_raw(own), fuse=False).output.data)
    out = with_dcp.run(ispkit.read_raw(other), fuse=False).output
    np.testing.assert_allclose(_patch_means(out.data), want, atol=2e-6)
    assert out.meta.extra["camera_profile"]["source"] == str(dcp)
    assert out.meta.camera_calibration1 is None
    assert np.abs(_patch_means(base.run(ispkit.read_raw(other), fuse=False).output.data) - want).max() > 0.01
    # the default (no path) keeps the file's own profile
    same = base.insert_before("black_level", CameraProfile()).run(ispkit.read_raw(other), fuse=False).output.data
    np.testing.assert_array_equal(same, base.run(ispkit.read_raw(other), fuse=False).output.data)
