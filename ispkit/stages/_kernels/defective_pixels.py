"""Numba kernels for defective (hot / dead) pixel detection and correction on a Bayer mosaic.

Same-colour neighbours come from a table built in Python from the CFA layout:
``offsets[p, j] = (dy, dx)`` for the j-th same-colour neighbour of a pixel of
2×2 phase ``p = 2 * (row & 1) + (col & 1)``, ``counts[p]`` of them (8 for R
and B, 12 for G in a 5×5 window). Out-of-image neighbours are mirrored about
the border pixel (``-1 → 1``), which keeps the CFA phase.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["detect_defects", "correct_median", "correct_gradient"]


@numba.njit(inline="always")
def _reflect(i, n):
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * (n - 1) - i
    return i


@numba.njit(inline="always")
def _sort(buf, n):
    for i in range(1, n):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@numba.njit(inline="always")
def _median_sorted(buf, n):
    h = n // 2
    if n % 2:
        return buf[h]
    return np.float32(0.5) * (buf[h - 1] + buf[h])


@numba.njit(parallel=True, cache=True)
def detect_defects(mosaic, black, offsets, counts, k, ratio, sigma_floor, rel_floor, mask):
    """Flag pixels far outside the range of their same-colour neighbours.

    Notes
    -----
    With ``x`` the pixel and ``n₂`` / ``n₂'`` the second largest / second
    smallest neighbour (so two defects in one window still show), all minus
    the black level ``black[row & 1, col & 1]``, the excess is
    ``e = max(x - n₂, n₂' - x)`` and the noise floor
    ``b = max(sigma_floor, rel_floor·|median|)``. A pixel is flagged when

    * ``e > k · max(1.4826·MAD(neighbours), b)`` (a statistical outlier), or
    * ``e > k · b`` and ``x < ratio · n₂'`` (dead: far darker than every
      neighbour but one) or ``ratio · x > n₂`` (hot: far brighter) — this
      catches defects in strong texture, where the MAD is large.

    Writes ``mask`` (H×W bool); returns the number of flagged pixels.
    """
    h, w = mosaic.shape
    kk = np.float32(k)
    rho = np.float32(ratio)
    sfloor = np.float32(sigma_floor)
    rfloor = np.float32(rel_floor)
    # black level of each neighbour, by phase (mirroring keeps the phase of the unmirrored offset)
    nblack = np.empty((4, offsets.shape[1]), dtype=np.float32)
    for p in range(4):
        for j in range(counts[p]):
            nblack[p, j] = black[(p // 2 + offsets[p, j, 0]) & 1, (p % 2 + offsets[p, j, 1]) & 1]
    total = 0
    for r in prange(h):
        buf = np.empty(16, dtype=np.float32)
        rows = np.empty(5, dtype=np.int64)
        for d in range(5):
            rows[d] = _reflect(r + d - 2, h)
        row_count = 0
        for c in range(w):
            p = 2 * (r & 1) + (c & 1)
            n = counts[p]
            x = mosaic[r, c] - black[r & 1, c & 1]
            hi1 = np.float32(-np.inf)
            hi2 = np.float32(-np.inf)
            lo1 = np.float32(np.inf)
            lo2 = np.float32(np.inf)
            border = c < 2 or c >= w - 2
            for j in range(n):
                cc = c + offsets[p, j, 1]
                if border:
                    cc = _reflect(cc, w)
                v = mosaic[rows[offsets[p, j, 0] + 2], cc] - nblack[p, j]
                buf[j] = v
                hi2 = max(hi2, min(hi1, v))
                hi1 = max(hi1, v)
                lo2 = min(lo2, max(lo1, v))
                lo1 = min(lo1, v)
            up = x - hi2
            down = lo2 - x
            excess = up if up > down else down
            flag = False
            if excess > kk * sfloor:  # cheap rejection: every rule needs this
                _sort(buf, n)
                med = _median_sorted(buf, n)
                base = max(sfloor, rfloor * abs(med))
                if excess > kk * base:
                    if up > down:
                        flag = rho * x > hi2
                    else:
                        flag = x < rho * lo2
                    if not flag:
                        for j in range(n):
                            buf[j] = abs(buf[j] - med)
                        _sort(buf, n)
                        sigma = np.float32(1.4826) * _median_sorted(buf, n)
                        flag = excess > kk * max(sigma, base)
            mask[r, c] = flag
            row_count += flag
        total += row_count
    return total


@numba.njit(cache=True)
def _neighbour_median(mosaic, mask, offsets, n, r, c, buf):
    """Median of the unflagged same-colour neighbours of (r, c); of all ``n`` when every one is flagged."""
    h, w = mosaic.shape
    m = 0
    for j in range(n):
        rr = _reflect(r + offsets[j, 0], h)
        cc = _reflect(c + offsets[j, 1], w)
        if not mask[rr, cc]:
            buf[m] = mosaic[rr, cc]
            m += 1
    if m == 0:
        for j in range(n):
            buf[j] = mosaic[_reflect(r + offsets[j, 0], h), _reflect(c + offsets[j, 1], w)]
        m = n
    _sort(buf, m)
    return _median_sorted(buf, m)


@numba.njit(parallel=True, cache=True)
def correct_median(mosaic, mask, offsets, counts, out):
    """Replace flagged pixels by the median of their unflagged same-colour neighbours.

    Notes
    -----
    Falls back to all neighbours when every one is flagged. ``out`` is H×W
    float32 and must not alias ``mosaic``.
    """
    h, w = mosaic.shape
    for r in prange(h):
        buf = np.empty(16, dtype=np.float32)
        for c in range(w):
            if not mask[r, c]:
                out[r, c] = mosaic[r, c]
                continue
            p = 2 * (r & 1) + (c & 1)
            out[r, c] = _neighbour_median(mosaic, mask, offsets[p], counts[p], r, c, buf)


@numba.njit(parallel=True, cache=True)
def correct_gradient(mosaic, mask, offsets, counts, pairs, npairs, out):
    """Replace flagged pixels by the mean of the opposite same-colour pair with the smallest difference.

    Notes
    -----
    ``pairs[p, j] = (dy, dx)``: the pair is the neighbours at ``±(dy, dx)``;
    pairs with a flagged end are skipped; with none left, the median of
    unflagged neighbours is used (as :func:`correct_median`).
    """
    h, w = mosaic.shape
    for r in prange(h):
        buf = np.empty(16, dtype=np.float32)
        for c in range(w):
            if not mask[r, c]:
                out[r, c] = mosaic[r, c]
                continue
            p = 2 * (r & 1) + (c & 1)
            best = np.float32(np.inf)
            value = np.float32(0.0)
            for j in range(npairs[p]):
                dy = pairs[p, j, 0]
                dx = pairs[p, j, 1]
                r1 = _reflect(r + dy, h)
                c1 = _reflect(c + dx, w)
                r2 = _reflect(r - dy, h)
                c2 = _reflect(c - dx, w)
                if mask[r1, c1] or mask[r2, c2]:
                    continue
                a = mosaic[r1, c1]
                b = mosaic[r2, c2]
                d = abs(a - b)
                if d < best:
                    best = d
                    value = np.float32(0.5) * (a + b)
            if best < np.float32(np.inf):
                out[r, c] = value
                continue
            out[r, c] = _neighbour_median(mosaic, mask, offsets[p], counts[p], r, c, buf)
