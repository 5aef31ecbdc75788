"""Bayer denoise speed, as ratios against references measured in the same process.

Run: ``python benchmarks/bench_denoise.py [--size 2048]``

Each line prints our time, the reference's time and ours / reference
(< 1 means we are faster). References:

* bilateral — OpenCV ``cv2.bilateralFilter`` on each of the four planes
  (same 7×7 window; OpenCV filters the planes independently, we share one
  range weight across them, so we do 4× the distance work per tap);
* nlm — the bare OpenCV ``fastNlMeansDenoising`` call on the packed planes
  (our overhead: VST, quantisation, unpacking);
* wavelet — the same starlet transform written with ``scipy.ndimage.convolve1d``;
* VST — the generalised Anscombe transform as a NumPy expression;
* noise estimation — Immerkær's one-pass estimator in NumPy (a much cruder
  estimate; the ratio shows what the PCA-based estimator costs).

It also reports the SIMD registers LLVM used in the hot kernels.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np


def best_of(fn, repeat: int = 3) -> float:
    fn()  # warm-up (JIT compile, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def simd_width(dispatcher, *args) -> str:
    """Widest vector register family in the assembly of a Numba kernel compiled for ``args``.

    Cached code cannot be inspected, so the kernel is recompiled here without the cache.
    """
    import numba

    opts = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**opts)(dispatcher.py_func)
    fresh(*args)
    asm = "\n".join(fresh.inspect_asm().values())
    for reg in ("zmm", "ymm", "xmm"):
        if re.search(rf"%{reg}\d+", asm):
            return reg
    return "scalar"


def report(name: str, ours: float, ref: float) -> None:
    print(f"{name:<34}{ours * 1e3:>10.1f} ms{ref * 1e3:>12.1f} ms{ours / ref:>10.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="mosaic side in pixels (default 2048)")
    ap.add_argument("--threads", type=int, default=0, help="Numba threads (default: all)")
    args = ap.parse_args()
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)

    import cv2
    from scipy import ndimage

    from ispkit.stages import bayer_denoise as bd
    from ispkit.stages._kernels import denoise as K

    rng = np.random.default_rng(0)
    n = args.size - args.size % 2
    yy, xx = np.mgrid[0:n, 0:n] / n
    clean = (0.1 + 0.6 * (0.5 + 0.5 * np.sin(12 * xx) * np.cos(9 * yy))).astype(np.float32)
    a, b = 0.005, 1e-4
    noisy = (a * rng.poisson(clean / a) + rng.normal(0, np.sqrt(b), clean.shape)).astype(np.float32)
    prof = ((a, b),)
    planes = bd.split_cfa_planes(noisy)
    scale, offset = np.full(4, a), np.full(4, b)
    stab = np.empty_like(planes)
    K.gat_forward(planes, scale, offset, stab)

    print(f"mosaic {n}×{n} ({n * n / 1e6:.1f} MP), 4 planes {n // 2}×{n // 2}, "
          f"{numba.get_num_threads()} Numba thread(s)")
    print(f"{'':<34}{'ours':>13}{'reference':>15}{'ratio':>11}")

    # bilateral
    ours = best_of(lambda: bd._bilateral(stab, 1.0))
    planes_list = [np.ascontiguousarray(p) for p in stab]
    ref = best_of(lambda: [cv2.bilateralFilter(p, 7, 2.0 * np.sqrt(8.0), 1.2) for p in planes_list])
    report("bilateral (planes) vs OpenCV ×4", ours, ref)

    if numba.get_num_threads() > 1:
        print("  (OpenCV uses its own thread pool; Numba kernels here use "
              f"{numba.get_num_threads()} threads)")

    # nlm overhead
    lo, span = float(stab.min()), float(stab.max() - stab.min())
    s = min(64.0, 65000.0 / span)
    q = np.ascontiguousarray(np.clip(np.rint((stab - lo) * s), 0, 65535).astype(np.uint16).transpose(1, 2, 0))
    ours = best_of(lambda: bd._nlm(stab, 1.0), repeat=1)
    ref = best_of(lambda: cv2.fastNlMeansDenoising(q, h=[1.8 * s], templateWindowSize=3, searchWindowSize=9,
                                                   normType=cv2.NORM_L1), repeat=1)
    report("nlm (planes) vs bare OpenCV call", ours, ref)

    # starlet
    def starlet_scipy(x, levels=4):
        c = x
        out = []
        for j in range(levels):
            k = np.zeros(4 * 2 ** j + 1, np.float32)
            k[:: 2 ** j] = np.array([1, 4, 6, 4, 1], np.float32) / 16
            nxt = ndimage.convolve1d(ndimage.convolve1d(c, k, axis=1, mode="mirror"), k, axis=0, mode="mirror")
            out.append(c - nxt)
            c = nxt
        return out

    def starlet_numba(x, levels=4):
        c = x
        tmp = np.empty_like(x)
        out = []
        for j in range(levels):
            nxt = np.empty_like(x)
            K.atrous_smooth(c, 2 ** j, tmp, nxt)
            out.append(c - nxt)
            c = nxt
        return out

    p0 = np.ascontiguousarray(stab[0])
    report("starlet 4 levels vs scipy", best_of(lambda: starlet_numba(p0)), best_of(lambda: starlet_scipy(p0)))
    report("wavelet method (planes)", best_of(lambda: bd._wavelet(stab, 1.0)),
           best_of(lambda: [starlet_scipy(np.ascontiguousarray(p)) for p in stab]))

    # VST
    out = np.empty_like(planes)

    def vst_numpy():
        return (2.0 / a) * np.sqrt(np.maximum(a * planes.astype(np.float64) + 0.375 * a * a + b, 0)).astype(np.float32)

    report("GAT forward vs NumPy", best_of(lambda: K.gat_forward(planes, scale, offset, out)), best_of(vst_numpy))

    # noise estimation
    ours = best_of(lambda: bd.estimate_noise_profile(noisy), repeat=1)
    ref = best_of(lambda: bd._immerkaer_sigma(planes), repeat=1)
    report("estimate_noise_profile vs Immerkær", ours, ref)

    # end to end
    for m in ("bilateral", "nlm", "wavelet"):
        t = best_of(lambda: bd.denoise_bayer(noisy, "RGGB", m, noise_profile=prof), repeat=1)
        print(f"denoise_bayer({m!r}) end to end: {t * 1e3:.0f} ms "
              f"({t / (n * n / 1e6) * 1e3:.0f} ms/MP)")

    small = np.ascontiguousarray(stab[:, :64, :64])
    sp = np.ones((7, 7), np.float32)
    widths = {
        "gat_forward": simd_width(K.gat_forward, np.ascontiguousarray(planes[:, :64, :64]), scale, offset,
                                  np.empty_like(small)),
        "atrous_smooth": simd_width(K.atrous_smooth, small[0], 2, np.empty_like(small[0]), np.empty_like(small[0])),
        "joint_bilateral": simd_width(K.joint_bilateral, small, small, sp, np.float32(0.1), np.empty_like(small)),
    }
    print("SIMD registers: " + ", ".join(f"{k}={v}" for k, v in widths.items()))


if __name__ == "__main__":
    main()
