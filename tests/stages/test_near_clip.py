"""Demosaic(near_clip=...): RCD next to clipped edges, Malvar elsewhere — exact, sparse, fused like unfused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import ispkit
from ispkit.errors import ParameterError, UnknownNameError
from ispkit.frame import cfa_color_indices
from ispkit.io.synthetic import synthesize_capture
from ispkit.stages import Demosaic
from ispkit.stages.demosaic import demosaic, near_clip_values
from ispkit.stages.fused import FusedRender


def _level_map(levels, pattern, shape):
    return np.tile(np.asarray(levels, np.float32)[cfa_color_indices(pattern)],
                   ((shape[0] + 1) // 2, (shape[1] + 1) // 2))[:shape[0], :shape[1]]


def _spots(shape, seed):
    """Dark texture with a few blown specular spots and one large blown area."""
    rng = np.random.default_rng(seed)
    m = (0.05 + 0.3 * rng.random(shape)).astype(np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for cy, cx in rng.integers(8, min(shape) - 8, size=(6, 2)):
        m[(yy - cy) ** 2 + (xx - cx) ** 2 <= 4] = 1.3
    m[20:60, 150:230] = 1.3
    return m


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_repaired_values_are_the_full_frame_rcd_values(pattern):
    m = _spots((120, 250), seed=1)
    levels = np.full(3, 1.0)
    rows, cols = np.nonzero(m >= _level_map(levels, pattern, m.shape))
    ys, xs, v = near_clip_values(m, pattern, levels, rows, cols)
    assert ys.size > 100
    assert len(set(zip(ys.tolist(), xs.tolist()))) == ys.size  # each pixel once
    # the same arithmetic; only a SIMD body / scalar tail split may differ in the last bit
    np.testing.assert_allclose(v, demosaic(m, pattern, "rcd2017")[ys, xs], rtol=1e-6, atol=1e-7)


def test_only_pixels_near_clipped_edges_change():
    m = _spots((120, 250), seed=2)
    frame = ispkit.Frame(m, ispkit.Domain.RAW_MOSAIC,
                         ispkit.CaptureMetadata(cfa_pattern="RGGB", white_point=np.ones(3)))
    plain = Demosaic()(frame).data
    got = Demosaic(near_clip="rcd2017")(frame).data
    clipped = (m >= 0.99).astype(np.uint8)
    edge = clipped & (1 - cv2.erode(clipped, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE))
    near = cv2.dilate(edge, np.ones((13, 13), np.uint8)).astype(bool)
    changed = np.any(got != plain, axis=-1)
    assert changed.sum() > 100
    assert not changed[~near].any()          # nothing farther than 6 px from a clipped edge
    assert not changed[30:50, 165:215].any()  # the inside of the large blown area is left alone
    np.testing.assert_allclose(got[near], demosaic(m, "RGGB", "rcd2017")[near], rtol=1e-6, atol=1e-7)
    dark = frame.replace(data=np.minimum(m, 0.5))
    np.testing.assert_array_equal(Demosaic(near_clip="rcd2017")(dark).data, Demosaic()(dark).data)


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_default_fused_render_repairs_the_same_pixels(pattern):
    cap = synthesize_capture(size=(96, 128), cfa_pattern=pattern, seed=4)
    pipe = ispkit.load_preset("default").set({"exposure.ev": 2.5})
    assert isinstance(pipe.compiled_nodes()[0][1], FusedRender)
    plain = pipe.run(cap.frame, fuse=False).output
    malvar = pipe.set({"demosaic.near_clip": None}).run(cap.frame, fuse=False).output
    changed = np.any(np.abs(plain.data - malvar.data) > 1e-3, axis=-1)
    assert changed.sum() > 20  # the push clips highlights and the repair runs
    np.testing.assert_allclose(pipe(cap.frame).data, plain.data, atol=2e-5)
    codes = ispkit.render(cap.frame, pipe, bit_depth=8)
    assert np.abs(codes.astype(int) - np.rint(plain.data * 255)).max() <= 1
    # without reconstruction the white point decides, fused or not
    bare = pipe.remove("reconstruct")
    assert isinstance(bare.compiled_nodes()[0][1], FusedRender)
    np.testing.assert_allclose(bare(cap.frame).data, bare.run(cap.frame, fuse=False).output.data, atol=2e-5)


def test_parameters_are_checked():
    with pytest.raises(UnknownNameError, match="rcd2017"):
        Demosaic(near_clip="vng")
    for bad in (0, 17, 2.5, True):
        with pytest.raises(ParameterError, match="near_clip_radius"):
            Demosaic(near_clip="rcd2017", near_clip_radius=bad)
    for bad in (0.0, 1.5, "x"):
        with pytest.raises(ParameterError, match="near_clip_level"):
            Demosaic(near_clip="rcd2017", near_clip_level=bad)
    st = Demosaic(near_clip="rcd2017", near_clip_radius=3, near_clip_level=0.8)
    assert type(st).from_params(st.to_config()["params"]) == st
