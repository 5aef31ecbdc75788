"""Folder rendering: ``ispkit batch IN_DIR -o OUT_DIR`` and :func:`render_folder`.

Every capture under IN_DIR (camera RAWs LibRaw opens, NTIRE PNG + JSON
pairs, headerless mosaics with a sidecar) is rendered into OUT_DIR with the
same relative layout, by worker processes (``executor="local"``) or Dask
(``executor="dask"``). Each file fails alone — even when its worker dies —
outputs are written atomically, every file gets one line per run in
``OUT_DIR/ispkit-manifest.jsonl``, a rerun skips what is already done with the
same pipeline, and ``OUT_DIR/index.html`` shows every output and failure.

Examples
--------
>>> summary = render_folder("night", "night-out", preset="night-classical", workers=2)  # doctest: +SKIP
>>> summary.failed, summary.gallery                                                      # doctest: +SKIP
(0, PosixPath('night-out/index.html'))
"""

from __future__ import annotations

import errno as _errno
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._batch.gallery import write_gallery
from ._batch.jobs import FORMATS, MANIFEST_NAME, THUMBS_DIR, BatchError, Job, discover, \
    plan_outputs, safe_output
from ._batch.manifest import Manifest, config_hash, done_outputs, read_lines, utc_now
from ._batch.progress import PROGRESS_MODES, Progress
from ._batch.local import remove_temps
from ._batch.worker import Outcome, Task
from .errors import ParameterError

__all__ = ["render_folder", "BatchSummary", "Failure", "BatchError", "FORMATS", "MANIFEST_NAME"]

EXECUTORS = ("local", "dask")
_DISK_ERRNOS = {_errno.ENOSPC, _errno.EROFS, _errno.EDQUOT}


@dataclass(frozen=True)
class Failure:
    """One file that did not render: its path relative to IN_DIR and a one-line reason."""

    input: str
    reason: str


@dataclass
class BatchSummary:
    """What :func:`render_folder` did.

    Attributes
    ----------
    rendered, skipped, failed : file counts (skipped: already done with this pipeline and format).
    failures : the failed files with their reasons.
    outputs : every output of this run's inputs that exists (rendered or skipped).
    manifest, gallery : the manifest and ``index.html`` paths.
    seconds : wall-clock time of the batch.
    split : summed worker seconds per step (``read``, ``render``, ``write``) of the rendered files.
    config_hash : SHA-256 of the pipeline config.
    """

    rendered: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    manifest: Path | None = None
    gallery: Path | None = None
    seconds: float = 0.0
    split: dict[str, float] = field(default_factory=dict)
    config_hash: str = ""

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return self.failed == 0

    def table(self) -> str:
        """The failures as an aligned two-column text table (empty when none failed)."""
        if not self.failures:
            return ""
        width = min(60, max(len(f.input) for f in self.failures))
        lines = [f"{'failed file':<{width}}  reason"]
        lines += [f"{f.input:<{width}}  {_clip(f.reason, 160)}" for f in self.failures]
        return "\n".join(lines)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _check_args(fmt: str, executor: str, progress: bool | str, workers: int | None) -> str:
    if fmt not in FORMATS:
        raise ParameterError(f"batch: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if executor not in EXECUTORS:
        raise ParameterError(f"batch: unknown executor {executor!r}; use 'local' or 'dask'")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"batch: workers must be a positive integer, got {workers!r}")
    mode = {True: "bar", False: "none"}.get(progress, progress) if isinstance(progress, bool) else progress
    if mode not in PROGRESS_MODES:
        raise ParameterError(f"batch: progress must be True, False or one of {PROGRESS_MODES}, got {progress!r}")
    return mode


