"""Highlight recovery: blown highlights stay neutral (not magenta), unclipped pixels are untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ispkit.errors import InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.stages.color_matrix import ColorMatrix
from ispkit.stages._kernels.highlights import clipped_channels, propagate_tile_ratios, tile_statistics
from ispkit.stages.highlights import (
    HIGHLIGHT_METHODS,
    HighlightRecovery,
    highlight_white_point,
    recover_highlights,
)

# camera-native white: green is the most sensitive channel, so after white balance
# (gains 1 / illuminant, green = 1) green saturates first
ILLUMINANT = np.array([0.45, 1.0, 0.6])
GAINS = 1.0 / ILLUMINANT                     # (2.222, 1, 1.667) = per-channel white point after WB
XYZ_TO_CAM = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028], [-0.0908, 0.2162, 0.5668]])
H, W = 40, 120


def _capture(true_wb: np.ndarray) -> np.ndarray:
    """Sensor clips native values at 1.0; white balance multiplies by GAINS: min(true, GAINS)."""
    native = true_wb * ILLUMINANT
    return (np.minimum(native, 1.0) * GAINS).astype(np.float32)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A white object lit from 0.05 to 3× the clip level, above unclipped coloured patches."""
    xx = np.broadcast_to(np.arange(W) / (W - 1), (H, W))
    intensity = 0.05 + 2.95 * xx
    true = np.repeat(intensity[..., None], 3, axis=2)
    true[30:, :] = np.array([0.55, 0.35, 0.2]) * (0.2 + 0.7 * xx[30:, :, None])  # coloured, never clips
    return true, _capture(true)


def _meta(**over) -> CaptureMetadata:
    kw = dict(cam_to_xyz=np.linalg.inv(XYZ_TO_CAM), illuminant_rgb=ILLUMINANT, white_point=GAINS,
              wb_gains=GAINS, source="synthetic")
    kw.update(over)
    return CaptureMetadata(**kw)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """(max - min) / max per pixel: 0 for a neutral."""
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) / np.maximum(rgb.max(axis=-1), 1e-12)


@pytest.mark.parametrize("method", sorted(HIGHLIGHT_METHODS))
def test_blown_highlight_is_neutral_after_the_matrix(method):
    true, captured = _scene()
    frame = Frame(captured, Domain.CAMERA_RGB, _meta())
    clipped = np.any(true * ILLUMINANT >= 1.0, axis=-1)          # any sensor channel saturated
    assert clipped[:30].sum() > 500 and not clipped[30:].any()
    srgb_raw = ColorMatrix()(frame).data
    # without recovery the blown white turns magenta (green lowest)
    assert _chroma(srgb_raw[clipped]).max() > 0.3
    assert np.all(srgb_raw[clipped][:, 1] <= srgb_raw[clipped].min(axis=-1) + 1e-6)
    recovered = HighlightRecovery(method=method)(frame)
    srgb = ColorMatrix()(recovered).data
    assert _chroma(srgb[clipped]).max() < 2e-6
    # unclipped pixels are bit-identical (below threshold × white point, below min(white point) for
    # clip; reconstruct also rebuilds channels above 0.8 of that within 2 px of a clipped one)
    level = GAINS.min() if method == "clip" else HIGHLIGHT_METHODS[method] * GAINS
    below = np.all(captured < level * (0.8 if method == "reconstruct" else 1.0), axis=-1)
    assert below.sum() > 0.4 * below.size
    np.testing.assert_array_equal(recovered.data[below], captured[below])
    unclipped = np.all(captured < level, axis=-1)
    np.testing.assert_allclose(recovered.data[unclipped], captured[unclipped], rtol=1e-6)


