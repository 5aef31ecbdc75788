"""Camera profiles from spectral data (issue 12 §4): held-out ColorChecker accuracy, DCP round trip, render, chart path, CLI."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("colour")
pytest.importorskip("scipy")

import ispkit.profile as P  # noqa: E402
from ispkit.io.dng import read_dcp  # noqa: E402

CAMERA = "Nikon 5100 (NPL)"


@pytest.fixture(scope="module")
def fit():
    """The A/D65 dual-illuminant profile, each set fitted at its own light."""
    return P.build_spectral_profile(CAMERA, illuminants=("A", "D65"))


@pytest.fixture(scope="module")
def triple():
    """The default DNG 1.6 three-illuminant profile (A, D55, F), fitted jointly over the standard lights."""
    return P.build_spectral_profile(CAMERA)


@pytest.fixture(scope="module")
def triple_table(triple):
    return P.profile_comparison(CAMERA, fit=triple, idt=False, single=False)


@pytest.fixture(scope="module")
def table(fit):
    return P.profile_comparison(CAMERA, fit=fit, idt=True)


def test_training_set_holds_out_the_chart():
    train = P.training_reflectances()
    chart = P.chart_reflectances()
    dist = np.sqrt(((train[:, None] - chart[None]) ** 2).mean(-1))
    assert train.shape == (221, 61)
    assert dist.min() >= 0.02  # no ColorChecker measurement (rawtoaces has one) left in training


def test_held_out_chart_meets_the_issue_figures(table):
    for ill in ("A", "D50", "D65"):
        assert table[ill]["profile"] <= 0.6, (ill, table[ill])
    for ill in P.TEST_ILLUMINANTS:
        # the HueSatMap improves on the profile's own matrices everywhere
        assert table[ill]["profile"] < table[ill]["profile_matrix"], (ill, table[ill])
    for ill in ("A", "D50", "D65"):
        # the A/D65 profile beats the best white-preserving 3×3 fitted at the capture illuminant itself
        assert table[ill]["profile"] < table[ill]["best_3x3"] - 0.2, (ill, table[ill])
        assert table[ill]["profile"] < table[ill]["matrix_idt"], (ill, table[ill])
    for ill in P.TEST_ILLUMINANTS:
        # knowing the light as that 3×3 does, a profile built for it beats it everywhere (F2, LED included)
        assert table[ill]["profile_single"] < table[ill]["best_3x3"] - 0.2, (ill, table[ill])
        assert table[ill]["profile_single"] < table[ill]["matrix_idt"], (ill, table[ill])


@pytest.mark.slow
def test_triple_profile_beats_the_best_3x3_under_every_light(triple, triple_table):
    """Issue 12 §4: ≤ 0.6 mean ΔE2000 under A, D50, D65 and better than the best 3×3 under every test light.

    Measured here: A 0.57, D50 0.55, D65 0.53, F2 0.71, LED 0.47 against the
    best 3×3 at each light 0.95, 0.85, 0.85, 0.77, 0.74 (F2 is the narrowest margin).
    """
    assert (triple.calibration_illuminant1, triple.calibration_illuminant2, triple.calibration_illuminant3) == (17, 20, 2)
    for ill in ("A", "D50", "D65"):
        assert triple_table[ill]["profile"] <= 0.6, (ill, triple_table[ill])
    for ill in P.TEST_ILLUMINANTS:
        assert triple_table[ill]["profile"] < triple_table[ill]["best_3x3"] - 0.02, (ill, triple_table[ill])
        assert triple_table[ill]["profile"] < triple_table[ill]["profile_matrix"], (ill, triple_table[ill])
    for ill in ("A", "D50", "D65", "LED"):
        assert triple_table[ill]["profile"] < triple_table[ill]["best_3x3"] - 0.2, (ill, triple_table[ill])


@pytest.mark.slow
def test_triple_profile_dcp_round_trip_and_neutrals(triple, tmp_path):
    from ispkit.stages.color_matrix import dng_color_solution

    tags = read_dcp(triple.write_dcp(tmp_path / "t.dcp"))
    assert (tags["calibration_illuminant3"], tuple(tags["hue_sat_map_dims"])) == (2, (90, 30, 1))
    assert "hue_sat_map_data3" in tags and "forward_matrix3" in tags
    direct, via_file = P.evaluate_profile(triple), P.evaluate_profile(tags, CAMERA)
    for ill in P.TEST_ILLUMINANTS:  # float32 tag storage only
        np.testing.assert_allclose(via_file[ill], direct[ill], atol=2e-3)
    d50 = np.array([0.3457 / 0.3585, 1.0, (1 - 0.3457 - 0.3585) / 0.3585])
    for fm in (triple.forward_matrix1, triple.forward_matrix2, triple.forward_matrix3):
        np.testing.assert_allclose(fm @ np.ones(3), d50, rtol=0, atol=1e-12)
    greys = np.outer([0.9, 0.5, 0.18, 0.03], np.ones(61))
    for ill in P.TEST_ILLUMINANTS:
        cam, xyz, neutral = P.simulate_patches(CAMERA, ill, greys)
        assert P.delta_e2000(P.render_patches(triple, cam, neutral), xyz).max() < 1e-6
    # under F2 the fluorescent set carries most of the weight, under A the A set alone
    _, _, n_f2 = P.simulate_patches(CAMERA, "F2", greys)
    _, _, n_a = P.simulate_patches(CAMERA, "A", greys)
    assert dng_color_solution(triple.dng_profile, n_f2).weights[2] > 0.7
    assert dng_color_solution(triple.dng_profile, n_a).weights == pytest.approx((1.0, 0.0, 0.0))


def test_forward_matrices_keep_white_and_tables_keep_neutrals(fit):
    d50 = np.array([0.3457 / 0.3585, 1.0, (1 - 0.3457 - 0.3585) / 0.3585])
    for fm in (fit.forward_matrix1, fit.forward_matrix2):
        np.testing.assert_allclose(fm @ np.ones(3), d50, rtol=0, atol=1e-12)
    for t in (fit.hue_sat_map1, fit.hue_sat_map2):
        assert t.shape == (1, 90, 30, 3)
        np.testing.assert_allclose(t[0, :, 0], np.tile([0.0, 1.0, 1.0], (90, 1)), atol=1e-3)
    # spectrally flat greys render exactly under every test illuminant (white balance and neutrals kept)
    greys = np.outer([0.9, 0.5, 0.18, 0.03], np.ones(61))
    for ill in P.TEST_ILLUMINANTS:
        cam, xyz, neutral = P.simulate_patches(CAMERA, ill, greys)
        assert P.delta_e2000(P.render_patches(fit, cam, neutral), xyz).max() < 1e-6


def test_dcp_round_trip_renders_the_same(fit, tmp_path):
    path = fit.write_dcp(tmp_path / "d5100.dcp")
    tags = read_dcp(path)
    assert tags["calibration_illuminant1"] == 17 and tags["calibration_illuminant2"] == 21
    assert tuple(tags["hue_sat_map_dims"]) == (90, 30, 1)
    direct = P.evaluate_profile(fit)
    via_file = P.evaluate_profile(tags, CAMERA)
    for ill in P.TEST_ILLUMINANTS:  # float32 tag storage only
        np.testing.assert_allclose(via_file[ill], direct[ill], atol=2e-3)


def _patch_means(data, boxes):
    return np.array([data[y0:y1, x0:x1].reshape(-1, 3).mean(0) for y0, y1, x0, x1 in boxes])


def test_render_through_the_stages_equals_the_model(fit, tmp_path):
    """--set color_matrix.profile=d5100.dcp renders the chart as the fitted model predicts; same as the two-stage form."""
    import ispkit
    from ispkit.io.synthetic import synthesize_capture
    from ispkit.stages.color_matrix import CameraProfile
    from ispkit.stages.dng_render import HueSatMap

    dcp = str(fit.write_dcp(tmp_path / "d5100.dcp"))
    cap = synthesize_capture(illuminant="D50", size=(192, 288), noise=False, seed=1)
    base = ispkit.load_preset("default").remove("tone").remove("gamma").set({"color_matrix.output_space": "XYZ"})
    one = base.set({"color_matrix.profile": dcp}).run(cap.frame).output
    two = base.insert_after("color_matrix", HueSatMap()).insert_before(
        "black_level", CameraProfile(path=dcp)).run(cap.frame, fuse=False).output
    np.testing.assert_allclose(one.data, two.data, atol=1e-6)
    assert one.meta.extra["hue_sat_map_applied"] is True
    # a HueSatMap stage after it does not apply the table a second time
    again = base.set({"color_matrix.profile": dcp}).insert_after("color_matrix", HueSatMap()).run(cap.frame).output
    np.testing.assert_array_equal(again.data, one.data)
    cam, truth, neutral = P.simulate_patches(CAMERA, "D50", P.chart_reflectances())
    got = _patch_means(one.data, cap.patch_boxes)
    assert P.delta_e2000(got, P.render_patches(fit, cam, neutral)).mean() < 0.1  # 12-bit quantisation only
    assert P.delta_e2000(got, truth).mean() < 0.65
    # without the table (the file's own XYZ-fitted matrix) the render is measurably worse
    plain = _patch_means(base.run(cap.frame).output.data, cap.patch_boxes)
    assert P.delta_e2000(plain, truth).mean() > P.delta_e2000(got, truth).mean() + 0.2


def test_color_matrix_profile_parameter_errors(tmp_path):
    from ispkit.errors import ParameterError
    from ispkit.stages.color_matrix import ColorMatrix

    with pytest.raises(ParameterError, match="cannot be combined"):
        ColorMatrix(profile="x.dcp", source="libraw")
    stage = ColorMatrix(profile=str(tmp_path / "missing.dcp"))
    from ispkit.io.synthetic import synthesize_capture
    import ispkit

    frame = ispkit.load_preset("default").remove("tone").remove("gamma").remove("color_matrix").run(
        synthesize_capture(size=(64, 96), noise=False).frame).output
    with pytest.raises(ParameterError, match="missing.dcp"):
        stage(frame)


def test_chart_profile_from_a_synthetic_capture(tmp_path):
    """The chart path recovers, from a noisy RAW, the ForwardMatrix fitted on the chart's exact spectra."""
    from ispkit.io.synthetic import synthesize_capture

    cap = synthesize_capture(illuminant="D65", size=(256, 384), seed=3)
    chart = P.build_chart_profile(cap.frame, cap.patch_boxes)
    cam, xyz, neutral = P.simulate_patches(CAMERA, "D65", P.chart_reflectances())
    exact = P.fit_forward_matrix(cam / neutral, P.chart_reference_xyz())
    np.testing.assert_allclose(chart.forward_matrix1, exact, atol=0.01)
    assert chart.calibration_illuminant1 == 21 and chart.hue_sat_map1 is None
    assert chart.training_delta_e["chart"] < 1.2
    with pytest.raises(Exception, match="box 0"):
        P.build_chart_profile(cap.frame, [(0, 1, 0, 1)] + list(cap.patch_boxes[1:]))


