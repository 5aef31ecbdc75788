"""Kernels of the "inpaint opposed" highlight reconstruction on a white-balanced Bayer mosaic.

``cidx`` is the 2×2 colour-index table of the CFA (0 R, 1 G, 2 B); ``clips``
the per-colour clip levels. Rows run in parallel; each kernel reads the 3×3
neighbourhood of a photosite with whole-sample mirrored borders.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["count_clipped", "clipped_quads", "opposed_chroma_sums", "opposed_fill",
           "clipped_per_row", "clipped_columns", "opposed_chroma_sums_sparse", "opposed_values_raw"]


@numba.njit(cache=True, inline="always")
def _mirror(i, n):
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * n - 2 - i
    return i


@numba.njit(cache=True, inline="always", error_model="numpy")
def _cube_root_opposed(s0, s1, s2, n0, n1, n2, c):
    """From per-colour sums and counts: the two colours other than ``c`` averaged in cube-root space."""
    m0 = np.cbrt(s0 / max(n0, 1))
    m1 = np.cbrt(s1 / max(n1, 1))
    m2 = np.cbrt(s2 / max(n2, 1))
    r = 0.5 * (m1 + m2) if c == 0 else (0.5 * (m0 + m2) if c == 1 else 0.5 * (m0 + m1))
    return r * r * r


@numba.njit(cache=True, inline="always", error_model="numpy")
def _opposed_mean(x, y, xx, cidx, c):
    """The 3×3 neighbourhood's mean of the two colours other than ``c``, averaged in cube-root space."""
    h, w = x.shape
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    n0 = 0
    n1 = 0
    n2 = 0
    for dy in range(-1, 2):
        yy = _mirror(y + dy, h)
        for dx in range(-1, 2):
            xc = _mirror(xx + dx, w)
            v = max(np.float64(x[yy, xc]), 0.0)
            k = cidx[yy & 1, xc & 1]
            if k == 0:
                s0 += v
                n0 += 1
            elif k == 1:
                s1 += v
                n1 += 1
            else:
                s2 += v
                n2 += 1
    return _cube_root_opposed(s0, s1, s2, n0, n1, n2, c)


@numba.njit(cache=True, parallel=True)
def count_clipped(x, cidx, clips):
    """Number of photosites at or above their colour's clip level (NaN counts as not clipped)."""
    h, w = x.shape
    per_row = np.zeros(h, np.int64)
    for y in prange(h):
        n = 0
        for xx in range(w):
            n += x[y, xx] >= clips[cidx[y & 1, xx & 1]]
        per_row[y] = n
    return per_row.sum()


@numba.njit(cache=True, parallel=True)
def clipped_quads(x, cidx, clips, out):
    """``out[qy, qx, c]`` = 1 where a photosite of colour ``c`` in 2×2 quad (qy, qx) is clipped."""
    hq, wq = out.shape[0], out.shape[1]
    for qy in prange(hq):
        for qx in range(wq):
            for c in range(3):
                out[qy, qx, c] = 0
            for dy in range(2):
                for dx in range(2):
                    y = 2 * qy + dy
                    xx = 2 * qx + dx
                    c = cidx[dy, dx]
                    if x[y, xx] >= clips[c]:
                        out[qy, qx, c] = 1


@numba.njit(cache=True, parallel=True)
def opposed_chroma_sums(x, cidx, clips, near, low):
    """Per colour: the sum of (value − opposed mean) and the count, over unclipped photosites
    with ``low · clip < value < clip`` in a quad where ``near`` marks that colour."""
    h, w = x.shape
    acc = np.zeros((h, 6), np.float64)
    for y in prange(h):
        for xx in range(w):
            c = cidx[y & 1, xx & 1]
            v = x[y, xx]
            if near[y >> 1, xx >> 1, c] and v < clips[c] and v > low * clips[c]:
                acc[y, c] += v - _opposed_mean(x, y, xx, cidx, c)
                acc[y, 3 + c] += 1.0
    out = np.zeros(6, np.float64)
    for y in range(h):
        for k in range(6):
            out[k] += acc[y, k]
    return out


@numba.njit(cache=True, parallel=True)
def opposed_fill(x, cidx, clips, chroma, out):
    """``out`` = ``x`` with every clipped photosite raised to max(value, opposed mean + chroma)."""
    h, w = x.shape
    for y in prange(h):
        for xx in range(w):
            v = x[y, xx]
            c = cidx[y & 1, xx & 1]
            if v >= clips[c]:
                v = max(v, np.float32(_opposed_mean(x, y, xx, cidx, c) + chroma[c]))
            out[y, xx] = v


# -- sparse versions for the fused render: raw samples normalised on the fly -------------------------

