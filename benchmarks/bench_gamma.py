"""Speed of the sRGB encoding on a 12 MP RGB frame: ispkit's kernels against NumPy and colour-science.

Prints times and ratios measured in this process (no absolute targets); also checks the vector width
of the float32 kernel (zmm = AVX-512, ymm = AVX2) when Numba can show its assembly.

    python benchmarks/bench_gamma.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ispkit.stages._kernels.gamma import piecewise_power_f32
from ispkit.stages.gamma import gamma_compress


def best_of(fn, repeat=5):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour

    rng = np.random.default_rng(0)
    x32 = rng.random((3000, 4000, 3), dtype=np.float32)
    out32 = np.empty_like(x32)
    x64 = x32.astype(np.float64)
    out64 = np.empty_like(x64)

    def numpy_srgb():
        return np.where(x32 <= 0.0031308, 12.92 * x32, 1.055 * np.power(x32, np.float32(1 / 2.4)) - 0.055)

    ref = best_of(numpy_srgb)
    rows = [
        ("numpy float32 (reference)", ref),
        ("ispkit float32 (polynomial pow)", best_of(lambda: gamma_compress(x32, out=out32))),
        ("ispkit float64 (libm pow)", best_of(lambda: gamma_compress(x64, out=out64))),
        ("colour-science float64", best_of(lambda: colour.models.eotf_inverse_sRGB(x64), repeat=2)),
        ("numpy x * 2 (memory-bound floor)", best_of(lambda: np.multiply(x32, 2, out=out32))),
    ]
    print(f"sRGB encode, {x32.size / 1e6:.0f} M values")
    for name, t in rows:
        print(f"  {name:34s} {t * 1e3:8.1f} ms   {ref / t:6.2f}x vs numpy")
    err = np.abs(gamma_compress(x32[:200]) - colour.models.eotf_inverse_sRGB(x64[:200])).max()
    print(f"  max |error| float32 vs colour-science: {err:.2e}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asm = piecewise_power_f32.inspect_asm(piecewise_power_f32.signatures[0])
    if not any("cached" in str(w.message) for w in caught):
        print(f"  vector registers in the float32 kernel: zmm {asm.count('zmm')}, ymm {asm.count('ymm')}")
    else:  # Numba cannot show assembly loaded from its cache
        print("  (kernel loaded from cache; run with NUMBA_CACHE_DIR=$(mktemp -d) to see its vector width)")


if __name__ == "__main__":
    main()
