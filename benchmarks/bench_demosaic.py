"""Benchmark ispkit's demosaicing on a 12-MP RGGB mosaic against colour-demosaicing and OpenCV.

Prints medians of ``--runs`` timed runs (after one warm-up run each), the
speed ratios measured in this process, and the SIMD width LLVM chose for each
row kernel.

Targets: malvar2004 and menon2007 at least 30× faster than
colour-demosaicing (measured in its fastest setting, float32 default dtype);
bilinear within 2× of ``cv2.demosaicing`` on uint16. rcd2017 (no reference
implementation installed) is reported as time ratios to malvar2004 and
menon2007 measured in the same runs.

Usage::

    python benchmarks/bench_demosaic.py [--runs 5] [--size 4000x3000] [--no-colour]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
import warnings
from typing import Callable

import numpy as np


def timed_together(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, process-CPU) seconds of each function over ``runs`` rounds after a warm-up.

    The functions take turns within every round, so a change in the load of
    this shared machine hits them alike and the ratios stay fair.
    """
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for key, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def synthetic_mosaic(height: int, width: int) -> np.ndarray:
    """A smooth-plus-texture RGB scene in [0, 1], sampled into an RGGB float32 mosaic."""
    from ispkit.stages.demosaic import mosaic

    rng = np.random.default_rng(0)
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    rgb = np.empty((height, width, 3), np.float32)
    rgb[..., 0] = 0.5 + 0.3 * np.sin(40 * xx + 9 * yy)
    rgb[..., 1] = 0.4 + 0.3 * np.cos(55 * yy) * xx
    rgb[..., 2] = 0.3 + 0.2 * (xx > 0.5) + 0.2 * yy
    rgb += rng.normal(0.0, 0.01, rgb.shape).astype(np.float32)
    return mosaic(np.clip(rgb, 0.0, 1.0), "RGGB")


