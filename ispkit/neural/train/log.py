"""Training logs: a CSV file (one row per validation) and TensorBoard when it is installed."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

__all__ = ["CSVLog", "open_tensorboard"]


class CSVLog:
    """Append rows of numbers to a CSV file, widening the header when new columns appear.

    Parameters
    ----------
    path : the CSV file; rows already there (from a resumed run) are kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        if not self.path.is_file():
            return [], []
        with open(self.path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return list(reader.fieldnames or []), list(reader)

    def append(self, row: dict[str, Any]) -> None:
        """Add ``row``; rewrite the file only when the header must grow."""
        header, rows = self._read()
        new = [k for k in row if k not in header]
        if not new and header:
            with open(self.path, "a", newline="", encoding="utf-8") as fh:
                csv.DictWriter(fh, fieldnames=header).writerow(row)
            return
        header += new
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows + [row])

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run repeats them)."""
        header, rows = self._read()
        keep = [r for r in rows if int(float(r.get("step") or 0)) <= step]
        if len(keep) != len(rows):
            with open(self.path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=header)
                writer.writeheader()
                writer.writerows(keep)


def open_tensorboard(log_dir: Path) -> Any:
    """Return a TensorBoard ``SummaryWriter`` for ``log_dir``, or ``None`` (with a warning) when not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("TrainConfig.tensorboard=True but the 'tensorboard' package is not installed; "
                      "logging to log.csv only (pip install tensorboard)", stacklevel=3)
        return None
    return SummaryWriter(log_dir=str(log_dir))
