"""Numba kernels for black-level subtraction and linearisation.

Each kernel works on row buffers: the black level and the reciprocal scale
are expanded once into ``R×W`` rows (``R`` = rows of the black-level repeat
pattern), so the inner loop is a branch-free subtract-and-multiply that LLVM
vectorises.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["normalize_rows", "normalize_rows_lut"]

# Reassociation lets the finiteness accumulator vectorise; no-NaN / no-inf
# flags stay off so ``v * 0`` keeps propagating NaN and inf.
_FASTMATH = {"reassoc", "contract", "arcp"}


@numba.njit(cache=True, parallel=True, fastmath=_FASTMATH)
def normalize_rows(x, black_rows, inv_rows, clip, out):
    """Write ``(x - black) * inv`` into ``out``; return a per-row NaN/inf probe.

    Notes
    -----
    ``x`` H×W (any real dtype); ``black_rows``/``inv_rows`` R×W float32,
    row ``r`` of the frame uses row ``r % R``; ``out`` H×W float32. The
    returned (H,) float32 array is NaN in every row that held a non-finite
    input sample, zero elsewhere.
    """
    h, w = x.shape
    period = black_rows.shape[0]
    probe = np.zeros(h, dtype=np.float32)
    for r in prange(h):
        b = black_rows[r % period]
        s = inv_rows[r % period]
        xr = x[r]
        orow = out[r]
        acc = np.float32(0.0)
        if clip:
            for c in range(w):
                v = np.float32(xr[c])
                acc += v * np.float32(0.0)
                y = (v - b[c]) * s[c]
                orow[c] = min(max(y, np.float32(0.0)), np.float32(1.0))
        else:
            for c in range(w):
                v = np.float32(xr[c])
                acc += v * np.float32(0.0)
                orow[c] = (v - b[c]) * s[c]
        probe[r] = acc
    return probe


@numba.njit(cache=True, parallel=True, fastmath=_FASTMATH)
def normalize_rows_lut(x, lut, black_rows, inv_rows, clip, out):
    """Like :func:`normalize_rows` after mapping each sample through ``lut``.

    Notes
    -----
    The table index is the sample rounded to the nearest integer and clamped
    to ``[0, len(lut) - 1]`` (DNG LinearizationTable: values past the end use
    the last entry). ``lut`` is float32.
    """
    h, w = x.shape
    period = black_rows.shape[0]
    last = lut.shape[0] - 1
    top = np.float64(last)
    probe = np.zeros(h, dtype=np.float32)
    for r in prange(h):
        b = black_rows[r % period]
        s = inv_rows[r % period]
        xr = x[r]
        orow = out[r]
        acc = np.float32(0.0)
        for c in range(w):
            v = np.float64(xr[c])
            acc += np.float32(v) * np.float32(0.0)
            if not v >= 0.5:  # also catches NaN
                idx = 0
            elif v >= top:
                idx = last
            else:
                idx = int(v + 0.5)
            y = (lut[idx] - b[c]) * s[c]
            if clip:
                y = min(max(y, np.float32(0.0)), np.float32(1.0))
            orow[c] = y
        probe[r] = acc
    return probe
