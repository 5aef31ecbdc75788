"""When to let a ``parallel=True`` kernel use more than one thread.

Waking Numba's worker threads costs little on an idle machine but tens of
milliseconds on a busy one (measured here: 20–45 ms per parallel region at
load 7 on 2 cores, against 0.5 ms single-threaded for a 0.4 MP reduction).
Small inputs therefore run on the calling thread only.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numba

__all__ = ["PARALLEL_MIN_ITEMS", "threads_for", "readonly"]

#: Inputs with fewer elements than this run single-threaded.
PARALLEL_MIN_ITEMS = 1 << 20


@contextmanager
def threads_for(n_items: int) -> Iterator[None]:
    """Run the enclosed kernels on one thread when ``n_items`` is small."""
    if n_items >= PARALLEL_MIN_ITEMS:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def readonly(x):
    """Return a read-only view of ``x`` (no copy).

    Numba compiles a separate specialisation for read-only arrays (frame
    data is read-only); passing every kernel input as read-only keeps one
    compiled version per kernel and dtype.
    """
    v = x.view()
    v.setflags(write=False)
    return v
