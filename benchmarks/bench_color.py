"""Benchmark the colour kernels against NumPy references measured in the same process.

Run: ``python benchmarks/bench_color.py [megapixels]``. Prints ms per call and
the speed-up over the NumPy reference (no absolute thresholds).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ispkit.stages.colorspaces import apply_color_matrix, apply_color_matrix_reference
from ispkit.stages.highlights import recover_highlights


def _best(fn, repeat: int = 5) -> float:
    fn()  # warm-up (compile / page-in)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main(megapixels: float = 12.0) -> None:
    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 2.2, (h, w, 3)).astype(np.float32)
    img.setflags(write=False)
    m = np.array([[1.62, -0.43, -0.19], [-0.21, 1.38, -0.17], [0.03, -0.52, 1.49]])
    out = np.empty_like(img)
    wp = np.array([2.1, 1.0, 1.6])
    print(f"{h}×{w}×3 float32 ({h * w / 1e6:.1f} MP)")
    numba_ms = _best(lambda: apply_color_matrix(img, m, out=out))
    numpy_ms = _best(lambda: apply_color_matrix_reference(img, m))
    einsum_ms = _best(lambda: np.matmul(img, m.T.astype(np.float32)))
    print(f"apply_color_matrix        {numba_ms:8.1f} ms  ×{numpy_ms / numba_ms:5.1f} vs float64 reference "
          f"({numpy_ms:.1f} ms), ×{einsum_ms / numba_ms:4.1f} vs float32 matmul ({einsum_ms:.1f} ms)")
    clip_ms = _best(lambda: recover_highlights(img, wp, "clip", out=out))
    np_clip_ms = _best(lambda: np.minimum(img, np.float32(1.0), out=out))
    print(f"highlights clip           {clip_ms:8.1f} ms  ×{np_clip_ms / clip_ms:5.2f} vs np.minimum ({np_clip_ms:.1f} ms)")
    for method in ("blend", "reconstruct"):
        ms = _best(lambda: recover_highlights(img, wp, method, out=out), repeat=3)
        print(f"highlights {method:<14} {ms:8.1f} ms  ({ms / numba_ms:4.1f}× the matrix kernel)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 12.0)
