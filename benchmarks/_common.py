"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/bench_X.py``)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["median_time", "make_dng"]


def median_time(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn`` in seconds over ``runs`` calls, after one warm-up call."""
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def make_dng(path: Path, h: int, w: int) -> Path:
    """An RGGB DNG of h×w tiled from the synthetic ColorChecker capture (real colour tags, no noise profile)."""
    from ispkit.io import write_dng
    from ispkit.io.synthetic import synthesize_capture

    cap = synthesize_capture(size=(512, 768), cfa_pattern="RGGB", seed=0)
    tile = cap.frame.data.round().astype(np.uint16)
    mosaic = np.tile(tile, (h // 512 + 1, w // 768 + 1))[:h, :w]
    m = cap.frame.meta
    return write_dng(path, np.ascontiguousarray(mosaic), "RGGB", black_level=m.black_level,
                     white_level=m.white_level, color_matrix1=m.color_matrix1, calibration_illuminant1=21,
                     as_shot_neutral=1.0 / m.wb_gains)