def test_method_levels_and_white_point():
    true, captured = _scene()
    row = 5  # the white object's row
    clip = recover_highlights(captured, GAINS, "clip")
    np.testing.assert_allclose(clip[row, -1], [1.0, 1.0, 1.0], atol=0)  # dcraw -H 0: min(white point)
    assert clip.max() == pytest.approx(1.0)
    blend = recover_highlights(captured, GAINS, "blend")
    np.testing.assert_allclose(blend[row, -1], np.full(3, GAINS.mean()), rtol=1e-6)
    rec = recover_highlights(captured, GAINS, "reconstruct")
    # partially clipped white (green clipped, red and blue not): rebuilt exactly
    sensor = true[:30] * ILLUMINANT
    partial = (sensor[..., 1] >= 1) & (sensor[..., 0] < 0.98) & (sensor[..., 2] < 0.98)
    assert partial.sum() > 100
    np.testing.assert_allclose(rec[:30][partial], true[:30][partial], rtol=2e-6)
    # fully blown: grey at the largest channel (the red white point)
    np.testing.assert_allclose(rec[row, -1], np.full(3, GAINS.max()), rtol=1e-6)
    assert np.all(rec >= captured)  # reconstruction never lowers a channel
    np.testing.assert_allclose(highlight_white_point(GAINS, "clip"), np.full(3, GAINS.min()))
    np.testing.assert_allclose(highlight_white_point(GAINS, "blend"), np.full(3, GAINS.mean()))
    np.testing.assert_allclose(highlight_white_point(GAINS, "reconstruct"), np.full(3, GAINS.max()))
    np.testing.assert_array_equal(highlight_white_point(None, "clip"), np.ones(3))


def test_reconstruct_recovers_a_coloured_object_from_its_own_border():
    # two objects of different hue, green clipped in both, separated by a dark gap:
    # each clipped region takes the channel ratio of its own unclipped border
    xx = np.broadcast_to(np.arange(W) / (W - 1), (H, W))
    ramp = 0.1 + 1.6 * xx
    true = np.zeros((H, W, 3))
    hue_a, hue_b = np.array([0.8, 0.9, 0.3]), np.array([0.3, 0.95, 0.7])
    true[:16] = hue_a * ramp[:16, :, None]
    true[24:] = hue_b * ramp[24:, :, None]
    captured = _capture(true)
    g_clipped = true[..., 1] >= 1.0
    assert g_clipped[:16].sum() > 200 and g_clipped[24:].sum() > 200
    assert not np.any(true[..., [0, 2]] * ILLUMINANT[[0, 2]] >= 0.98)
    rec = recover_highlights(captured, GAINS, "reconstruct")
    np.testing.assert_allclose(rec[g_clipped], true[g_clipped], rtol=2e-6)
    # the true green is up to 1.5× the clip level; clip and blend cannot know it
    assert true[g_clipped][:, 1].max() > 1.5
    assert recover_highlights(captured, GAINS, "clip")[..., 1].max() == pytest.approx(1.0)


def test_reconstruct_without_any_unclipped_reference_is_grey():
    # the whole frame has green clipped: no tile knows a ratio, the fallback is grey
    img = np.empty((8, 8, 3), np.float32)
    img[...] = [1.6, 1.0, 1.2]
    out = recover_highlights(img, np.array([2.0, 1.0, 1.5]), "reconstruct")
    np.testing.assert_allclose(out, np.broadcast_to([1.6, 1.4, 1.2], img.shape), rtol=1e-6)
    # ... and never below the clipped value
    img[...] = [0.7, 1.0, 0.5]
    np.testing.assert_array_equal(recover_highlights(img, np.array([2.0, 1.0, 1.5]), "reconstruct"), img)


def _blend_reference(img, wp, t):
    x = img.astype(np.float64)
    s = np.max(x / wp, axis=-1)
    f = np.clip((s - t) / (1 - t), 0.0, 1.0)
    f = f * f * (3 - 2 * f)
    m = x.mean(axis=-1, keepdims=True)
    return x + f[..., None] * (m - x)