def _prepare_out(in_dir: Path, out_dir: Path) -> None:
    """Create OUT_DIR and prove it is writable, or raise :class:`BatchError` saying why."""
    if not in_dir.is_dir():
        raise BatchError(f"batch: input folder {str(in_dir)!r} does not exist or is not a folder")
    if out_dir.resolve() == in_dir.resolve():
        raise BatchError(f"batch: OUT_DIR {str(out_dir)!r} is IN_DIR; give a separate output folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ispkit-write-test.", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BatchError(f"batch: cannot write to OUT_DIR {str(out_dir)!r} ({exc.strerror or exc}); "
                         "choose a writable folder with free space") from exc


def _pipeline_identity(preset: str | os.PathLike, overrides: Mapping[str, Any] | None,
                       weights_dir: str | None) -> tuple[str, dict[str, Any], str]:
    """(preset label, config, config hash), built here once to fail fast on a bad preset or override."""
    from .render import build_pipeline
    saved = os.environ.get("ISPKIT_WEIGHTS")
    if weights_dir:
        os.environ["ISPKIT_WEIGHTS"] = weights_dir
    try:
        pipe = build_pipeline(preset, overrides=dict(overrides) if overrides else None)
    finally:
        if weights_dir:
            os.environ.pop("ISPKIT_WEIGHTS") if saved is None else os.environ.__setitem__("ISPKIT_WEIGHTS", saved)
    config = pipe.to_config()
    return str(preset), config, config_hash(config)


@dataclass
class _Run:
    """The parent-side state of one batch: manifest writer, records, progress, summary."""

    in_dir: Path
    out_dir: Path
    fmt: str
    preset: str
    overrides: dict[str, Any]
    config_hash: str
    manifest: Manifest
    progress: Progress | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: BatchSummary = field(default_factory=BatchSummary)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    by_output: dict[str, Job] = field(default_factory=dict)

    def base(self, job: Job, status: str) -> dict[str, Any]:
        from . import __version__
        return {"input": job.source, "input_rel": job.rel, "output": job.output,
                "thumb": f"{THUMBS_DIR}/{job.output}.jpg", "status": status, "error": None, "seconds": 0.0,
                "config_hash": self.config_hash, "preset": self.preset, "overrides": self.overrides,
                "config_file": f".ispkit/pipeline-{self.config_hash[:16]}.toml", "format": self.fmt,
                "models": [], "warnings": [], "ispkit_version": __version__, "timestamp": utc_now(),
                "run_id": self.run_id}

    def record(self, rec: dict[str, Any]) -> None:
        self.manifest.append(rec)
        self.records.append(rec)
        s = self.summary
        if rec["status"] == "failed":
            s.failed += 1
            s.failures.append(Failure(rec["input_rel"], str(rec["error"])))
        else:
            s.rendered += rec["status"] == "ok"
            s.skipped += rec["status"] == "skipped"
            s.outputs.append(self.out_dir / rec["output"])
        if self.progress is not None:
            self.progress.update(rec)

    def on_result(self, task: Task, outcome: Outcome) -> None:
        job = self.by_output[task.output]
        rec = self.base(job, outcome.status)
        rec.update(error=outcome.error, seconds=round(outcome.seconds, 4), models=outcome.models,
                   warnings=outcome.warnings, split={k: round(v, 4) for k, v in outcome.split.items()},
                   size=outcome.size, pid=outcome.pid or None, host=outcome.host or None,
                   worker_builds=outcome.builds or None, worker_max_rss_mb=outcome.max_rss_mb or None)
        for k, v in outcome.split.items():
            self.summary.split[k] = self.summary.split.get(k, 0.0) + v
        self.record(rec)
        if outcome.errno in _DISK_ERRNOS:
            raise BatchError(f"batch: writing {job.output!r} in OUT_DIR {str(self.out_dir)!r} failed: "
                             f"{outcome.error}; free space (or make it writable) and rerun to resume")


def _is_done(job: Job, prev: dict[str, dict[str, Any]], out_dir: Path, run: _Run) -> bool:
    rec = prev.get(job.output)
    return (rec is not None and rec.get("config_hash") == run.config_hash and rec.get("format") == run.fmt
            and rec.get("input_rel") == job.rel and (out_dir / job.output).is_file())


def _tasks(jobs: list[Job], run: _Run, weights_dir: str | None, overwrite: bool, threads: int) -> list[Task]:
    """Tasks for the jobs still to do; skipped and unsafe ones are recorded at once."""
    prev = {} if overwrite else done_outputs(read_lines(run.out_dir / MANIFEST_NAME))
    bit_depth = FORMATS[run.fmt][1]
    tasks = []
    for job in jobs:
        if _is_done(job, prev, run.out_dir, run):
            old = prev[job.output]
            run.record({**run.base(job, "skipped"), "models": old.get("models", []),
                        "render_seconds": old.get("seconds"), "rendered_at": old.get("timestamp")})
            continue
        try:
            out = safe_output(run.out_dir, job.output)
            thumb = safe_output(run.out_dir, f"{THUMBS_DIR}/{job.output}.jpg")
        except BatchError as exc:
            run.record({**run.base(job, "failed"), "error": str(exc)})
            continue
        run.by_output[str(out)] = job
        tasks.append(task := Task(source=job.source, output=str(out), thumb=str(thumb), preset=run.preset,
                          overrides=run.overrides, config_hash=run.config_hash, bit_depth=bit_depth,
                          weights_dir=weights_dir, threads=threads))
        remove_temps(task)  # left by a batch killed outright (SIGKILL of the whole process group)
    return tasks


def _save_config(out_dir: Path, config: dict[str, Any], digest: str) -> None:
    """Keep the exact pipeline TOML beside the manifest (``.ispkit/pipeline-<hash>.toml``) to reproduce renders."""
    from .io._files import atomic_write
    from .pipeline.config import dumps_toml
    path = out_dir / ".ispkit" / f"pipeline-{digest[:16]}.toml"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, lambda fh: fh.write(dumps_toml(config).encode("utf-8")))