def vector_report() -> list[tuple[str, int, int, int]]:
    """Compile fresh (uncached) copies of the row kernels and count SIMD instructions.

    Cached Numba code cannot be inspected, so each row function is recompiled
    from its Python source with the argument types the kernels pass.
    """
    import numba

    from ispkit.stages._kernels import demosaic as k

    w = 256
    p = k.MENON_PAD
    f4, f8 = np.float32, np.float64
    row = np.zeros(w, f4)
    prow = np.zeros(w + 2 * p, f4)
    prow8 = np.zeros(w + 2 * p, f8)
    orow = np.zeros(3 * w, f4)
    isg = np.zeros(w, np.bool_)
    isgp = np.zeros(w + 2 * p, np.bool_)
    m = np.zeros(w + 2 * p, np.bool_)
    kc, kd = k.filter_constants(f4), k.filter_constants(f8)
    tw = w + 2 * k.RCD_PAD
    trow = np.zeros(tw, f4)
    isgt = np.zeros(tw, np.bool_)
    kr = k.rcd_constants(f4)
    calls = {
        "_bilinear_row": (row, row, row, orow, isg, True, 1, w - 1, kc),
        "_malvar_row": (row, row, row, row, row, orow, isg, True, 2, w - 2, kc),
        "_menon_green_row": (row, row, row, row, row, prow, prow8, prow8, prow8, isgp, w, kd),
        "_menon_dv_row": (row, prow8, row, prow8, prow8, w),
        "_menon_decide_row": (prow8,) * 10 + (prow, m, w, kd),
        "_menon_chroma_green_row": (prow,) * 8 + (isgp, w, kc),
        "_menon_chroma_chroma_row": (prow,) * 6 + (m, prow, prow, isgp, w, kc),
        "_menon_refine_green_row": (prow,) * 6 + (m, prow, isgp, w, kc),
        "_menon_refine_chroma_green_row": (prow,) * 11 + (isgp, w, kc),
        "_menon_refine_chroma_row": (prow,) * 7 + (m, orow, isgp, True, w, kc),
        "_rcd_hv_row": (trow,) * 9 + (tw, kr),
        "_rcd_vh_row": (trow,) * 5 + (tw, kr),
        "_rcd_lp_row": (trow,) * 4 + (tw, kr),
        "_rcd_grad_row": (trow,) * 7 + (tw, kr),
        "_rcd_vest_row": (trow,) * 8 + (tw, kr),
        "_rcd_green_row": (trow,) * 7 + (isgt, tw, kr),
        "_rcd_pq_diff_row": (trow,) * 9 + (tw, kr),
        "_rcd_pq_row": (trow,) * 7 + (tw, kr),
        "_rcd_chroma_row": (trow,) * 13 + (isgt, tw, kr),
        "_rcd_green_sites_row": (trow,) * 18 + (isgt, tw, kr),
    }
    report = []
    for name, args in calls.items():
        fresh = numba.njit(getattr(k, name).py_func, error_model="numpy" if name.startswith("_rcd") else "python")
        fresh(*args)
        asm = "\n".join(fresh.inspect_asm().values())
        ops = re.findall(r"^\s+(v\w+)\s+([^\n]*)$", asm, re.M)
        zmm = sum(1 for _, a in ops if "zmm" in a)
        ymm = sum(1 for _, a in ops if "ymm" in a)
        scalar = sum(1 for o, _ in ops if o.endswith(("ss", "sd")) and not o.startswith("vmov"))
        report.append((name, zmm, ymm, scalar))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per method (median reported; ≥ 5)")
    ap.add_argument("--size", default="4000x3000", help="mosaic size WxH (default 12 MP)")
    ap.add_argument("--no-colour", action="store_true", help="skip colour-demosaicing (slow)")
    args = ap.parse_args()
    runs = max(5, args.runs)
    width, height = (int(v) for v in args.size.lower().split("x"))

    import cv2
    import numba

    from ispkit.stages.demosaic import demosaic

    print(f"ispkit demosaic benchmark: {width}×{height} RGGB float32, median of {runs} runs after warm-up")
    print(f"numba {numba.__version__} threads={numba.get_num_threads()}, OpenCV {cv2.__version__} "
          f"threads={cv2.getNumThreads()}, cpus={os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    x = synthetic_mosaic(height, width)
    out = np.empty((height, width, 3), np.float32)
    out.fill(0.0)
    x16 = np.rint(x * 65535).astype(np.uint16)
    dst16 = np.empty((height, width, 3), np.uint16)
    code = cv2.COLOR_BayerRGGB2RGB if hasattr(cv2, "COLOR_BayerRGGB2RGB") else cv2.COLOR_BayerBG2RGB

    cd = None
    if not args.no_colour:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import colour_demosaicing as cd
            from colour.utilities import set_default_float_dtype

    ours: dict[str, tuple[float, float]] = {}
    ours_alloc: dict[str, tuple[float, float]] = {}
    theirs: dict[str, tuple[float, float]] = {}
    t = timed_together({
        "out": lambda: demosaic(x, "RGGB", "bilinear", out=out),
        "alloc": lambda: demosaic(x, "RGGB", "bilinear"),
        "cv": lambda: cv2.demosaicing(x16, code),
        "cv_dst": lambda: cv2.demosaicing(x16, code, dst=dst16),
    }, runs)
    ours["bilinear"], ours_alloc["bilinear"], cv_alloc, cv_dst = t["out"], t["alloc"], t["cv"], t["cv_dst"]
    for method, ref_name in (("malvar2004", "demosaicing_CFA_Bayer_Malvar2004"),
                             ("menon2007", "demosaicing_CFA_Bayer_Menon2007")):
        fns: dict[str, Callable[[], object]] = {
            "out": lambda m=method: demosaic(x, "RGGB", m, out=out),
            "alloc": lambda m=method: demosaic(x, "RGGB", m),
        }
        if cd is not None:
            fns["ref"] = lambda f=getattr(cd, ref_name): f(x, "RGGB")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cd is not None:
                set_default_float_dtype(np.float32)  # its fastest setting: a conservative reference
            try:
                t = timed_together(fns, runs)
            finally:
                if cd is not None:
                    set_default_float_dtype(np.float64)
        ours[method], ours_alloc[method] = t["out"], t["alloc"]
        if "ref" in t:
            theirs[method] = t["ref"]

    ms = 1e3
    print()
    print(f"{'method':12s} {'ispkit out=':>12s} {'ispkit alloc':>13s} {'(cpu)':>8s}  reference")
    for method in ("bilinear", "malvar2004", "menon2007"):
        w, c = ours[method]
        wa, _ = ours_alloc[method]
        print(f"{method:12s} {w * ms:9.1f} ms {wa * ms:10.1f} ms {c * ms:6.1f} ms", end="  ")
        if method == "bilinear":
            print(f"cv2.demosaicing uint16: {cv_alloc[0] * ms:.1f} ms (dst=: {cv_dst[0] * ms:.1f} ms)")
        elif method in theirs:
            print(f"colour-demosaicing (float32): {theirs[method][0] * ms:.0f} ms")
        else:
            print("colour-demosaicing: skipped")

    print("\nratios (same process; > 1 means ispkit is faster)")
    r_bil = cv_alloc[0] / ours_alloc["bilinear"][0]
    r_bil_out = cv_dst[0] / ours["bilinear"][0]
    print(f"  bilinear   vs cv2.demosaicing uint16: {r_bil:6.2f}× (both allocating), {r_bil_out:6.2f}× (both "
          f"into preallocated outputs)  target ≥ 0.5×  {'PASS' if min(r_bil, r_bil_out) >= 0.5 else 'FAIL'}")
    for method in ("malvar2004", "menon2007"):
        if method in theirs:
            r = theirs[method][0] / ours_alloc[method][0]
            r_out = theirs[method][0] / ours[method][0]
            print(f"  {method:10s} vs colour-demosaicing:     {r:6.1f}× (allocating), {r_out:6.1f}× (out=)  "
                  f"target ≥ 30×  {'PASS' if r >= 30 else 'FAIL'}")

    # RCD against the two methods it sits between, timed interleaved in this process
    t = timed_together({m: (lambda m=m: demosaic(x, "RGGB", m, out=out))
                        for m in ("malvar2004", "menon2007", "rcd2017")}, runs)
    rcd = t["rcd2017"][0]
    print(f"\nrcd2017 (Sanz Rodríguez 2017): {rcd * ms:.1f} ms (out=); malvar2004 {t['malvar2004'][0] * ms:.1f} ms, "
          f"menon2007 {t['menon2007'][0] * ms:.1f} ms in the same runs")
    print(f"  rcd2017 / malvar2004 = {rcd / t['malvar2004'][0]:.1f}×, rcd2017 / menon2007 = "
          f"{rcd / t['menon2007'][0]:.2f}× (time ratios; < 1 means RCD is faster)")

    print("\nSIMD in the row kernels (instructions on zmm / ymm registers; scalar arithmetic = loop tails)")
    for name, zmm, ymm, scalar in vector_report():
        width_name = "AVX-512 (zmm)" if zmm else ("AVX2 (ymm)" if ymm else "scalar")
        print(f"  {name:32s} {width_name:14s} zmm={zmm:4d} ymm={ymm:4d} scalar={scalar:4d}")


if __name__ == "__main__":
    main()
