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
