"""The Dask executor: one ``distributed`` task per file, results handled as they arrive on the client.

A ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)``
is started when no scheduler address is given. Tasks are idempotent (atomic
writes of deterministic bytes), so distributed's retry of a task whose worker
died duplicates nothing; ``distributed.scheduler.allowed-failures`` is set to
:data:`ALLOWED_FAILURES` so a file that kills every worker it meets ends as
``KilledWorker`` — reported failed — instead of looping, and
``worker-saturation`` to 1.0 so that a worker holds only the file it renders
when it dies. (On a user's cluster the scheduler's own settings apply.)
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Sequence

from .jobs import BatchError
from .local import remove_temps
from .worker import Outcome, Task, run_task

__all__ = ["run_dask", "ALLOWED_FAILURES"]

ALLOWED_FAILURES = 1
#: How long to try reaching a ``--scheduler`` address.
CONNECT_TIMEOUT = "20s"


def _import_distributed() -> Any:
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise BatchError('batch: --executor dask needs Dask; install it with pip install "ispkit[dask]"') from exc
    return dask, distributed


def _client(distributed: Any, workers: int, scheduler: str | None) -> tuple[Any, Any]:
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except (OSError, TimeoutError) as exc:
            raise BatchError(f"batch: cannot reach the Dask scheduler at {scheduler!r} ({exc}); "
                             "check the address (e.g. tcp://host:8786)") from exc
    import logging
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    return distributed.Client(cluster), cluster


def _outcome(future: Any, distributed: Any) -> Outcome:
    try:
        return future.result()
    except distributed.KilledWorker:
        return Outcome(status="failed", error=f"worker died under this file on {ALLOWED_FAILURES + 1} Dask "
                       "workers (KilledWorker); the decoder crashed or the system ran out of memory")
    except Exception as exc:  # noqa: BLE001  (each file fails alone)
        return Outcome(status="failed", error=f"{type(exc).__name__}: {exc}")


def run_dask(tasks: Sequence[Task], workers: int, scheduler: str | None,
             on_result: Callable[[Task, Outcome], None]) -> None:
    """Render ``tasks`` on Dask, calling ``on_result`` on the client as each file finishes."""
    dask, distributed = _import_distributed()
    if not tasks:
        return
    # one task in processing per worker thread: a worker's death then makes only the file it was
    # rendering "suspicious" (with the default saturation of 1.1 a queued innocent file could be killed twice)
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "distributed.scheduler.worker-saturation": 1.0}):
        client, cluster = _client(distributed, workers, scheduler)
    futures: dict[Any, Task] = {}
    try:
        run = uuid.uuid4().hex[:8]
        futures = {client.submit(run_task, t, key=f"ispkit-batch-{run}-{i}", pure=False, retries=0): t
                   for i, t in enumerate(tasks)}
        for fut in distributed.as_completed(futures):
            task = futures.pop(fut)
            outcome = _outcome(fut, distributed)
            if outcome.status == "failed" and outcome.pid == 0:
                remove_temps(task)
            on_result(task, outcome)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        for task in futures.values():  # interrupted: whatever unfinished tasks left behind
            remove_temps(task)
