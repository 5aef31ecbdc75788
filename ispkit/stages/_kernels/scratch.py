"""Reusable scratch buffers for full-frame temporaries.

A freshly allocated large array is slow to touch the first time: the kernel
zeroes every page as it is faulted in (on these machines ≈ 30 % of a 12 MP
night render's CPU time went to ``clear_page`` before temporaries were
reused). Temporaries that never leave a function can come from here instead:
one buffer per name, per thread, kept while the shape and dtype stay the same.
Results handed back to a caller must never live in a scratch buffer.

Results can come from :func:`recycled_empty` instead: a pool of blocks that
are handed out again only once no array made from them is alive, so
repeated renders in one process reuse memory whose pages are already in
place, and a caller keeping an output never sees it change.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

__all__ = ["scratch", "release_scratch", "recycled_empty", "set_recycle_limit", "SCRATCH_MIN_BYTES"]

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


# -- recycled outputs -------------------------------------------------------

_blocks: list[np.ndarray] = []      # 1-D uint8 blocks; free when only this list refers to them
_blocks_lock = threading.Lock()
_recycle_limit = 2 << 30            # bytes kept in the pool
_FREE_REFS = 3                      # the list slot, the loop variable and getrefcount's argument


def set_recycle_limit(nbytes: int) -> int:
    """Set how many bytes of dead stage outputs are kept for reuse; returns the old limit.

    Large stage outputs come from a pool of memory blocks that are handed out
    again once no array views them, so a second render in the same process
    reuses pages already in place (default limit 2 GiB; a 12 MP render keeps
    about 1 GB). ``0`` frees the free blocks and turns reuse off.
    """
    global _recycle_limit
    with _blocks_lock:
        old, _recycle_limit = _recycle_limit, max(0, int(nbytes))
        _trim(0)
    return old


def _trim(extra: int) -> None:
    """Drop free blocks, largest first, until the pool plus ``extra`` bytes fits the limit."""
    total = sum(b.nbytes for b in _blocks) + extra
    for i in sorted(range(len(_blocks)), key=lambda k: -_blocks[k].nbytes):
        if total <= _recycle_limit:
            break
        blk = _blocks[i]
        if sys.getrefcount(blk) == _FREE_REFS:
            total -= blk.nbytes
            _blocks[i] = None  # type: ignore[call-overload]
        del blk
    _blocks[:] = [b for b in _blocks if b is not None]


def recycled_empty(shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array that may reuse the memory of a dead earlier result.

    Notes
    -----
    Unlike :func:`scratch`, the array may be returned to callers: its block
    is reused only after every array viewing it has been freed (checked by
    reference count). Blocks are matched best-fit within 25 % of the
    request; the pool keeps at most :func:`set_recycle_limit` bytes.
    """
    dt = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = dt.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes < SCRATCH_MIN_BYTES or _recycle_limit == 0:
        return np.empty(shape, dtype=dt)
    with _blocks_lock:
        best = None
        for i in range(len(_blocks)):
            blk = _blocks[i]
            if nbytes <= blk.nbytes <= nbytes + nbytes // 4 and sys.getrefcount(blk) == _FREE_REFS:
                if best is None or blk.nbytes < _blocks[best].nbytes:
                    best = i
            del blk
        if best is not None:
            block = _blocks[best]
        else:
            _trim(nbytes)
            block = np.empty(nbytes, dtype=np.uint8)
            if sum(b.nbytes for b in _blocks) + nbytes <= _recycle_limit:
                _blocks.append(block)
    return block[:nbytes].view(dt).reshape(shape)
