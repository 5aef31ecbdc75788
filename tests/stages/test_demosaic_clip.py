"""Clip-aware demosaicing: no coloured specks along clipped edges; the fused render matches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import ispkit
from ispkit.errors import ParameterError
from ispkit.frame import CaptureMetadata, Domain, Frame, cfa_color_indices
from ispkit.io.synthetic import synthesize_capture
from ispkit.stages import Demosaic, FusedRender
from ispkit.stages.demosaic import demosaic, mosaic
from ispkit.stages.highlights import HighlightRecovery

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
GAINS = np.array([2.2, 1.0, 1.6])  # white-balance gains: each channel clips at a different level


def clipped_disc(pattern: str, peak: float = 6.0, sigma: float = 1.0) -> Frame:
    """A neutral scene: a disc `peak`× over white on a 0.04 background, lens blur `sigma` px,
    captured raw (clipped at 1), then white-balanced (channel c clips at GAINS[c])."""
    yy, xx = np.mgrid[0:96, 0:128]
    lum = gaussian_filter(np.where(((yy - 48) / 30.0) ** 2 + ((xx - 64) / 44.0) ** 2 < 1, peak, 0.04), sigma)
    raw = np.clip(mosaic(lum[..., None] / GAINS, pattern), 0.0, 1.0)
    cidx = cfa_color_indices(pattern)
    gain_map = GAINS[cidx[np.arange(96)[:, None] & 1, np.arange(128)[None, :] & 1]]
    meta = CaptureMetadata(cfa_pattern=pattern, white_point=GAINS)
    return Frame(data=(raw * gain_map).astype(np.float32), domain=Domain.RAW_MOSAIC, meta=meta)


def chroma_outliers(frame: Frame, stage: Demosaic, threshold: float = 0.2) -> int:
    """Pixels of the displayed (highlight-clipped) neutral scene whose max - min channel exceeds `threshold`."""
    rgb = np.clip(HighlightRecovery(method="clip")(stage(frame)).data, 0.0, 1.0)
    return int(np.count_nonzero(rgb.max(axis=-1) - rgb.min(axis=-1) > threshold))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_clip_aware_removes_the_specks_along_clipped_edges(pattern):
    f = clipped_disc(pattern)
    before = chroma_outliers(f, Demosaic(method="malvar2004"))
    after = chroma_outliers(f, Demosaic(method="malvar2004", clip_aware=True))
    assert before > 50  # today's Malvar: a ring of cyan/yellow/magenta specks
    assert after == 0
    for method in ("bilinear", "menon2007", "rcd2017"):
        assert chroma_outliers(f, Demosaic(method=method, clip_aware=True)) <= chroma_outliers(
            f, Demosaic(method=method))
    for method in ("menon2007", "rcd2017"):
        assert chroma_outliers(f, Demosaic(method=method, clip_aware=True)) == 0


def test_clip_level_keeps_own_samples_and_changes_nothing_without_clipping():
    f = clipped_disc("GRBG")
    x = f.data
    got = demosaic(x, "GRBG", "malvar2004", clip_level=1.0)
    np.testing.assert_array_equal(mosaic(got, "GRBG"), x)  # each pixel keeps its recorded sample
    assert x.max() > 1.5  # (samples above the level were limited only for interpolating)
    lo = np.minimum(x, 0.5)
    np.testing.assert_array_equal(demosaic(lo, "GRBG", "rcd2017", clip_level=0.9), demosaic(lo, "GRBG", "rcd2017"))
    for bad in (0.0, -1.0, np.nan, np.inf, "high"):
        with pytest.raises(ParameterError, match="clip_level"):
            demosaic(x, "GRBG", "malvar2004", clip_level=bad)
    with pytest.raises(ParameterError, match="clip_aware"):
        Demosaic(clip_aware="yes")
    st = Demosaic(method="rcd2017", clip_aware=True)
    assert type(st).from_params(st.to_config()["params"]) == st
    no_wp = f.replace(meta=f.meta.replace(white_point=None))
    np.testing.assert_array_equal(Demosaic(clip_aware=True)(no_wp).data, Demosaic()(no_wp).data)


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_fused_default_with_clip_aware_equals_unfused(pattern):
    cap = synthesize_capture(size=(96, 128), cfa_pattern=pattern, seed=4)
    # without the display curve, so the +2 EV push reaches the hard clip of the OETF
    pipe = ispkit.load_preset("default").remove("tone").remove("reconstruct").set({"demosaic.clip_aware": True, "exposure.ev": 2.0})
    nodes = pipe.compiled_nodes()
    assert len(nodes) == 1 and isinstance(nodes[0][1], FusedRender)
    fused = pipe(cap.frame)
    plain = pipe.run(cap.frame, fuse=False).output
    assert np.mean(plain.data >= 0.999) > 0.01  # the +2 EV push clips the highlights
    np.testing.assert_allclose(fused.data, plain.data, atol=2e-5)
    unaware = ispkit.load_preset("default").remove("tone").remove("reconstruct").set({"exposure.ev": 2.0}).run(cap.frame, fuse=False).output
    assert np.abs(unaware.data - plain.data).max() > 1e-3  # the option changes the render near the clip
    # without the highlight clip after it, clip-aware demosaicing does not fuse
    assert not any(isinstance(s, FusedRender) for _, s in pipe.remove("highlights").compiled_nodes())
    assert any(isinstance(s, FusedRender)
               for _, s in ispkit.load_preset("default").remove("highlights").compiled_nodes())


def test_highlight_fringe_is_not_fused_away():
    """The fused kernel has no fringe rim: a pipeline asking for one runs the stages."""
    pipe = ispkit.load_preset("default").set({"highlights.fringe": 2})
    assert not any(isinstance(s, FusedRender) for _, s in pipe.compiled_nodes())


def test_blackmagic_specks_near_clipped_highlights():
    """On the real DNG, count strongly coloured pixels (max - min > 0.4 after the default render)
    within 6 px of a sensor-clipped sample: the directional methods leave far fewer than Malvar."""
    import cv2

    from tests.conftest import data_path

    frame = ispkit.read_raw(data_path("raw", "blackmagic_pocket4k.dng"))
    x = frame.data
    clipped = (x >= 0.99 * frame.meta.white_level).astype(np.uint8)
    assert clipped.sum() > 100
    ys, xs = np.nonzero(clipped)
    y0, x0 = max(0, ys.min() - 32) // 2 * 2, max(0, xs.min() - 32) // 2 * 2
    y1, x1 = min(x.shape[0], ys.max() + 34) // 2 * 2, min(x.shape[1], xs.max() + 34) // 2 * 2
    crop = frame.replace(data=np.ascontiguousarray(x[y0:y1, x0:x1]))
    near = cv2.dilate(clipped[y0:y1, x0:x1], np.ones((13, 13), np.uint8)).astype(bool)
    pipe = ispkit.load_preset("default")
    counts = {}
    for method in ("malvar2004", "rcd2017"):
        rgb = np.clip(pipe.replace("demosaic", Demosaic(method=method, clip_aware=True))
                      .run(crop, fuse=False).output.data, 0.0, 1.0)
        counts[method] = int(np.count_nonzero((rgb.max(axis=-1) - rgb.min(axis=-1))[near] > 0.4))
    # the default: Malvar with RCD next to clipped edges, fused
    rgb = pipe(crop).data
    counts["default"] = int(np.count_nonzero((rgb.max(axis=-1) - rgb.min(axis=-1))[near] > 0.4))
    print("\ncoloured specks near clipped samples (Blackmagic DNG):", counts)
    assert counts["malvar2004"] > 100
    assert counts["rcd2017"] * 3 < counts["malvar2004"]
    assert counts["default"] * 6 < counts["malvar2004"]
    assert counts["default"] <= 2 * counts["rcd2017"] + 5
