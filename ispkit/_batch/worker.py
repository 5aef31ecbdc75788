"""The task a worker runs for one capture: read, render, write output and thumbnail atomically.

The same :func:`run_task` runs in the local process pool and on Dask workers.
It never raises: every error becomes an :class:`Outcome` with status
``"failed"``. Each worker process builds a pipeline once per config hash and
reuses it for all its files (:data:`_PIPELINES`).

Test hooks (for ispkit's own tests only; never set them otherwise):
``ISPKIT_BATCH_TEST_CRASH=<substring>`` makes the worker kill itself with
SIGKILL after reading an input whose file name contains the substring (a
decoder crash or the OOM killer, for real); ``ISPKIT_BATCH_TEST_SLEEP=<s>``
sleeps that many seconds before each file is written.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Task", "Outcome", "run_task", "build_count"]

CRASH_HOOK = "ISPKIT_BATCH_TEST_CRASH"
SLEEP_HOOK = "ISPKIT_BATCH_TEST_SLEEP"
THUMB_SIZE = 320

_PIPELINES: dict[str, Any] = {}
_BUILDS = [0]
_THREADS = [0]


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for one file (picklable, paths absolute)."""

    source: str
    output: str
    thumb: str
    preset: str
    overrides: dict[str, Any]
    config_hash: str
    bit_depth: int
    weights_dir: str | None = None
    threads: int = 0


@dataclass
class Outcome:
    """What happened to one file; ``status`` is ``"ok"`` or ``"failed"``."""

    status: str
    error: str | None = None
    errno: int | None = None
    seconds: float = 0.0
    split: dict[str, float] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    pid: int = 0
    host: str = ""
    builds: int = 0
    max_rss_mb: float = 0.0


def build_count() -> int:
    """How many pipelines this process has built (once per config hash)."""
    return _BUILDS[0]


def _pipeline(task: Task) -> Any:
    pipe = _PIPELINES.get(task.config_hash)
    if pipe is None:
        from ..render import build_pipeline
        pipe = build_pipeline(task.preset, overrides=task.overrides or None)
        _PIPELINES[task.config_hash] = pipe
        _BUILDS[0] += 1
    return pipe


def limit_threads(n: int) -> None:
    """Give this worker ``n`` threads in Numba, OpenCV and (when loaded) torch; 0 leaves them alone.

    Several workers on one machine each get ``cores // workers`` so they do not
    oversubscribe the cores (every kernel is multi-threaded by itself).
    """
    if n <= 0 or _THREADS[0] == n:
        return
    import sys

    import cv2
    import numba
    cv2.setNumThreads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    _THREADS[0] = n


def _oriented(codes: np.ndarray, orientation: int) -> np.ndarray:
    from ..io.image import apply_orientation
    return np.ascontiguousarray(apply_orientation(codes, orientation)) if orientation != 1 else codes


def render_codes(pipe: Any, frame: Any, bit_depth: int) -> tuple[np.ndarray, Any]:
    """Upright integer codes and the output metadata (the bytes :func:`ispkit.render` makes)."""
    if bit_depth == 8:
        res = pipe.render_codes(frame, 8)
        if res is not None:
            return _oriented(res[0], res[1].orientation), res[1]
    from ..errors import DomainError
    from ..frame import Domain
    from ..stages.quantize import quantize
    out = pipe.run(frame).output
    if out.domain not in (Domain.DISPLAY_RGB, Domain.LINEAR_RGB, Domain.CAMERA_RGB):
        raise DomainError(f"batch: the pipeline ended in {out.domain}, not an RGB image")
    codes = quantize(np.clip(out.data, 0.0, 1.0), bit_depth)
    return _oriented(np.ascontiguousarray(codes), out.meta.orientation), out.meta


def _thumbnail(codes: np.ndarray, path: Path) -> None:
    import cv2

    from ..io.image import write_image
    h, w = codes.shape[:2]
    scale = THUMB_SIZE / max(h, w)
    small = codes if scale >= 1 else cv2.resize(codes, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                interpolation=cv2.INTER_AREA)
    if small.dtype == np.uint16:
        small = (small >> 8).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(small, path, 8, orientation=1, quality=80)


def _hooks(source: str, when: str) -> None:
    """The test hooks described in the module docstring."""
    crash = os.environ.get(CRASH_HOOK)
    if when == "read" and crash and crash in Path(source).name:
        os.kill(os.getpid(), signal.SIGKILL)
    if when == "write" and os.environ.get(SLEEP_HOOK):
        time.sleep(float(os.environ[SLEEP_HOOK]))


def _render_file(task: Task, outcome: Outcome) -> None:
    from ..io.image import write_image
    from .jobs import read_source
    pipe = _pipeline(task)
    t0 = time.perf_counter()
    frame = read_source(task.source)
    _hooks(task.source, "read")
    t1 = time.perf_counter()
    codes, meta = render_codes(pipe, frame, task.bit_depth)
    del frame
    t2 = time.perf_counter()
    _hooks(task.source, "write")
    Path(task.output).parent.mkdir(parents=True, exist_ok=True)
    write_image(codes, task.output, task.bit_depth, orientation=1, quality=95)
    _thumbnail(codes, Path(task.thumb))
    outcome.split = {"read": t1 - t0, "render": t2 - t1, "write": time.perf_counter() - t2}
    outcome.models = [dict(m) for m in meta.extra.get("models", [])]
    outcome.size = (int(codes.shape[1]), int(codes.shape[0]))


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if exc.__class__.__module__.startswith("ispkit") else f"{type(exc).__name__}: {text}"


def run_task(task: Task) -> Outcome:
    """Render one file; never raises (errors come back as a failed :class:`Outcome`)."""
    if task.weights_dir:
        os.environ["ISPKIT_WEIGHTS"] = task.weights_dir
    limit_threads(task.threads)
    outcome = Outcome(status="ok", pid=os.getpid(), host=socket.gethostname())
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _render_file(task, outcome)
        except Exception as exc:  # noqa: BLE001  (each file fails alone)
            outcome.status, outcome.error = "failed", _error_text(exc)
            outcome.errno = getattr(exc, "errno", None)
    outcome.warnings = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    outcome.seconds = time.perf_counter() - t0
    outcome.builds = _BUILDS[0]
    outcome.max_rss_mb = _max_rss_mb()
    return outcome


def _max_rss_mb() -> float:
    """This process's peak resident memory in MiB (0 where the platform cannot tell)."""
    try:
        import resource
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
    except (ImportError, OSError):
        return 0.0