def test_cli_profile(tmp_path, capsys):
    from ispkit.cli import main
    from ispkit.io.dng import write_dng
    from ispkit.io.synthetic import synthesize_capture

    out = tmp_path / "d5100.dcp"
    assert main(["profile", "--sensitivities", CAMERA, "-o", str(out), "--hue-sat-map", "12x6",
                 "--illuminants", "A,D65"]) == 0
    text = capsys.readouterr().out
    assert "held-out ColorChecker" in text and "D50" in text
    assert tuple(read_dcp(out)["hue_sat_map_dims"]) == (12, 6, 1)
    cap = synthesize_capture(illuminant="A", size=(128, 192), seed=2)
    meta = cap.frame.meta
    dng = write_dng(tmp_path / "chart.dng", cap.frame.data.astype(np.uint16), meta.cfa_pattern,
                    black_level=float(meta.black_level[0]), white_level=meta.white_level,
                    as_shot_neutral=1.0 / np.asarray(meta.wb_gains), color_matrix1=meta.color_matrix1,
                    calibration_illuminant1=meta.calibration_illuminant1)
    cam = tmp_path / "cam.dcp"
    assert main(["profile", "--chart", str(dng), "-o", str(cam)]) == 0
    tags = read_dcp(cam)
    assert tags["calibration_illuminant1"] == 17 and "hue_sat_map_dims" not in tags
    # measured reference values as Lab (D50): the chart under A itself, so the fit is not limited by the
    # chart's colour inconstancy between A and D50
    import json

    import colour

    _, xyz_a, _ = P.simulate_patches(CAMERA, "A", P.chart_reflectances())
    lab = colour.XYZ_to_Lab(xyz_a, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"])
    (tmp_path / "ref.json").write_text(json.dumps(np.asarray(lab).tolist()))
    np.testing.assert_allclose(P._read_reference(str(tmp_path / "ref.json")), xyz_a, atol=2e-4)
    assert main(["profile", "--chart", str(dng), "--reference", str(tmp_path / "ref.json"), "-o", str(cam)]) == 0
    own = capsys.readouterr().out.splitlines()  # the run without, then the run with --reference
    de = [float(line.split("chart")[1]) for line in own if "training mean" in line]
    assert len(de) == 2
    assert de[0] > 1.5 and de[1] < 1.2  # D50 reference values vs the chart's own under A
