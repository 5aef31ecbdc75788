"""Numba kernels for illuminant statistics and white-balance gains.

The statistics kernels read a Bayer mosaic directly (one 2×2 block = one
RGB sample ``(R, (Gr + Gb) / 2, B)``) or an H×W×3 image, apply the
saturation / darkness mask on the fly and reduce per row, so no half-size
temporary is made for the Minkowski-norm estimators.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = [
    "minkowski_bayer",
    "minkowski_rgb",
    "bin_bayer",
    "valid_mask_rgb",
    "apply_row_gains",
    "finite_probe",
]

_FASTMATH = {"reassoc", "contract", "arcp"}


@numba.njit(cache=True, inline="always")
def _powp(v, p, ip):
    """``v ** p`` with a multiply chain when ``p`` is a small integer (``ip > 0``)."""
    if ip > 0:
        out = v
        for _ in range(ip - 1):
            out *= v
        return out
    return v ** p


@numba.njit(cache=True, inline="always")
def _accumulate(r, g, b, p, ip, mode, acc):
    """Add one RGB sample to ``acc`` (mode 0: Minkowski sum, 1: max)."""
    if mode == 1:
        acc[0] = max(acc[0], r)
        acc[1] = max(acc[1], g)
        acc[2] = max(acc[2], b)
    elif ip == 1:  # gray world: signed mean, unbiased under noise
        acc[0] += r
        acc[1] += g
        acc[2] += b
    else:
        acc[0] += _powp(max(r, 0.0), p, ip)
        acc[1] += _powp(max(g, 0.0), p, ip)
        acc[2] += _powp(max(b, 0.0), p, ip)
    acc[3] += 1.0


@numba.njit(cache=True)
def _row_accumulators(n, mode):
    """n per-row accumulators (R, G, B, count): zeros, or -inf colours for the max mode."""
    rows = np.zeros((n, 4), dtype=np.float64)
    if mode == 1:
        rows[:, :3] = -np.inf
    return rows


@numba.njit(cache=True)
def _combine_rows(rows, mode):
    """Reduce per-row accumulators to one (4,): max (mode 1) or sum of the colours, sum of the counts."""
    out = np.zeros(4, dtype=np.float64)
    if mode == 1:
        out[:3] = -np.inf
        for i in range(rows.shape[0]):
            for k in range(3):
                out[k] = max(out[k], rows[i, k])
            out[3] += rows[i, 3]
    else:
        for i in range(rows.shape[0]):
            for k in range(4):
                out[k] += rows[i, k]
    return out


@numba.njit(cache=True, parallel=True)
def minkowski_bayer(x, pos, thr, dark, p, mode):
    """Per-channel Minkowski sums (or maxima) over the unmasked 2×2 blocks.

    Parameters
    ----------
    x : H×W mosaic (H, W even).
    pos : (4, 2) int64 (row, col) of R, Gr, Gb, B inside the 2×2 block.
    thr : (3,) saturation thresholds; a block is masked when any sample
        reaches the threshold of its colour.
    dark : a block is masked when all of R, G, B are ``<= dark``.
    p : Minkowski exponent (``1`` = mean, ignored for ``mode == 1``).
    mode : 0 sum of ``max(v, 0) ** p`` (plain ``v`` when ``p == 1``), 1 max.

    Returns
    -------
    (4,) float64: the three reductions and the number of blocks used.
    """
    h2 = x.shape[0] // 2
    w2 = x.shape[1] // 2
    ip = int(p) if (p == np.floor(p) and 1.0 <= p <= 16.0) else 0
    rows = _row_accumulators(h2, mode)
    r0, c0 = pos[0, 0], pos[0, 1]
    r1, c1 = pos[1, 0], pos[1, 1]
    r2, c2 = pos[2, 0], pos[2, 1]
    r3, c3 = pos[3, 0], pos[3, 1]
    t0, t1, t2 = thr[0], thr[1], thr[2]
    for i in prange(h2):
        acc = rows[i]
        y = 2 * i
        for j in range(w2):
            xx = 2 * j
            rv = np.float64(x[y + r0, xx + c0])
            g1 = np.float64(x[y + r1, xx + c1])
            g2 = np.float64(x[y + r2, xx + c2])
            bv = np.float64(x[y + r3, xx + c3])
            if rv >= t0 or g1 >= t1 or g2 >= t1 or bv >= t2:
                continue
            gv = 0.5 * (g1 + g2)
            if rv <= dark and gv <= dark and bv <= dark:
                continue
            _accumulate(rv, gv, bv, p, ip, mode, acc)
    return _combine_rows(rows, mode)


@numba.njit(cache=True, parallel=True)
def minkowski_rgb(x, mask, thr, dark, p, mode):
    """Per-channel Minkowski sums (or maxima) of an H×W×3 image.

    Parameters
    ----------
    x : H×W×3 image.
    mask : H×W uint8 (nonzero = usable) or a 0×0 array for "all usable";
        the saturation and darkness tests apply on top of it.
    thr, dark, p, mode : as in :func:`minkowski_bayer`.
    """
    h, w = x.shape[0], x.shape[1]
    use_mask = mask.shape[0] == h and mask.shape[1] == w
    ip = int(p) if (p == np.floor(p) and 1.0 <= p <= 16.0) else 0
    rows = _row_accumulators(h, mode)
    t0, t1, t2 = thr[0], thr[1], thr[2]
    for i in prange(h):
        acc = rows[i]
        for j in range(w):
            if use_mask and mask[i, j] == 0:
                continue
            rv = np.float64(x[i, j, 0])
            gv = np.float64(x[i, j, 1])
            bv = np.float64(x[i, j, 2])
            if rv >= t0 or gv >= t1 or bv >= t2:
                continue
            if rv <= dark and gv <= dark and bv <= dark:
                continue
            _accumulate(rv, gv, bv, p, ip, mode, acc)
    return _combine_rows(rows, mode)


@numba.njit(cache=True, parallel=True)
def bin_bayer(x, pos, thr, dark, out, mask):
    """Bin a mosaic to half-size RGB ``(R, (Gr + Gb) / 2, B)`` and flag usable blocks.

    Notes
    -----
    ``out`` H/2×W/2×3 float32, ``mask`` H/2×W/2 uint8 (1 = neither
    saturated in any sample nor dark in all colours).
    """
    h2 = x.shape[0] // 2
    w2 = x.shape[1] // 2
    r0, c0 = pos[0, 0], pos[0, 1]
    r1, c1 = pos[1, 0], pos[1, 1]
    r2, c2 = pos[2, 0], pos[2, 1]
    r3, c3 = pos[3, 0], pos[3, 1]
    t0, t1, t2 = thr[0], thr[1], thr[2]
    for i in prange(h2):
        y = 2 * i
        for j in range(w2):
            xx = 2 * j
            rv = np.float32(x[y + r0, xx + c0])
            g1 = np.float32(x[y + r1, xx + c1])
            g2 = np.float32(x[y + r2, xx + c2])
            bv = np.float32(x[y + r3, xx + c3])
            gv = np.float32(0.5) * (g1 + g2)
            out[i, j, 0] = rv
            out[i, j, 1] = gv
            out[i, j, 2] = bv
            sat = rv >= t0 or g1 >= t1 or g2 >= t1 or bv >= t2
            blk = rv <= dark and gv <= dark and bv <= dark
            mask[i, j] = 0 if (sat or blk) else 1


@numba.njit(cache=True, parallel=True)
def valid_mask_rgb(x, thr, dark, mask):
    """Flag pixels of an H×W×3 image that are neither saturated nor dark (uint8)."""
    h, w = x.shape[0], x.shape[1]
    t0, t1, t2 = thr[0], thr[1], thr[2]
    for i in prange(h):
        for j in range(w):
            rv = x[i, j, 0]
            gv = x[i, j, 1]
            bv = x[i, j, 2]
            sat = rv >= t0 or gv >= t1 or bv >= t2
            blk = rv <= dark and gv <= dark and bv <= dark
            mask[i, j] = 0 if (sat or blk) else 1


@numba.njit(cache=True, parallel=True, fastmath=_FASTMATH)
def apply_row_gains(x, gain_rows, lo, hi, clip, out):
    """Multiply each row by a periodic gain row: ``out[r] = x[r] * gain_rows[r % R]``.

    Notes
    -----
    One kernel for every layout: a mosaic uses R = 2 rows of per-column
    CFA gains, an H×W×C image is viewed as H×(W·C) with one row of gains
    tiled C-periodically. With ``clip`` the result is limited to
    ``[lo, hi]``. Returns an (H,) probe that is NaN in rows holding a
    non-finite input sample.
    """
    h, w = x.shape
    period = gain_rows.shape[0]
    probe = np.zeros(h, dtype=np.float32)
    for r in prange(h):
        g = gain_rows[r % period]
        xr = x[r]
        orow = out[r]
        acc = np.float32(0.0)
        if clip:
            for c in range(w):
                v = xr[c]
                acc += v * np.float32(0.0)
                orow[c] = min(max(v * g[c], lo), hi)
        else:
            for c in range(w):
                v = xr[c]
                acc += v * np.float32(0.0)
                orow[c] = v * g[c]
        probe[r] = acc
    return probe


@numba.njit(cache=True, parallel=True, fastmath=_FASTMATH)
def finite_probe(x):
    """Return 0.0 when every sample of a C-contiguous array is finite, NaN otherwise."""
    flat = x.reshape(-1)
    n = flat.shape[0]
    chunk = 65536
    nchunks = (n + chunk - 1) // chunk
    parts = np.zeros(nchunks, dtype=np.float32)
    for k in prange(nchunks):
        acc = np.float32(0.0)
        stop = min(n, (k + 1) * chunk)
        for i in range(k * chunk, stop):
            acc += np.float32(flat[i]) * np.float32(0.0)
        parts[k] = acc
    total = np.float32(0.0)
    for k in range(nchunks):
        total += parts[k]
    return total
