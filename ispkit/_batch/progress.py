"""Progress on stderr: a tqdm bar (throughput and ETA), plain log lines, or nothing."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress", "PROGRESS_MODES"]

PROGRESS_MODES = ("bar", "log", "none")


class Progress:
    """``mode="bar"``: a tqdm bar in images/s with ETA; ``"log"``: one line per file; ``"none"``: silent."""

    def __init__(self, total: int, mode: str, initial: int = 0) -> None:
        self.total, self.mode, self.count = total, mode, initial
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=initial, unit="img", file=sys.stderr, dynamic_ncols=True,
                             desc="ispkit batch", smoothing=0.1)

    def update(self, record: dict[str, Any]) -> None:
        """Count one finished file (``record`` is its manifest line)."""
        self.count += 1
        if self._bar is not None:
            self._bar.set_postfix_str(f"{record['status']}: {record['input_rel']}"[-40:], refresh=False)
            self._bar.update(1)
        elif self.mode == "log":
            what = f"-> {record['output']}" if record["status"] != "failed" else f"FAILED: {record['error']}"
            print(f"ispkit batch: [{self.count}/{self.total}] {record['status']} {record['input_rel']} {what} "
                  f"({float(record.get('seconds') or 0):.2f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
