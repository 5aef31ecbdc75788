"""Scratch buffers for full-frame temporaries: reused per name, shape and thread; small ones fresh."""

from __future__ import annotations

import threading

import numpy as np

from ispkit.stages._kernels.scratch import SCRATCH_MIN_BYTES, release_scratch, scratch


def test_reused_for_the_same_name_shape_and_dtype_and_replaced_otherwise():
    n = SCRATCH_MIN_BYTES // 4 + 10
    a = scratch("t.a", (n,))
    assert a.dtype == np.float32 and a.shape == (n,) and a.flags.c_contiguous
    assert scratch("t.a", (n,)) is a
    assert scratch("t.b", (n,)) is not a                    # another name
    b = scratch("t.a", (n + 1,))
    assert b is not a and b.shape == (n + 1,)               # new shape replaces it
    assert scratch("t.a", (n + 1,), np.uint16) is not b     # so does a new dtype
    release_scratch()
    assert scratch("t.b", (n,)) is not a


def test_small_buffers_are_always_fresh():
    assert scratch("t.small", (16, 16)) is not scratch("t.small", (16, 16))


def test_each_thread_has_its_own_buffers():
    n = SCRATCH_MIN_BYTES // 4 + 10
    mine = scratch("t.thread", (n,))
    seen = []
    th = threading.Thread(target=lambda: seen.append(scratch("t.thread", (n,))))
    th.start()
    th.join()
    assert seen[0] is not mine and seen[0].shape == mine.shape


# -- recycled_empty -----------------------------------------------------------

def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_recycled_empty_never_hands_out_memory_that_is_still_viewed():
    from ispkit.stages._kernels.scratch import recycled_empty

    shape = (1100, 1000)  # 4.4 MB: above SCRATCH_MIN_BYTES
    a = recycled_empty(shape)
    a[:] = 1.0
    b = recycled_empty(shape)
    assert not np.shares_memory(a, b)
    b[:] = 2.0
    row = a[5]                      # a view keeps a's block in use after a itself is gone
    del a
    c = recycled_empty(shape)
    c[:] = 3.0
    assert np.all(row == 1.0) and np.all(b == 2.0)
    del row
    d = recycled_empty(shape)       # now a's block is free again and is reused
    assert d.shape == shape and d.dtype == np.float32 and d.flags.c_contiguous and d.flags.writeable
    assert _addr(d) not in (_addr(b), _addr(c))


def test_recycled_empty_reuses_a_dead_block_and_respects_the_limit():
    from ispkit.stages._kernels import scratch as s

    shape = (1200, 1000)
    a = s.recycled_empty(shape)
    where = _addr(a)
    del a
    assert _addr(s.recycled_empty(shape)) == where          # same pages: no fresh faults
    old = s.set_recycle_limit(0)
    try:
        e = s.recycled_empty(shape)
        f = s.recycled_empty(shape)
        assert not np.shares_memory(e, f)
        small = s.recycled_empty((10, 10), np.uint8)        # tiny requests are plain np.empty
        assert small.shape == (10, 10) and small.dtype == np.uint8
    finally:
        s.set_recycle_limit(old)
