"""Sigmoid display transform and opposed highlight reconstruction: the default render of a photograph."""

import numpy as np
import pytest

import ispkit
from ispkit.errors import ParameterError
from ispkit.io.synthetic import synthesize_capture
from ispkit.metrics import neutral_delta_e, srgb_to_lab
from ispkit.stages import FusedRender, SigmoidToneMap, sigmoid_tone_map
from ispkit.stages.display_transform import SIGMOID_GREY, loglogistic_curve, sigmoid_parameters
from ispkit.stages.gamma import gamma_compress_reference
from ispkit.stages.highlights import reconstruct_opposed


def _clipped_fraction(codes: np.ndarray) -> float:
    """Fraction of pixels with any channel at 0 or 255 (8-bit codes)."""
    return float(np.mean(((codes == 0) | (codes == 255)).any(axis=-1)))


@pytest.mark.parametrize("contrast,skew", [(1.5, 0.0), (2.0, 0.5), (1.2, -0.5)])
def test_curve_meets_its_targets(contrast, skew):
    prm = sigmoid_parameters(contrast, skew, 1.0, 0.000152)
    f = lambda x: float(loglogistic_curve(x, prm))
    assert f(0.0) == pytest.approx(0.000152, rel=1e-6)
    assert f(SIGMOID_GREY) == pytest.approx(SIGMOID_GREY, rel=1e-9)
    assert f(1e12) == pytest.approx(1.0, abs=1e-6)
    # the slope at grey is set by the contrast alone (darktable: skew does not change it; the film
    # power is solved for display black 0, so a black target moves the slope by < 1 %)
    d = 1e-5

    def slope(prm):
        return (float(loglogistic_curve(SIGMOID_GREY + d, prm)) - float(loglogistic_curve(SIGMOID_GREY - d, prm))) / (2 * d)

    ref = sigmoid_parameters(contrast, 0.0, 1.0, 0.0)
    assert slope(sigmoid_parameters(contrast, skew, 1.0, 0.0)) == pytest.approx(slope(ref), rel=1e-4)
    assert slope(prm) == pytest.approx(slope(ref), rel=0.02)
    # unskewed with black 0: film power = contrast, e = grey^p (1/grey - 1)
    assert ref.film_power == pytest.approx(contrast, rel=1e-6)
    assert ref.paper_exposure == pytest.approx(SIGMOID_GREY ** contrast * (1 / SIGMOID_GREY - 1), rel=1e-6)


def test_kernel_matches_the_float64_curve_and_greys_stay_grey():
    rng = np.random.default_rng(0)
    x = (rng.random((4000, 3)) ** 3 * 40).astype(np.float32)
    prm = sigmoid_parameters()
    plain = sigmoid_tone_map(x, hue_preservation=0.0, hue_encoding="linear")
    np.testing.assert_allclose(plain, loglogistic_curve(x, prm), atol=2e-6)
    assert plain.max() < 1.0 and plain.min() > 0.0  # rolled off, never clipped
    grey = np.repeat(np.geomspace(1e-4, 1e3, 500, dtype=np.float32)[:, None], 3, axis=1)
    for enc in ("srgb", "linear"):
        y = sigmoid_tone_map(grey, hue_encoding=enc)
        assert np.array_equal(y[:, 0], y[:, 1]) and np.array_equal(y[:, 1], y[:, 2])
        assert np.all(np.diff(y[:, 0]) >= 0)
    # middle grey lands on sRGB code 119 (display 0.1845)
    mid = sigmoid_tone_map(np.full((1, 3), SIGMOID_GREY, np.float32))
    assert round(float(gamma_compress_reference(mid[0, 0], "srgb")) * 255) == 119


def test_hue_fraction_is_kept_in_the_encoded_output():
    rng = np.random.default_rng(1)
    x = (rng.random((4000, 3)) * 6).astype(np.float32)
    enc = gamma_compress_reference(sigmoid_tone_map(x), "srgb", clip=True)

    def frac(a):
        s = np.sort(a, axis=1)
        return (s[:, 1] - s[:, 0]) / (s[:, 2] - s[:, 0])

    ok = np.ptp(enc, axis=1) > 0.02
    np.testing.assert_allclose(frac(enc)[ok], frac(x)[ok], atol=2e-3)
    # the per-channel curve alone shifts hues (what hue preservation corrects)
    raw = gamma_compress_reference(sigmoid_tone_map(x, hue_preservation=0.0), "srgb", clip=True)
    assert np.abs(frac(raw)[ok] - frac(x)[ok]).max() > 0.1


def test_stage_parameters_are_checked():
    with pytest.raises(ParameterError, match="contrast"):
        SigmoidToneMap(contrast=0.0)
    with pytest.raises(ParameterError, match="hue_preservation"):
        SigmoidToneMap(hue_preservation=2.0)
    with pytest.raises(Exception, match="hue_encoding|hue encoding"):
        SigmoidToneMap(hue_encoding="rec709")