def test_kernels_match_numpy(rng):
    img = rng.uniform(0, 2.4, (33, 47, 3)).astype(np.float32)
    wp = np.array([2.1, 1.0, 1.6])
    np.testing.assert_array_equal(recover_highlights(img, wp, "clip"), np.minimum(img, np.float32(1.0)))
    for t, tol in ((0.5, 2e-6), (0.9, 2e-6), (0.99, 2e-5)):  # float32 s error is amplified by 1/(1-t)
        np.testing.assert_allclose(recover_highlights(img, wp, "blend", t), _blend_reference(img, wp, t),
                                   rtol=tol, atol=tol)
    buf = img.copy()
    recover_highlights(buf, wp, "blend", out=buf)  # in place
    np.testing.assert_allclose(buf, _blend_reference(img, wp, 0.9), rtol=2e-6, atol=2e-6)
    inplace = img.copy()
    np.testing.assert_array_equal(recover_highlights(inplace, wp, "reconstruct", out=inplace),
                                  recover_highlights(img, wp, "reconstruct"))
    # no white point: 1.0 per channel
    np.testing.assert_array_equal(recover_highlights(img, None, "clip"), np.minimum(img, 1.0))


def test_tile_statistics_match_numpy(rng):
    img = rng.uniform(0, 2.4, (18, 23, 3)).astype(np.float32)  # partial edge tiles on both axes
    level = np.array([2.0, 0.98, 1.5], np.float32)
    clipped = np.empty(img.shape, np.uint8)
    assert not clipped_channels(img, level, clipped)
    np.testing.assert_array_equal(clipped, img >= level)
    near = cv2.dilate(clipped, np.ones((5, 5), np.uint8))
    code = np.empty(img.shape[:2], np.uint8)
    tiles = tile_statistics(img, level, clipped, near, np.float32(0.8), np.float32(0.5), 4, code)
    assert tiles.shape == (5, 6, 5)
    rebuild = clipped.astype(bool) | (near.astype(bool) & (img >= np.float32(0.8) * level))
    np.testing.assert_array_equal(code, rebuild @ np.array([1, 2, 4]))
    ref_px = ~near.any(axis=-1) & ((img / level).max(axis=-1) >= 0.5)
    for ty in range(5):
        for tx in range(6):
            sl = (slice(4 * ty, 4 * ty + 4), slice(4 * tx, 4 * tx + 4))
            m = ref_px[sl]
            np.testing.assert_allclose(tiles[ty, tx, :3], img[sl][m].astype(np.float64).sum(axis=0), rtol=1e-12)
            assert tiles[ty, tx, 3] == m.sum() and tiles[ty, tx, 4] == rebuild[sl].any(axis=-1).sum()
    bad = img.copy()
    bad[3, 4, 2] = np.nan
    assert clipped_channels(bad, level, clipped)
    # breadth-first growth: a row of tiles, known at the left end, clipped to the right
    row = np.zeros((1, 5, 5))
    row[0, 0] = [2.0, 1.0, 1.0, 4, 0]
    row[0, 1:4, 4] = 3  # clipped tiles; the last tile is neither known nor clipped
    ratio, weight = propagate_tile_ratios(row, 4.0)
    np.testing.assert_allclose(ratio[0, :4], np.tile([0.5, 0.25, 0.25], (4, 1)))
    np.testing.assert_allclose(ratio[0, 4], [1 / 3] * 3)
    np.testing.assert_array_equal(weight[0], [1, 1, 1, 1, 0])


def test_bad_input():
    img = np.full((4, 6, 3), 0.5, np.float32)
    for method in HIGHLIGHT_METHODS:
        bad = img.copy()
        bad[1, 2, 0] = np.nan
        with pytest.raises(InputError, match="NaN or infinite"):
            recover_highlights(bad, None, method)
        bad[1, 2, 0] = np.inf
        with pytest.raises(InputError):
            recover_highlights(bad, None, method)
        assert recover_highlights(np.zeros((0, 3, 3), np.float32), None, method).shape == (0, 3, 3)
    with pytest.raises(InputError):
        recover_highlights(np.ones((4, 6)), None)
    with pytest.raises(UnknownNameError, match="reconstruct"):
        recover_highlights(img, None, "inpaint")
    with pytest.raises(ParameterError):
        recover_highlights(img, [1.0, 0.0, 1.0])
    with pytest.raises(ParameterError):
        recover_highlights(img, None, "blend", threshold=1.5)


