"""Batch throughput at 12 MP: images/minute with 1 and 2 local workers, and where the time goes.

Run: ``python benchmarks/bench_batch.py [n_images] [preset ...]`` (default 8 images,
presets ``default`` and ``night-classical`` when it exists). Writes one
synthetic 4000×3000 DNG, copies it ``n_images`` times into a temporary folder
and renders the folder with ``ispkit.batch.render_folder``.

Reported per preset and worker count:
- wall images/minute (including starting the workers);
- steady images/minute, from the manifest timestamps after each worker's
  first file (worker start-up, imports and JIT compilation excluded);
- the 2-worker / 1-worker ratio of the steady rates, twice: with one
  thread per worker (how the executor scales; target ≥ 1.6, it cannot
  exceed the number of free cores), and as ``ispkit batch`` runs by default,
  each worker given cores / workers threads (a single worker then already
  keeps every core busy with its multi-threaded kernels, so the ratio shows
  what is left to gain);
- the read / render / write split summed over the files, and the per-stage
  split of one unfused ``pipe.run(frame)``.
"""

from __future__ import annotations

import datetime
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ispkit import build_pipeline, list_presets
from ispkit.batch import render_folder
from ispkit.io.capture import read_capture
from ispkit.io.dng import write_dng
from ispkit.io.synthetic import synthesize_capture


def _dng(path: Path) -> Path:
    frame = synthesize_capture(size=(3000, 4000), seed=0).frame
    m = frame.meta
    return Path(write_dng(path, frame.data.round().astype("uint16"), m.cfa_pattern, black_level=m.black_level,
                          white_level=m.white_level, color_matrix1=m.color_matrix1,
                          calibration_illuminant1=m.calibration_illuminant1 or 21,
                          as_shot_neutral=1.0 / m.wb_gains, make="ispkit", model="Synthetic"))


def _steady_rate(manifest: Path, run_id: str, workers: int) -> float:
    import json
    stamps = sorted(datetime.datetime.fromisoformat(r["timestamp"]).timestamp()
                    for r in map(json.loads, manifest.read_text().splitlines())
                    if r.get("run_id") == run_id and r["status"] == "ok")
    span = stamps[-1] - stamps[workers - 1]
    return (len(stamps) - workers) / span * 60 if span > 0 else float("nan")


def _peak_rss(manifest: Path, run_id: str) -> float:
    import json
    return max(r.get("worker_max_rss_mb") or 0 for r in map(json.loads, manifest.read_text().splitlines())
               if r.get("run_id") == run_id)


def _run(src: Path, out: Path, preset: str, workers: int,
         threads: int | None = None) -> tuple[float, float, dict[str, float], float]:
    import json
    t0 = time.perf_counter()
    s = render_folder(src, out, preset=preset, workers=workers, progress=False, overwrite=True,
                      threads_per_worker=threads)
    wall = time.perf_counter() - t0
    assert s.failed == 0, s.table()
    run_id = json.loads(s.manifest.read_text().splitlines()[-1])["run_id"]
    return s.rendered / wall * 60, _steady_rate(s.manifest, run_id, workers), s.split, _peak_rss(s.manifest, run_id)


def _stage_split(dng: Path, preset: str) -> str:
    pipe, frame = build_pipeline(preset), read_capture(dng)
    pipe.run(frame, fuse=False)  # warm-up (JIT)
    timings = pipe.run(frame, fuse=False).timings
    total = sum(timings.values())
    return ", ".join(f"{k} {v * 1e3:.0f} ms ({v / total:.0%})" for k, v in timings.items())


def main(n_images: int = 8, presets: list[str] | None = None) -> None:
    presets = presets or ["default"] + [p for p in ["night-classical"] if p in list_presets()]
    with tempfile.TemporaryDirectory(prefix="ispkit-bench-batch-") as tmp:
        root = Path(tmp)
        src = root / "in"
        src.mkdir()
        dng = _dng(root / "one.dng")
        for i in range(n_images):
            shutil.copy(dng, src / f"night_{i:03d}.dng")
        print(f"{n_images} × 4000×3000 (12 MP) synthetic DNG, 8-bit JPEG out, local executor")
        for preset in presets:
            for threads, label in ((1, "1 thread per worker"), (None, "cores / workers threads (the default)")):
                rates = {}
                for workers in (1, 2):
                    wall, steady, split, rss = _run(src, root / f"out-{preset}", preset, workers, threads)
                    rates[workers] = steady
                    total = sum(split.values())
                    parts = ", ".join(f"{k} {v / total:.0%}" for k, v in split.items())
                    print(f"  {preset:<16s} {workers} worker(s), {label}: {wall:5.1f} img/min wall, {steady:5.1f} "
                          f"img/min steady; worker time: {parts}; peak worker RSS {rss:.0f} MiB")
                target = " (target ≥ 1.6)" if threads == 1 else ""
                print(f"  {preset:<16s} 2 workers / 1 worker, {label} (steady): {rates[2] / rates[1]:.2f}×{target}")
            print(f"  {preset:<16s} one unfused pipe.run: {_stage_split(dng, preset)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, sys.argv[2:] or None)
