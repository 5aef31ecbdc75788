"""CPU throughput and peak memory of every registered neural model.

Each model runs in its own subprocess (so ``ru_maxrss`` is that model's peak)
at a realistic tile size, in float32 with the wrapper's memory format
(channels_last) and, as the reference measured in the same process, with
plain contiguous NCHW tensors; bfloat16 autocast is reported as a ratio too.

    python benchmarks/bench_neural.py                 # every model, 256-pixel tiles (128 for SR)
    python benchmarks/bench_neural.py --side 128 unet.raw fc4.cwp
    python benchmarks/bench_neural.py --quick         # 64-pixel tiles, one repeat

Columns: input side, output megapixels per second (channels_last fp32),
ratio channels_last / contiguous, ratio bf16 / fp32 with the max abs
difference, bytes per pixel estimated by ispkit's tiler, the peak RSS of
the process and the part of it added by the forward passes.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _time_interleaved(runs: dict, repeats: int, min_seconds: float) -> dict[str, float]:
    """Best time of each ``name: (fn, x)``, measured round-robin so load changes hit all alike."""
    for fn, x in runs.values():
        fn(x)  # warm-up (oneDNN primitive creation)
    best = {k: math.inf for k in runs}
    spent, n = 0.0, 0
    while n < repeats or (spent < min_seconds and n < 20):
        for k, (fn, x) in runs.items():
            t0 = time.perf_counter()
            fn(x)
            dt = time.perf_counter() - t0
            best[k] = min(best[k], dt)
            spent += dt
        n += 1
    return best


def run_one(name: str, side: int, repeats: int, min_seconds: float) -> dict:
    import torch

    from ispkit.neural import create_model, get_model_entry
    from ispkit.neural.tiling import estimate_bytes_per_pixel

    torch.manual_seed(0)
    c = get_model_entry(name).weights.contract
    model = create_model(name)
    if side <= 0:
        side = 128 if c.scale > 1 and c.domain != "raw_packed" else 256
    side = max(side, int(getattr(model, "min_size", 1) or 1))
    side = int(math.ceil(side / c.size_multiple) * c.size_multiple)
    x = torch.rand(1, c.in_channels, side, side)
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    base_rss = _rss_mb()

    def bf16(t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return cl_model(t)

    with torch.inference_mode():
        ref = model(x).float()
        bf = bf16(x_cl).float()
        best = _time_interleaved({"contiguous": (model, x), "channels_last": (cl_model, x_cl),
                                  "bf16": (bf16, x_cl)}, repeats, min_seconds)
    t_contig, t_cl, t_bf16 = best["contiguous"], best["channels_last"], best["bf16"]
    bpp = estimate_bytes_per_pixel(model, c.in_channels, multiple=c.size_multiple,
                                   side=max(32, 2 * c.size_multiple, int(getattr(model, "min_size", 1) or 1)))
    out_pixels = side * side * (c.scale ** 2 if c.scale > 0 else 1.0)
    return {
        "model": name, "side": side, "threads": torch.get_num_threads(),
        "mp_per_s": out_pixels / t_cl / 1e6, "seconds": t_cl,
        "cl_vs_contiguous": t_contig / t_cl, "bf16_vs_fp32": t_cl / t_bf16,
        "bf16_max_abs_diff": float((bf - ref).abs().max()),
        "bytes_per_pixel": bpp, "peak_rss_mb": _rss_mb(), "forward_rss_mb": _rss_mb() - base_rss,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="model names (default: every registered model)")
    ap.add_argument("--side", type=int, default=0,
                    help="input tile side in model-input pixels (0: 128 for super-resolution, else 256)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--quick", action="store_true", help="64-pixel tiles, one repeat")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.side, args.repeats, args.min_seconds = 64, 1, 0.0
    if args.one:
        print(json.dumps(run_one(args.one, args.side, args.repeats, args.min_seconds)))
        return 0

    from ispkit.neural import list_models

    names = args.models or list_models()
    side = "auto (128 for super-resolution, 256 otherwise)" if args.side <= 0 else str(args.side)
    print(f"ispkit neural benchmark — CPU, {os.cpu_count()} cores, tile side {side} (model input pixels)")
    head = (f"{'model':<26}{'side':>5}{'params M':>9}{'out MP/s':>10}{'s/tile':>8}{'CL/NCHW':>9}"
            f"{'bf16/fp32':>10}{'bf16 err':>9}{'B/px':>8}{'peak MB':>9}{'fwd MB':>8}")
    print(head)
    print("-" * len(head))
    failed = 0
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--side", str(args.side), "--repeats", str(args.repeats),
               "--min-seconds", str(args.min_seconds)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            failed += 1
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{name:<26} failed: {err}")
            continue
        r = json.loads(lines[-1])
        print(f"{r['model']:<26}{r['side']:>5}{r['params_m']:>9.2f}{r['mp_per_s']:>10.3f}{r['seconds']:>8.2f}"
              f"{r['cl_vs_contiguous']:>8.2f}×{r['bf16_vs_fp32']:>9.2f}×{r['bf16_max_abs_diff']:>9.3f}"
              f"{r['bytes_per_pixel']:>8.0f}{r['peak_rss_mb']:>9.0f}{r['forward_rss_mb']:>8.0f}")
    print("out MP/s: output megapixels per second (input pixels for the global FC4 estimate); "
          "CL/NCHW: channels_last speed-up over contiguous tensors; bf16/fp32: autocast speed-up")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