def test_stage():
    _, captured = _scene()
    frame = Frame(captured, Domain.CAMERA_RGB, _meta())
    out = HighlightRecovery(method="blend", threshold=0.8)(frame)
    assert out.domain is Domain.CAMERA_RGB and out.data.dtype == np.float32
    np.testing.assert_allclose(out.meta.white_point, np.full(3, GAINS.mean()))
    np.testing.assert_array_equal(out.data, recover_highlights(captured, GAINS, "blend", 0.8))
    np.testing.assert_array_equal(frame.data, captured)  # input untouched
    # no white point on the frame: 1.0 per channel
    no_wp = frame.replace(white_point=None)
    np.testing.assert_array_equal(HighlightRecovery()(no_wp).data, np.minimum(captured, 1.0))
    assert HighlightRecovery().spec.pointwise and not HighlightRecovery(method="reconstruct").spec.pointwise
    for stage in (HighlightRecovery(), HighlightRecovery(method="reconstruct", threshold=0.95)):
        assert HighlightRecovery.from_params(stage.to_config()["params"]) == stage
    assert HighlightRecovery.from_params({"method": "blend", "threshold": 1}).threshold == 1.0
    with pytest.raises(ParameterError, match="method"):
        HighlightRecovery(method="dcraw")
    with pytest.raises(ParameterError, match="threshold"):
        HighlightRecovery(threshold=0.0)
    with pytest.raises(ParameterError, match="threshold"):
        HighlightRecovery(threshold=True)


def test_fringe_removes_the_magenta_rim_of_a_blown_light():
    """A clipped disc, white-balanced (R×2, B×1.5) and demosaiced, leaves a magenta rim; fringe=2 greys it."""
    from ispkit.stages.demosaic import demosaic
    from ispkit.stages.highlights import recover_highlights

    yy, xx = np.mgrid[0:64, 0:64]
    scene = np.where(np.hypot(yy - 32, xx - 32) < 10, 50.0, 0.02).astype(np.float32)
    mosaic = np.minimum(scene, 1.0)                                   # grey lamp, every sample clipped
    gains = np.array([2.0, 1.0, 1.5], np.float32)
    rgb = demosaic(mosaic, "RGGB", "malvar2004") * gains
    wp = gains.astype(np.float64)
    ring = (np.hypot(yy - 32, xx - 32) > 9) & (np.hypot(yy - 32, xx - 32) < 12.5)

    def tint(img):  # max spread between channels on the rim, relative to its level
        r = img[ring]
        return float(np.max((r.max(axis=1) - r.min(axis=1)) / np.maximum(r.max(axis=1), 1e-3)))

    plain = recover_highlights(rgb, wp, "clip")
    fixed = recover_highlights(rgb, wp, "clip", fringe=2)
    assert tint(plain) > 0.3
    assert tint(fixed) < 0.5 * tint(plain)
    assert np.min(fixed[ring]) >= np.min(plain[ring]) - 1e-6        # no darker outline
    with pytest.raises(ParameterError):
        recover_highlights(rgb, wp, "clip", fringe=-1)


def test_exposure_scales_an_absent_white_point_so_reconstruction_keeps_its_clip_level():
    """A normalised frame without ``white_point`` (taken as 1) pushed +2 EV: the clip level moves to 4,
    so highlight reconstruction leaves samples at 2 (unclipped before the push) alone."""
    from ispkit.pipeline import Pipeline
    from ispkit.stages import Exposure, HighlightReconstruction

    rng = np.random.default_rng(0)
    x = (0.1 + 0.5 * rng.random((32, 48))).astype(np.float32)
    x[10:14, 10:14] = 0.5  # a bright, unclipped patch: 2.0 after the push
    frame = Frame(x, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    pushed = Exposure(ev=2.0, use_baseline=False)(frame)
    np.testing.assert_allclose(pushed.meta.white_point, [4.0, 4.0, 4.0])
    out = Pipeline([Exposure(ev=2.0, use_baseline=False), HighlightReconstruction()])(frame)
    np.testing.assert_array_equal(out.data, pushed.data)  # nothing was clipped, so nothing is rebuilt
