"""DNG 1.6 third calibration illuminant: tags written into a DNG / DCP, read back, interpolated as the spec says.

The expected values are computed here independently of ispkit's implementation:
temperature and tint from colour-science's Robertson (1968) ``uv_to_CCT_Robertson1968``
(its second value is −Duv; the DNG tint is Duv · −3000), the weights with the
DNG SDK 1.6 formula (``CalculateTripleIlluminantWeights``) written out below, a
spectrum's white from a 1 nm sum against colour-science's CIE 1931 2° observer.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ispkit.errors import ParameterError
from ispkit.io import read_raw
from ispkit.io.dng import read_dcp, read_dng_tags, write_dcp, write_dng
from ispkit.stages.color_matrix import (
    ColorMatrix,
    DNGProfile,
    dng_color_solution,
    dng_temperature_tint,
    illuminant_data_xy,
    triple_illuminant_weights,
)
from ispkit.stages.dng_render import hue_sat_map_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

CM_A = np.array([[0.8, -0.2, -0.05], [-0.35, 1.2, 0.15], [-0.05, 0.25, 0.5]])
CM_D65 = np.array([[0.7, -0.15, -0.05], [-0.4, 1.25, 0.15], [-0.08, 0.2, 0.65]])
CM_F = np.array([[0.75, -0.1, -0.1], [-0.3, 1.15, 0.1], [-0.06, 0.22, 0.58]])
FM_A = np.array([[0.70, 0.15, 0.1142], [0.25, 0.80, -0.05], [0.05, -0.30, 1.0749]])
FM_D65 = np.array([[0.60, 0.25, 0.1142], [0.20, 0.90, -0.10], [0.00, -0.20, 1.0249]])
FM_F = np.array([[0.65, 0.20, 0.1142], [0.30, 0.75, -0.05], [0.02, -0.25, 1.0549]])
A_XY, D65_XY = (0.4476, 0.4074), (0.3127, 0.3290)  # the DNG SDK's xy of codes 17 and 21
DIMS = (6, 3, 1)  # hue, saturation, value divisions


def _spectrum() -> dict:
    fl2 = colour.SDS_ILLUMINANTS["FL2"]
    return {"spectrum": np.round(fl2.values, 4).tolist(), "min_lambda": 380.0, "spacing": 5.0}


def _spectrum_xy(data: dict) -> np.ndarray:
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    lam = np.arange(360, 831)
    obs = np.stack([np.interp(lam, cmfs.wavelengths, cmfs.values[:, k]) for k in range(3)], axis=1)
    s = np.asarray(data["spectrum"])
    light = np.interp(lam, data["min_lambda"] + data["spacing"] * np.arange(s.size), s)
    xyz = light @ obs / obs.sum(axis=0)
    return xyz[:2] / xyz.sum()


def _sdk_weights(white, lights) -> np.ndarray:
    def point(xy):
        cct, neg_duv = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(np.asarray(xy)))
        tint = 3000.0 * neg_duv
        return np.array([min(1500.0 / cct, 1.0), tint / 200.0])

    p = point(white)
    w = np.array([1.0 / (np.sum((p - point(q)) ** 2) + 1e-8) for q in lights])
    w /= w.sum()
    w = w * w * (3 - 2 * w)
    w = np.clip((w - 0.02) / 0.98, 0, 1)
    w /= w.sum()
    return w


def _tables(seed=0):
    rng = np.random.default_rng(seed)
    n = DIMS[0] * DIMS[1] * DIMS[2]
    out = []
    for _ in range(3):
        t = np.stack([rng.uniform(-10, 10, n), rng.uniform(0.8, 1.2, n), rng.uniform(0.9, 1.1, n)], axis=1)
        out.append(t.astype(np.float32).astype(np.float64).ravel())
    return out


def _write(path, *, third=True, neutral=(0.6, 1.0, 0.7), **extra):
    t1, t2, t3 = _tables()
    kw = dict(black_level=0, white_level=4095, color_matrix1=CM_A, calibration_illuminant1=17,
              color_matrix2=CM_D65, calibration_illuminant2=21, forward_matrix1=FM_A, forward_matrix2=FM_D65,
              as_shot_neutral=neutral, hue_sat_map_dims=DIMS, hue_sat_map_data1=t1, hue_sat_map_data2=t2)
    if third:
        kw.update(color_matrix3=CM_F, calibration_illuminant3=255, forward_matrix3=FM_F, hue_sat_map_data3=t3,
                  illuminant_data=(None, None, _spectrum()))
    kw.update(extra)
    return write_dng(path, np.full((32, 32), 1000, np.uint16), "RGGB", **kw)


def _fm_norm(fm):
    d50 = colour.xy_to_XYZ([0.3457, 0.3585])
    return np.diag(d50 / (fm @ np.ones(3))) @ fm


def _cm_norm(cm):
    top = (cm @ colour.xy_to_XYZ([0.3457, 0.3585])).max()
    return cm / top if not 0.99 <= top <= 1.01 else cm


def test_tag_codes_and_round_trip(tmp_path):
    import tifffile

    p = _write(tmp_path / "t.dng")
    with tifffile.TiffFile(p) as tf:
        tags = tf.pages[0].tags
        assert tuple(tags[50706].value) == (1, 6, 0, 0) and tuple(tags[50707].value) == (1, 6, 0, 0)
        for code in (52529, 52531, 52532, 52535, 52537):  # DNG 1.6 tag numbers
            assert code in tags
        assert 52533 not in tags and 52536 not in tags  # no IlluminantData1; 52536 is MaskSubArea
    t = read_dng_tags(p)
    np.testing.assert_allclose(t["color_matrix3"], CM_F, atol=1e-6)
    np.testing.assert_allclose(t["forward_matrix3"], FM_F, atol=1e-6)
    assert t["calibration_illuminant3"] == 255
    assert t["illuminant_data3"]["min_lambda"] == 380.0 and t["illuminant_data3"]["spacing"] == 5.0
    np.testing.assert_allclose(t["illuminant_data3"]["spectrum"], _spectrum()["spectrum"], rtol=1e-6)
    np.testing.assert_allclose(t["hue_sat_map_data3"], _tables()[2], rtol=1e-6)
    # the white of the spectrum: 1 nm sum against the CIE 1931 observer (F2: ~(0.372, 0.375))
    xy = illuminant_data_xy(t["illuminant_data3"])
    np.testing.assert_allclose(xy, _spectrum_xy(_spectrum()), atol=1e-9)
    np.testing.assert_allclose(xy, [0.3721, 0.3753], atol=5e-4)


def test_illuminant_data_xy_form(tmp_path):
    p = _write(tmp_path / "xy.dng", calibration_illuminant1=255, illuminant_data=({"xy": (0.41, 0.39)}, None, _spectrum()))
    t = read_dng_tags(p)
    np.testing.assert_allclose(t["illuminant_data1"]["xy"], [0.41, 0.39], atol=1e-9)


def test_temperature_tint_matches_colour_robertson():
    for xy in ((0.3127, 0.3290), (0.4476, 0.4074), (0.3721, 0.3753), (0.30, 0.36), (0.40, 0.37)):
        cct, neg_duv = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(np.array(xy)))
        t, tint = dng_temperature_tint(xy)
        assert t == pytest.approx(cct, rel=1e-9)
        assert tint == pytest.approx(3000.0 * neg_duv, abs=1e-7)


def test_triple_interpolation_equals_spec_formula(tmp_path):
    frame = read_raw(_write(tmp_path / "t.dng"))
    sol = dng_color_solution(frame.meta)
    lights = (A_XY, D65_XY, _spectrum_xy(_spectrum()))
    w = _sdk_weights(sol.white_xy, lights)
    np.testing.assert_allclose(sol.weights, w, atol=1e-9)
    assert 0.05 < w[0] < 0.95 and 0.05 < w[2] < 0.95  # a real mix of the sets, not one alone
    # XYZtoCamera at the found white maps its XYZ to the camera neutral (the spec's fixed point)
    cm = sum(wk * _cm_norm(m) for wk, m in zip(w, (CM_A, CM_D65, CM_F)))
    neutral = cm @ colour.xy_to_XYZ(sol.white_xy)
    np.testing.assert_allclose(neutral / neutral.max(), np.array([0.6, 1.0, 0.7]) / 1.0, atol=1e-7)
    np.testing.assert_allclose(sol.xyz_to_camera, cm, atol=1e-9)
    # the ForwardMatrix path: FM = Σ w_k FM_k (each normalised), camera → XYZ = FM · diag(1 / neutral)
    fm = sum(wk * _fm_norm(m) for wk, m in zip(w, (FM_A, FM_D65, FM_F)))
    np.testing.assert_allclose(sol.camera_to_xyz_d50, fm @ np.diag(1.0 / np.array([0.6, 1.0, 0.7])), atol=1e-6)
    table, enc = hue_sat_map_for(frame.meta)
    t1, t2, t3 = (t.reshape(DIMS[2], DIMS[0], DIMS[1], 3) for t in _tables())
    np.testing.assert_allclose(table, w[0] * t1 + w[1] * t2 + w[2] * t3, atol=1e-9)
    assert enc == "linear"


def test_white_at_a_calibration_light_uses_that_set_alone():
    spec_xy = _spectrum_xy(_spectrum())
    for k, xy in enumerate((A_XY, D65_XY, spec_xy)):
        w = triple_illuminant_weights(xy, A_XY, D65_XY, spec_xy)
        assert w[k] == pytest.approx(1.0, abs=1e-9) and sum(w) == pytest.approx(1.0)


def test_dual_file_behaves_as_before(tmp_path):
    import tifffile

    p = _write(tmp_path / "dual.dng", third=False)
    with tifffile.TiffFile(p) as tf:
        assert tuple(tf.pages[0].tags[50706].value) == (1, 4, 0, 0)
    frame = read_raw(p)
    assert "color_matrix3" not in frame.meta.extra["dng"]
    sol = dng_color_solution(frame.meta)
    ref = dng_color_solution(DNGProfile(CM_A, CM_D65, 2855.6, 6503.7, forward_matrix1=FM_A, forward_matrix2=FM_D65),
                             np.array([0.6, 1.0, 0.7]))
    np.testing.assert_allclose(sol.camera_to_xyz_d50, ref.camera_to_xyz_d50, atol=1e-5)
    assert sol.weights == pytest.approx((sol.weight, 1 - sol.weight, 0.0))
    cct = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(sol.white_xy))[0]
    g = (1 / cct - 1 / light_cct(21)) / (1 / light_cct(17) - 1 / light_cct(21))
    assert sol.weight == pytest.approx(g, abs=1e-6)
    table, _ = hue_sat_map_for(frame.meta)
    t1, t2, _ = (t.reshape(DIMS[2], DIMS[0], DIMS[1], 3) for t in _tables())
    np.testing.assert_allclose(table, g * t1 + (1 - g) * t2, atol=1e-5)


def light_cct(code):
    from ispkit.stages.color_matrix import light_source_cct

    return light_source_cct(code)


def test_dcp_with_third_illuminant_round_trip_and_render(tmp_path):
    t1, t2, t3 = _tables()
    dcp = write_dcp(tmp_path / "p.dcp", color_matrix1=CM_A, calibration_illuminant1=17, color_matrix2=CM_D65,
                    calibration_illuminant2=21, forward_matrix1=FM_A, forward_matrix2=FM_D65, color_matrix3=CM_F,
                    calibration_illuminant3=255, forward_matrix3=FM_F, illuminant_data=(None, None, _spectrum()),
                    hue_sat_map_dims=DIMS, hue_sat_map_data1=t1, hue_sat_map_data2=t2, hue_sat_map_data3=t3)
    prof = read_dcp(dcp)
    np.testing.assert_allclose(prof["forward_matrix3"], FM_F, atol=1e-6)
    assert prof["calibration_illuminant3"] == 255 and "illuminant_data3" in prof
    # a dual-illuminant DNG rendered with the triple DCP equals the triple DNG's own render
    own = read_raw(_write(tmp_path / "t.dng"))
    dual = read_raw(_write(tmp_path / "d.dng", third=False, forward_matrix1=FM_D65, forward_matrix2=FM_A))
    from ispkit.frame import Domain

    rgb = np.random.default_rng(1).uniform(0.05, 0.6, (4, 4, 3)).astype(np.float32)
    a = ColorMatrix(output_space="prophoto", profile=str(dcp))(dual.replace(data=rgb, domain=Domain.CAMERA_RGB))
    b = ColorMatrix(output_space="prophoto")(own.replace(data=rgb, domain=Domain.CAMERA_RGB))
    from ispkit.stages.dng_render import HueSatMap

    b = HueSatMap()(b)
    np.testing.assert_allclose(a.data, b.data, atol=2e-5)


@pytest.mark.parametrize("bad, match", [
    (dict(color_matrix2=None, calibration_illuminant2=None, forward_matrix2=None, hue_sat_map_data2=None),
     "needs color_matrix2"),
    (dict(illuminant_data=None), "needs illuminant_data3"),
    (dict(forward_matrix3=None), "all three calibrations or none"),
    (dict(hue_sat_map_data3=None), "all three calibrations or none"),
    (dict(illuminant_data=({"xy": (0.4, 0.4)}, None, _spectrum())), "only for calibration_illuminant1 = 255"),
])
def test_invalid_third_set_raises(tmp_path, bad, match):
    with pytest.raises(ParameterError, match=match):
        _write(tmp_path / "bad.dng", **bad)