@numba.njit(cache=True, parallel=True)
def clipped_per_row(x, thr):
    """Per row, the number of samples at or above the raw clip level of their 2×2 site."""
    h, w = x.shape
    out = np.zeros(h + 1, np.int64)
    for y in prange(h):
        t0 = thr[y & 1, 0]
        t1 = thr[y & 1, 1]
        n = 0
        for j in range(w // 2):
            n += (np.float32(x[y, 2 * j]) >= t0) + (np.float32(x[y, 2 * j + 1]) >= t1)
        out[y + 1] = n
    return out


@numba.njit(cache=True, parallel=True)
def clipped_columns(x, thr, row_ptr, cols):
    """The columns of the clipped samples of each row, into ``cols[row_ptr[y]:row_ptr[y + 1]]``
    (rows in parallel: each writes its own slice)."""
    h, w = x.shape
    for y in prange(h):
        k = row_ptr[y]
        if k == row_ptr[y + 1]:
            continue
        for xx in range(w):
            if np.float32(x[y, xx]) >= thr[y & 1, xx & 1]:
                cols[k] = xx
                k += 1


@numba.njit(cache=True, inline="always")
def _norm(x, y, xx, black, scale):
    return (np.float64(x[y, xx]) - black[y & 1, xx & 1]) * scale[y & 1, xx & 1]


@numba.njit(cache=True, error_model="numpy")
def _opposed_mean_raw(x, y, xx, cidx, c, black, scale):
    h, w = x.shape
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    n0 = 0
    n1 = 0
    n2 = 0
    for dy in range(-1, 2):
        yy = _mirror(y + dy, h)
        for dx in range(-1, 2):
            xc = _mirror(xx + dx, w)
            k = cidx[yy & 1, xc & 1]
            v = max(np.float64(np.float32(_norm(x, yy, xc, black, scale))), 0.0)
            if k == 0:
                s0 += v
                n0 += 1
            elif k == 1:
                s1 += v
                n1 += 1
            else:
                s2 += v
                n2 += 1
    return _cube_root_opposed(s0, s1, s2, n0, n1, n2, c)


@numba.njit(cache=True, parallel=True)
def opposed_values_raw(x, cidx, clips, chroma, row_ptr, cols, black, scale, vals):
    """The rebuilt (normalised) value of every listed clipped sample: max(value, opposed + chroma)
    (rows in parallel; every value depends on its neighbourhood only)."""
    h = x.shape[0]
    for y in prange(h):
        for k in range(row_ptr[y], row_ptr[y + 1]):
            xx = cols[k]
            c = cidx[y & 1, xx & 1]
            v = np.float32(_norm(x, y, xx, black, scale))
            if v >= clips[c]:
                v = max(v, np.float32(_opposed_mean_raw(x, y, xx, cidx, c, black, scale) + chroma[c]))
            vals[k] = v


@numba.njit(cache=True, parallel=True)
def opposed_chroma_sums_sparse(x, cidx, clips, rows, cols, colours, reach, low, black, scale):
    """:func:`opposed_chroma_sums` from the list of clipped samples: for each colour, every 2×2 quad
    within ``reach`` quads of a quad holding a clipped sample of that colour is visited once and
    its photosites of that colour summed (raw samples normalised on the fly).

    The three colours run in parallel, each summing in list order: the sums do
    not depend on the number of threads.
    """
    h, w = x.shape
    hq = (h + 1) // 2
    wq = (w + 1) // 2
    out = np.zeros(6)
    for c in prange(3):
        s, n = _chroma_sum_colour(x, cidx, clips, rows, cols, colours, reach, low, black, scale, c, hq, wq)
        out[c] = s
        out[3 + c] = n
    return out


@numba.njit(cache=True)
def _chroma_sum_colour(x, cidx, clips, rows, cols, colours, reach, low, black, scale, c, hq, wq):
    """One colour's (sum, count) of :func:`opposed_chroma_sums_sparse`."""
    h, w = x.shape
    total = 0.0
    count = 0.0
    seen = np.zeros((0, 0), np.uint8)
    for i in range(rows.shape[0]):
        if colours[i] != c:
            continue
        if seen.shape[0] == 0:
            seen = np.zeros((hq, wq), np.uint8)  # only for colours that have clipped samples
        qy0 = rows[i] >> 1
        qx0 = cols[i] >> 1
        for qy in range(max(qy0 - reach, 0), min(qy0 + reach + 1, hq)):
            for qx in range(max(qx0 - reach, 0), min(qx0 + reach + 1, wq)):
                if seen[qy, qx]:
                    continue
                seen[qy, qx] = 1
                for dy in range(2):
                    for dx in range(2):
                        y = 2 * qy + dy
                        xx = 2 * qx + dx
                        if y >= h or xx >= w or cidx[y & 1, xx & 1] != c:
                            continue
                        v = np.float64(np.float32(_norm(x, y, xx, black, scale)))
                        if v < clips[c] and v > low * clips[c]:
                            total += v - _opposed_mean_raw(x, y, xx, cidx, c, black, scale)
                            count += 1.0
    return total, count
