"""Numba kernels of :mod:`ispkit.stages.near_clip`: window gathering and near-highlight marking."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["gather_windows", "mark_near"]


@numba.njit(cache=True, inline="always")
def _mirror(i, n):
    """Whole-sample mirror (… c b | a b c …), repeated for indices far outside."""
    if n == 1:
        return 0
    period = 2 * n - 2
    i = i % period
    if i < 0:
        i += period
    return i if i < n else period - i


@numba.njit(cache=True, parallel=True, fastmath={"contract"})
def gather_windows(x, black, scale, lo, hi, row_ptr, pcols, pvals, oy, ox, side, out):
    """Fill ``out[k·side:(k+1)·side]`` with the mosaic around origin ``(oy[k], ox[k])``.

    Each sample is ``clip((x − black) · scale, lo, hi)`` with the 2×2 ``black``
    and ``scale`` of its site (as the fused kernel loads it), then the listed
    samples ``pvals`` (row y's columns ``pcols[row_ptr[y]:row_ptr[y + 1]]``)
    replace theirs. Indices outside the frame are mirrored whole-sample.
    """
    h, w = x.shape
    for k in prange(oy.shape[0]):
        for i in range(side):
            y = _mirror(oy[k] + i, h)
            o = out[k * side + i]
            b0, b1 = black[y & 1, 0], black[y & 1, 1]
            s0, s1 = scale[y & 1, 0], scale[y & 1, 1]
            x0 = ox[k]
            if x0 >= 0 and x0 + side <= w:  # inside the frame (x0 even): pairs of sites, no mirror
                src = x[y]
                for jj in range(side // 2):
                    a = (np.float32(src[x0 + 2 * jj]) - b0) * s0
                    b = (np.float32(src[x0 + 2 * jj + 1]) - b1) * s1
                    o[2 * jj] = min(max(a, lo), hi)
                    o[2 * jj + 1] = min(max(b, lo), hi)
            else:
                for j in range(side):
                    c = _mirror(x0 + j, w)
                    v = (np.float32(x[y, c]) - (b1 if c & 1 else b0)) * (s1 if c & 1 else s0)
                    o[j] = min(max(v, lo), hi)
            for p in range(row_ptr[y], row_ptr[y + 1]):
                c = pcols[p]
                v = min(max(pvals[p], lo), hi)
                for cand in (c, -c, 2 * w - 2 - c):  # the column and its mirror images
                    j = cand - ox[k]
                    if 0 <= j < side:
                        o[j] = v


@numba.njit(cache=True, parallel=True)
def mark_near(wins, levels, side, margin, tile, radius, hmax, wmax, near):
    """Mark, in each window's inner ``tile``², the pixels within ``radius`` (square) of an edge
    highlight: a sample ≥ ``levels`` of its site with a neighbour below its own (indices clamped
    to the window). ``hmax[k]``/``wmax[k]``: rows/columns of tile k inside the frame. Returns
    the marked count per window.

    Branch-free uint8 passes (threshold, separable 3×3 erosion, separable square dilation).
    """
    n = near.shape[0]
    counts = np.zeros(n, np.int64)
    for k in prange(n):
        win = wins[k * side:(k + 1) * side]
        high = np.empty((side, side), np.uint8)
        for i in range(side):
            l0 = levels[i & 1, 0]
            l1 = levels[i & 1, 1]
            for jj in range(side // 2):
                high[i, 2 * jj] = win[i, 2 * jj] >= l0
                high[i, 2 * jj + 1] = win[i, 2 * jj + 1] >= l1
        rmin = np.empty((side, side), np.uint8)  # 1×3 erosion, clamped ends
        for i in range(side):
            rmin[i, 0] = high[i, 0] & high[i, 1]
            for j in range(1, side - 1):
                rmin[i, j] = high[i, j - 1] & high[i, j] & high[i, j + 1]
            rmin[i, side - 1] = high[i, side - 2] & high[i, side - 1]
        edge = np.zeros((side, side), np.uint8)
        for i in range(side):
            up = rmin[max(i - 1, 0)]
            dn = rmin[min(i + 1, side - 1)]
            for j in range(side):
                edge[i, j] = high[i, j] & (1 - (up[j] & rmin[i, j] & dn[j]))
        rows = np.zeros((side, tile), np.uint8)  # horizontal dilation, inner columns only
        for i in range(margin - radius, margin + tile + radius):
            for d in range(-radius, radius + 1):
                for j in range(tile):
                    rows[i, j] |= edge[i, margin + j + d]
        c = 0
        for i in range(tile):
            acc = np.zeros(tile, np.uint8)
            for d in range(-radius, radius + 1):
                for j in range(tile):
                    acc[j] |= rows[margin + i + d, j]
            inside = i < hmax[k]
            for j in range(tile):
                v = acc[j] != 0 and inside and j < wmax[k]
                near[k, i, j] = v
                c += v
        counts[k] = c
    return counts
