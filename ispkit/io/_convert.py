"""One pass over a decoded mosaic: float32 copy plus the maximum of each 2×2 position."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["mosaic_to_float32"]


@numba.njit(cache=True, parallel=True)
def _convert(src, out, row_max):
    h, w = src.shape
    for y in numba.prange(h):
        m0 = 0
        m1 = 0
        s = src[y]
        o = out[y]
        for x in range(0, w - 1, 2):
            a = s[x]
            b = s[x + 1]
            o[x] = np.float32(a)
            o[x + 1] = np.float32(b)
            m0 = max(m0, np.int64(a))
            m1 = max(m1, np.int64(b))
        if w & 1:
            o[w - 1] = np.float32(s[w - 1])
            m0 = max(m0, np.int64(s[w - 1]))
        row_max[y, 0] = m0
        row_max[y, 1] = m1


def mosaic_to_float32(visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (float32 copy, (4,) maxima per 2×2 position in raster order) of an integer mosaic.

    Notes
    -----
    H×W unsigned integer counts in; the maxima feed LibRaw's white-level rule.
    """
    src = np.ascontiguousarray(visible)
    h, w = src.shape
    out = np.empty((h, w), np.float32)
    row_max = np.zeros((max(h, 1), 2), np.int64)
    if h and w:
        _convert(src, out, row_max)
    pos_max = np.array([row_max[i::2, j].max() if row_max[i::2].size else 0 for i in (0, 1) for j in (0, 1)])
    return out, pos_max
