"""When to let a ``parallel=True`` kernel use more than one thread.

Waking Numba's worker threads costs little on an idle machine but tens of
milliseconds on a busy one (measured here: 20–45 ms per parallel region at
load 7 on 2 cores, against 0.5 ms single-threaded for a 0.4 MP reduction).
Small inputs therefore run on the calling thread only.
"""

from __future__ import annotations

import ctypes
import functools
from contextlib import contextmanager
from typing import Callable, Iterator

import numba
from numba.np.ufunc import parallel as _numba_parallel

__all__ = ["PARALLEL_MIN_ITEMS", "threads_for", "readonly"]

#: Inputs with fewer elements than this run single-threaded.
PARALLEL_MIN_ITEMS = 1 << 20


def _openmp() -> tuple | None:
    """``omp_get_max_threads`` / ``omp_set_num_threads`` of the process's OpenMP runtime (GNU), or None."""
    try:
        gomp = ctypes.CDLL("libgomp.so.1")  # the one already loaded (PyTorch's, Numba's), else the system's
        return gomp.omp_get_max_threads, gomp.omp_set_num_threads
    except (OSError, AttributeError):
        return None


_OPENMP = _openmp()


def _keep_openmp_threads(launch: Callable[[], None]) -> Callable[[], None]:
    """Wrap Numba's pool start so that it puts back OpenMP's process-wide thread count.

    With Numba's OpenMP threading layer, starting the pool (and
    ``numba.set_num_threads``) sets that count to Numba's own; PyTorch and
    any other OpenMP code in the process read it as theirs, so a render
    would turn ``OMP_NUM_THREADS=1`` or ``torch.set_num_threads(1)`` into
    the core count. The pool still starts lazily, at the first parallel
    kernel: a process forked before that (the batch workers' forkserver)
    holds no OpenMP threads.
    """
    @functools.wraps(launch)
    def start() -> None:
        before = _OPENMP[0]() if _OPENMP is not None else None
        launch()
        if before is not None and numba.threading_layer() == "omp" and _OPENMP[0]() != before:
            _OPENMP[1](before)

    return start


if _OPENMP is not None and callable(getattr(_numba_parallel, "_launch_threads", None)) \
        and not hasattr(_numba_parallel._launch_threads, "__wrapped__"):
    _numba_parallel._launch_threads = _keep_openmp_threads(_numba_parallel._launch_threads)


@contextmanager
def threads_for(n_items: int) -> Iterator[None]:
    """Run the enclosed kernels on one thread when ``n_items`` is small.

    OpenMP's process-wide thread count found on entry is put back on exit
    (see :func:`_keep_openmp_threads`).
    """
    if n_items >= PARALLEL_MIN_ITEMS:
        yield
        return
    old = numba.get_num_threads()
    omp_old = _OPENMP[0]() if _OPENMP is not None else None
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)
        if omp_old is not None and numba.threading_layer() == "omp":
            _OPENMP[1](omp_old)


def readonly(x):
    """Return a read-only view of ``x`` (no copy).

    Numba compiles a separate specialisation for read-only arrays (frame
    data is read-only); passing every kernel input as read-only keeps one
    compiled version per kernel and dtype.
    """
    v = x.view()
    v.setflags(write=False)
    return v
