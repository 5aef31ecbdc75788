"""A classical render leaves OpenMP's — and so PyTorch's — thread count as the user set it.

With Numba's OpenMP threading layer, starting Numba's pool and
``numba.set_num_threads`` set OpenMP's process-wide thread count, which
PyTorch reads as its own: ``torch.set_num_threads(1)`` or ``OMP_NUM_THREADS=1``
in a training script silently became the core count after the first render.
Each case runs in a fresh interpreter, so the import order is the user's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import pytest

RENDER = """
import ispkit
from ispkit.io.synthetic import synthesize_capture
ispkit.load_preset("default")(synthesize_capture(size=(64, 96), seed=1).frame)  # small: one thread
ispkit.load_preset("default").run(synthesize_capture(size=(1024, 1536), seed=1).frame, fuse=False)
"""
TORCH_FIRST = "import torch\ntorch.set_num_threads(WANTED)\n" + RENDER + "print(torch.get_num_threads())\n"
TORCH_AFTER = RENDER + "import torch\nprint(torch.get_num_threads())\n"


def _run(script: str, wanted: int, env_threads: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = str(wanted + 1)  # Numba's own count differs from the one asked of OpenMP
    if env_threads is not None:
        env["OMP_NUM_THREADS"] = env_threads
    out = subprocess.run([sys.executable, "-c", script.replace("WANTED", str(wanted))], capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(numba.config.THREADING_LAYER not in ("default", "omp"),
                    reason="only Numba's OpenMP layer shares the count with PyTorch")
def test_render_keeps_the_openmp_thread_count():
    assert _run(TORCH_FIRST, 1, None) == 1       # torch.set_num_threads(1), then renders
    assert _run(TORCH_AFTER, 1, "1") == 1        # OMP_NUM_THREADS=1, renders, then torch
