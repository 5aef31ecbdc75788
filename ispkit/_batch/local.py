"""A small supervisor over ``multiprocessing`` that survives dying workers.

``concurrent.futures.ProcessPoolExecutor`` is broken for good once one worker
dies; here every slot is one worker process (forkserver or spawn, never a plain
fork) with its own pipe, the parent
waits on the pipes and the process sentinels together, and a worker that
dies (segfault, SIGKILL by the OOM killer) costs exactly the file it was
rendering: that file is reported ``worker died (signal N)``, its temporary
files are removed, and a fresh worker takes the slot.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable

from .worker import Outcome, Task, run_task

__all__ = ["run_local", "worker_main", "remove_temps"]

OnResult = Callable[[Task, Outcome], None]


def worker_main(conn: Connection, environ: dict[str, str]) -> None:
    """A worker: render the tasks sent on ``conn`` until it receives None.

    ``environ`` is the parent's environment when the worker was started (a
    forkserver child would otherwise inherit the server's, from its first use).
    """
    import os
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    signal.signal(signal.SIGTERM, _exit_cleanly)
    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(run_task(task))


def _exit_cleanly(signum: int, frame: Any) -> None:
    """SIGTERM → SystemExit, so the atomic writers remove their temporary files on the way out."""
    raise SystemExit(128 + signum)


def remove_temps(task: Task) -> None:
    """Delete the temporary files :func:`ispkit.io.write_image` may have left for ``task`` (``.NAME.*.part``)."""
    from pathlib import Path
    for target in (Path(task.output), Path(task.thumb)):
        if target.parent.is_dir():
            for tmp in target.parent.glob(f".{glob_escape(target.name)}.*.part"):
                tmp.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters made literal."""
    import glob
    return glob.escape(name)


def died(exitcode: int | None) -> Outcome:
    """The outcome of a file whose worker process ended under it."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else "?"
        why = f"worker died (signal {-exitcode}, {name})"
    else:
        why = f"worker died (exit code {exitcode})"
    return Outcome(status="failed", error=why + "; the decoder crashed or the system ran out of memory")


@dataclass
class _Slot:
    proc: Any
    conn: Connection
    task: Task | None = None


def _start(ctx: Any) -> _Slot:
    parent, child = ctx.Pipe(duplex=True)
    import os
    proc = ctx.Process(target=worker_main, args=(child, dict(os.environ)), daemon=True, name="ispkit-batch-worker")
    proc.start()
    child.close()
    return _Slot(proc, parent)


def _feed(slot: _Slot, pending: deque[Task]) -> None:
    """Send the next task to an idle slot; a worker found dead while idle gets it back into ``pending``."""
    if pending and slot.task is None:
        slot.task = pending.popleft()
        try:
            slot.conn.send(slot.task)
        except OSError:
            pending.appendleft(slot.task)
            slot.task = None


def _refill(slots: list[_Slot], pending: deque[Task], ctx: Any) -> None:
    """Give every idle slot a task, replacing workers that died while idle."""
    for i, slot in enumerate(slots):
        if slot.task is None and pending and not slot.proc.is_alive():
            slot.conn.close()
            slots[i] = slot = _start(ctx)
        _feed(slot, pending)


def _collect(slot: _Slot, ready: list[Any]) -> Outcome | None:
    """The slot's outcome when its worker answered or died, else None."""
    if slot.conn in ready or slot.conn.poll():
        try:
            return slot.conn.recv()
        except (EOFError, OSError):
            pass
    elif slot.proc.sentinel not in ready:
        return None
    slot.proc.join()
    return died(slot.proc.exitcode)


def _step(slots: list[_Slot], pending: deque[Task], on_result: OnResult, ctx: Any) -> None:
    _refill(slots, pending, ctx)
    busy = [s for s in slots if s.task is not None]
    if not busy:  # every send met a worker that had died idle: the next refill replaces them
        return
    ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy])
    for i, slot in enumerate(slots):
        if slot.task is None:
            continue
        outcome = _collect(slot, ready)
        if outcome is None:
            continue
        task, slot.task = slot.task, None
        if not slot.proc.is_alive():
            remove_temps(task)
            slot.conn.close()
            slots[i] = slot = _start(ctx)
        on_result(task, outcome)


def _stop(slots: list[_Slot], graceful: bool) -> None:
    for slot in slots:
        if graceful and slot.proc.is_alive():
            try:
                slot.conn.send(None)
            except OSError:
                pass
        elif slot.proc.is_alive():
            slot.proc.terminate()
    for slot in slots:
        slot.proc.join(timeout=10)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join()
        if slot.task is not None:
            remove_temps(slot.task)
        slot.conn.close()


def _context() -> Any:
    """A forkserver that has imported ispkit (cheap fresh workers) where available, else spawn.

    Never plain fork: the parent may hold threads (Numba, OpenCV, torch, tqdm).
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["ispkit._batch.local"])
        return ctx
    return mp.get_context("spawn")


def run_local(tasks: Iterable[Task], workers: int, on_result: OnResult) -> None:
    """Render ``tasks`` on ``workers`` spawned processes, calling ``on_result`` in this process per file.

    A KeyboardInterrupt stops the workers (SIGTERM, so they remove their
    temporary files), removes whatever the in-flight files left, and is re-raised.
    """
    pending = deque(tasks)
    if not pending:
        return
    ctx = _context()
    slots = [_start(ctx) for _ in range(max(1, min(workers, len(pending))))]
    graceful = False
    try:
        while pending or any(s.task is not None for s in slots):
            _step(slots, pending, on_result, ctx)
        graceful = True
    finally:
        _stop(slots, graceful)
