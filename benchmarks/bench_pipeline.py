"""End-to-end speed of the default pipeline on a 12-MP RGGB DNG, as ratios to references.

Prints, each measured in this process (medians of ``--runs`` after a warm-up):

* read_raw + default pipeline (Malvar, 8-bit out) vs rawpy.imread + postprocess()
  (AHD, its default) and vs postprocess(demosaic_algorithm=LINEAR);
* the pipeline after decode vs the memory-bandwidth floor (bytes read + written
  divided by the copy bandwidth measured here);
* bilinear / Malvar kernels of the fused pass vs cv2.demosaicing on uint16;
* warm and cold (empty Numba cache) process start + render, in subprocesses;
* peak memory of the render vs the size of the float32 RGB output (tracemalloc).

Run: python benchmarks/bench_pipeline.py [--size 3000x4000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

from _common import make_dng, median_time

warnings.filterwarnings("ignore")


def copy_bandwidth(nbytes: int, runs: int) -> float:
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    t = median_time(lambda: np.copyto(b, a), runs)
    return 2 * a.nbytes / t  # read + write bytes per second


def process_time(path: Path, cache_dir: str | None) -> float:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code = ("import time; t=time.perf_counter(); import ispkit; "
            f"ispkit.render({str(path)!r}, bit_depth=8); print(time.perf_counter()-t)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return wall if out.returncode == 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="3000x4000")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    import cv2
    import rawpy

    import ispkit
    from ispkit.io import read_raw

    tmp = Path(tempfile.mkdtemp(prefix="ispkit-bench-"))
    path = make_dng(tmp / "bench.dng", h, w)
    print(f"# {h}x{w} RGGB DNG ({h * w / 1e6:.1f} MP), medians of {args.runs} runs after warm-up")

    def rawpy_ahd():
        with rawpy.imread(str(path)) as r:
            r.postprocess()

    def rawpy_linear():
        with rawpy.imread(str(path)) as r:
            r.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR)

    def rawpy_decode():
        with rawpy.imread(str(path)) as r:
            r.raw_image_visible.copy()

    pipe = ispkit.load_preset("default")

    def ours():
        ispkit.render(path, pipe, bit_depth=8)

    t_ahd = median_time(rawpy_ahd, args.runs)
    t_lin = median_time(rawpy_linear, args.runs)
    t_dec = median_time(rawpy_decode, args.runs)
    t_ours = median_time(ours, args.runs)
    t_read = median_time(lambda: read_raw(path), args.runs)
    print(f"rawpy decode only            {t_dec * 1e3:8.1f} ms")
    print(f"rawpy postprocess (AHD)      {t_ahd * 1e3:8.1f} ms")
    print(f"rawpy postprocess (LINEAR)   {t_lin * 1e3:8.1f} ms")
    print(f"ispkit read_raw              {t_read * 1e3:8.1f} ms")
    print(f"ispkit read_raw + default u8 {t_ours * 1e3:8.1f} ms")
    print(f"RATIO end-to-end vs AHD      {t_ahd / t_ours:6.2f}x faster (target >= 5)")
    print(f"RATIO end-to-end vs LINEAR   {t_lin / t_ours:6.2f}x faster (target >= 3)")

    frame = read_raw(path)
    moved = frame.data.nbytes + h * w * 3  # float32 mosaic in, uint8 RGB out
    bw = copy_bandwidth(256 * 2**20, args.runs)
    floor = moved / bw
    print(f"bandwidth floor {floor * 1e3:.1f} ms ({moved / 1e6:.0f} MB at {bw / 1e9:.1f} GB/s, np.copyto into "
          "an existing buffer)")
    buf = np.empty((h, w, 3), np.uint8)
    t_pipe = median_time(lambda: ispkit.render(frame, pipe, bit_depth=8, out=buf), args.runs)
    print(f"default pipeline after decode, into a reused buffer (render(out=)) {t_pipe * 1e3:6.1f} ms")
    print(f"RATIO pipeline / floor       {t_pipe / floor:6.2f}x (target <= 8, aim 4)")
    t_new = median_time(lambda: ispkit.render(frame, pipe, bit_depth=8), args.runs)
    print(f"same, a new output array each call {t_new * 1e3:6.1f} ms = {t_new / floor:5.2f}x floor "
          "(+ allocating and faulting in 36 MB; swings with the OS's free huge pages)")
    t_f32 = median_time(lambda: pipe(frame), args.runs)
    print(f"default pipeline, float32 out {t_f32 * 1e3:7.1f} ms")
    t_unfused = median_time(lambda: pipe.run(frame, fuse=False), max(2, args.runs // 2))
    print(f"same, stage by stage          {t_unfused * 1e3:7.1f} ms  (fusion gain {t_unfused / t_f32:.1f}x)")

    raw16 = np.ascontiguousarray(frame.data.astype(np.uint16))
    t_cv = median_time(lambda: cv2.demosaicing(raw16, cv2.COLOR_BayerBG2RGB), args.runs)
    from ispkit.stages import demosaic
    norm = np.ascontiguousarray(frame.data / 4095.0, dtype=np.float32)
    t_bil = median_time(lambda: demosaic(norm, "RGGB", "bilinear"), args.runs)
    print(f"RATIO bilinear vs cv2.demosaicing(uint16) {t_bil / t_cv:5.2f}x its time (target <= 2)")

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    pipe(frame)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    out_bytes = h * w * 3 * 4
    print(f"RATIO peak memory / float32 RGB output {peak / out_bytes:5.2f} (target <= 4)")

    warm = min(process_time(path, None) for _ in range(2))
    with tempfile.TemporaryDirectory() as cold_cache:
        cold = process_time(path, cold_cache)
    print(f"process start + {h * w / 1e6:.0f} MP render: warm {warm:.2f} s (target < 1.5), cold cache {cold:.2f} s")


if __name__ == "__main__":
    main()