def test_default_keeps_chart_greys_neutral_through_the_tone_map():
    """The 6 grey patches of the synthetic ColorChecker (D65, camera WB): |a*|, |b*| < 1 and dE00 to neutral < 1,
    with the tone map in the fused 8-bit render and stage by stage."""
    cap = synthesize_capture(size=(192, 288), illuminant="D65", noise=False, seed=2)
    pipe = ispkit.load_preset("default")
    assert isinstance(pipe.compiled_nodes()[0][1], FusedRender)
    codes = ispkit.render(cap.frame, pipe, bit_depth=8)
    plain = pipe.run(cap.frame, fuse=False).output.data
    for img in (codes.astype(np.float64) / 255.0, plain):
        greys = np.array([img[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
                          for (y0, y1, x0, x1) in cap.patch_boxes[18:24]])
        lab = srgb_to_lab(greys)
        assert np.all(np.abs(lab[:, 1:]) < 1.0), lab
        assert neutral_delta_e(greys).max() < 1.0
        assert np.all(np.diff(lab[:, 0]) < 0)  # white → black, in order


def test_opposed_reconstruction_rebuilds_a_clipped_channel():
    """A smooth yellowish highlight whose green clips: the rebuilt green follows R and B as the
    unclipped rim did, instead of staying flat at the clip."""
    h = w = 64
    yy, xx = np.mgrid[:h, :w]
    lum = 1.6 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 300.0) + 0.15
    truth = np.stack([0.9 * lum, 1.0 * lum, 0.6 * lum], axis=-1).astype(np.float32)
    cfa = np.zeros((h, w), np.float32)
    idx = np.array([[0, 1], [1, 2]])  # RGGB
    for dy in (0, 1):
        for dx in (0, 1):
            cfa[dy::2, dx::2] = truth[dy::2, dx::2, idx[dy, dx]]
    wp = np.array([1.2, 1.0, 1.2])
    clipped = np.minimum(cfa, wp[idx][np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2])
    out, chroma = reconstruct_opposed(clipped, "RGGB", wp)
    g = (idx[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2] == 1) & (cfa >= 0.987)
    assert g.sum() > 100
    err_clip = np.abs(clipped[g] - cfa[g]).mean()
    err_rec = np.abs(out[g] - cfa[g]).mean()
    assert err_rec < 0.7 * err_clip  # measured 0.19 against 0.32
    assert np.all(out >= clipped)
    assert chroma[1] > 0  # green sits above the mean of red and blue here
    # nothing clipped: returned unchanged, chroma 0
    same, ch0 = reconstruct_opposed(clipped * 0.5, "RGGB", wp)
    np.testing.assert_array_equal(same, (clipped * 0.5).astype(np.float32))
    assert np.all(ch0 == 0)


@pytest.mark.parametrize("pattern", ["GRBG", "BGGR"])
def test_fused_render_with_clipped_samples_equals_the_stages(pattern):
    """Clipped samples: the fused kernel writes the rebuilt samples over its rows; equals the stages."""
    cap = synthesize_capture(size=(96, 128), cfa_pattern=pattern, seed=4)
    pipe = ispkit.load_preset("default")
    data = cap.frame.data.copy()
    data[40:50, 60:70] = cap.frame.meta.white_level  # a blown patch
    hot = cap.frame.replace(data=data)
    fused = pipe(hot)
    plain = pipe.run(hot, fuse=False).output
    np.testing.assert_allclose(fused.data, plain.data, atol=2e-5)
    # the fused node rebuilds from raw samples normalised on the fly: the same sums up to float rounding
    np.testing.assert_allclose(fused.meta.extra["highlight_chroma"], plain.meta.extra["highlight_chroma"], atol=1e-6)
    np.testing.assert_allclose(fused.meta.white_point, plain.meta.white_point, rtol=1e-6)
    codes = ispkit.render(hot, pipe, bit_depth=8)
    assert np.abs(codes.astype(int) - np.rint(plain.data * 255).astype(int)).max() <= 1
    assert plain.meta.extra["highlight_chroma"] != [0.0, 0.0, 0.0]
    cool = pipe(cap.frame)
    assert cool.meta.extra["highlight_chroma"] == [0.0, 0.0, 0.0]


def test_blackmagic_default_render_keeps_the_highlights():
    """The real DNG (+2.65 EV baseline exposure): with the display transform fewer than 1 % of pixels
    have a channel at code 0 or 255 (44 % with the hard clip it replaced)."""
    from tests.conftest import data_path

    frame = ispkit.read_raw(data_path("raw", "blackmagic_pocket4k.dng"))
    codes = ispkit.render(frame, "default", bit_depth=8)
    hard = ispkit.render(frame, ispkit.load_preset("default").remove("tone"), bit_depth=8)
    print(f"\nclipped fraction: default {_clipped_fraction(codes):.4f}, without the tone map {_clipped_fraction(hard):.4f}")
    assert _clipped_fraction(codes) < 0.01
    assert _clipped_fraction(hard) > 0.2
    # not washed out: the tone map keeps a full range of codes
    y = codes.mean(axis=-1)
    assert np.percentile(y, 1) < 80 and np.percentile(y, 99) > 220  # measured 63 and 246