def _execute(tasks: list[Task], run: _Run, executor: str, workers: int, scheduler: str | None) -> None:
    if executor == "dask":
        from ._batch.distributed_exec import run_dask
        run_dask(tasks, workers, scheduler, run.on_result)
    else:
        from ._batch.local import run_local
        run_local(tasks, workers, run.on_result)


def render_folder(in_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                  preset: str | os.PathLike = "default", fmt: str = "jpg", workers: int | None = None,
                  executor: str = "local", scheduler: str | None = None,
                  weights_dir: str | os.PathLike | None = None, overwrite: bool = False,
                  progress: bool | str = True, overrides: Mapping[str, Any] | None = None,
                  threads_per_worker: int | None = None) -> BatchSummary:
    """Render every capture under ``in_dir`` into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    in_dir, out_dir : input folder (searched recursively) and output folder (created).
    preset : a preset name or a pipeline TOML path.
    fmt : ``"jpg"``, ``"png"``, ``"png16"`` or ``"tif16"``.
    workers : worker processes (local) or LocalCluster workers (Dask); default the CPU count.
    executor : ``"local"`` (supervised process pool) or ``"dask"``.
    scheduler : a Dask scheduler address; default a LocalCluster.
    weights_dir : folder of model weights, exported as ``ISPKIT_WEIGHTS`` in every worker.
    overwrite : re-render outputs the manifest already records as done with this pipeline.
    progress : True (tqdm bar on stderr), ``"log"`` (a line per file), False.
    overrides : ``{"stage.param": value}`` parameter changes.
    threads_per_worker : Numba/OpenCV/torch threads in each local worker;
        default this machine's cores divided by ``workers`` (at least 1).
        Dask workers keep their own setting.

    Returns
    -------
    BatchSummary

    Raises
    ------
    BatchError
        IN_DIR missing, OUT_DIR unwritable or full, Dask missing or unreachable.
    """
    mode = _check_args(fmt, executor, progress, workers)
    if threads_per_worker is not None and (isinstance(threads_per_worker, bool) or not isinstance(threads_per_worker, int)
                                           or threads_per_worker < 1):
        raise ParameterError(f"batch: threads_per_worker must be a positive integer, got {threads_per_worker!r}")
    src, dst = Path(in_dir).expanduser(), Path(out_dir).expanduser()
    _prepare_out(src, dst)
    wdir = str(Path(weights_dir).expanduser().absolute()) if weights_dir else None
    label, config, digest = _pipeline_identity(preset, overrides, wdir)
    jobs = plan_outputs(src, discover(src, dst), FORMATS[fmt][0])
    _save_config(dst, config, digest)
    t0 = time.perf_counter()
    with Manifest(dst / MANIFEST_NAME) as manifest:
        run = _Run(src, dst, fmt, label, dict(overrides or {}), digest, manifest)
        run.summary.manifest, run.summary.config_hash = manifest.path, digest
        run.progress = Progress(len(jobs), mode)
        n = workers or os.cpu_count() or 1
        threads = 0 if scheduler else threads_per_worker or max(1, (os.cpu_count() or 1) // n)  # cores, shared
        try:
            _execute(_tasks(jobs, run, wdir, overwrite, threads), run, executor, n, scheduler)
        finally:
            run.progress.close()
            run.summary.seconds = time.perf_counter() - t0
            run.summary.gallery = write_gallery(dst, run.records, f"ispkit batch: {src.absolute()}")
    return run.summary
