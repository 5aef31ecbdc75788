"""Reusable scratch buffers for full-frame temporaries.

A freshly allocated large array is slow to touch the first time: the kernel
zeroes every page as it is faulted in (on these machines ≈ 30 % of a 12 MP
night render's CPU time went to ``clear_page`` before temporaries were
reused). Temporaries that never leave a function can come from here instead:
one buffer per name, per thread, kept while the shape and dtype stay the same.
Results handed back to a caller must never live in a scratch buffer.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["scratch", "release_scratch", "SCRATCH_MIN_BYTES"]

#: Arrays smaller than this are allocated fresh (reuse only pays for big ones).
SCRATCH_MIN_BYTES = 1 << 22

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Return an uninitialised C-contiguous array for temporary use, reused by later calls with ``name``.

    Notes
    -----
    The contents are garbage; the buffer is overwritten by the next call
    that asks for ``name`` on the same thread, so never return it (or a view
    of it) to a caller.
    """
    dt = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = dt.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes < SCRATCH_MIN_BYTES:
        return np.empty(shape, dtype=dt)
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    buf = pool.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dt:
        pool.pop(name, None)
        buf = pool[name] = np.empty(shape, dtype=dt)
    return buf


def release_scratch() -> None:
    """Free this thread's scratch buffers."""
    _local.pool = {}
