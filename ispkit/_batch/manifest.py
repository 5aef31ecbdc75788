"""The batch manifest ``OUT_DIR/ispkit-manifest.jsonl``: one JSON line per input per run.

Only the parent process (the Dask client) writes it, one ``os.write`` of a
whole line to an ``O_APPEND`` descriptor followed by ``fsync``, so a line is
either complete or absent even when the batch is killed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .jobs import BatchError

__all__ = ["config_hash", "Manifest", "done_outputs"]


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a pipeline config (sorted keys, overrides applied)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line of a manifest (a torn or foreign line is skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def done_outputs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Output (relative path) → the last ``ok`` record that wrote it."""
    last: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("status") == "ok" and isinstance(rec.get("output"), str):
            last[rec["output"]] = rec
    return last


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the millisecond."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Manifest:
    """An append-only JSONL file written line by line (``with Manifest(path) as m: m.append(rec)``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchError(f"batch: cannot open the manifest {str(path)!r} for writing ({exc.strerror}); "
                             "check that OUT_DIR is writable") from exc

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, then flush it to disk."""
        data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        try:
            os.write(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            raise BatchError(f"batch: cannot append to the manifest {str(self.path)!r} ({exc.strerror}); "
                             "is the disk full?") from exc

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
