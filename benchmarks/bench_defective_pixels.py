"""Speed of defective-pixel detection + correction against a vectorised NumPy version of the same rule.

    python benchmarks/bench_defective_pixels.py
"""

from __future__ import annotations

import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ispkit.stages.defective_pixels import correct_defective_pixels, detect_defective_pixels


def best_of(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def numpy_median_dpc(x: np.ndarray, k: float = 8.0) -> np.ndarray:
    """Same-colour 5×5 median replacement with a MAD test, RGGB, in NumPy (the reference speed)."""
    pad = np.pad(x, 2, mode="reflect")
    win = sliding_window_view(pad, (5, 5))
    out = x.copy()
    for py in (0, 1):
        for px in (0, 1):
            green = (py + px) % 2 == 1
            offs = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                    if (dy or dx) and ((dy + dx) % 2 == 0 if green else (dy % 2 == 0 and dx % 2 == 0))]
            n = np.stack([win[py::2, px::2, 2 + dy, 2 + dx] for dy, dx in offs], axis=-1)
            med = np.median(n, axis=-1)
            mad = 1.4826 * np.median(np.abs(n - med[..., None]), axis=-1)
            c = x[py::2, px::2]
            bad = np.abs(c - med) > k * np.maximum(mad, 1e-3)
            out[py::2, px::2] = np.where(bad, med, c)
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    h, w = 2000, 3000  # 6 MP
    x = (0.3 + 0.1 * rng.standard_normal((h, w))).astype(np.float32)
    ref = best_of(lambda: numpy_median_dpc(x), repeat=1)
    det = best_of(lambda: detect_defective_pixels(x, "RGGB"))
    mask = detect_defective_pixels(x, "RGGB")
    cor = best_of(lambda: correct_defective_pixels(x, "RGGB", mask))
    print(f"defective pixels on {h * w / 1e6:.0f} MP")
    print(f"  numpy sliding-window median+MAD (reference) {ref * 1e3:8.0f} ms   1.00x")
    print(f"  ispkit detect                               {det * 1e3:8.0f} ms   {ref / det:5.1f}x")
    print(f"  ispkit correct (median, given mask)         {cor * 1e3:8.0f} ms   {ref / cor:5.1f}x")
    print(f"  ispkit detect + correct                     {(det + cor) * 1e3:8.0f} ms   {ref / (det + cor):5.1f}x")


if __name__ == "__main__":
    main()
