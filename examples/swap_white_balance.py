"""Swap one stage in one line: compare white-balance methods under tungsten light.

Builds the pipeline in Python, replaces the ``white_balance`` node, and reads
the estimated illuminant back from the metadata of the intermediate frames.

Run: python examples/swap_white_balance.py [OUTPUT_DIR]
"""

import sys
from pathlib import Path

import numpy as np

import ispkit
from ispkit.io.synthetic import synthesize_capture
from ispkit.metrics import angular_error, colorchecker_delta_e
from ispkit.stages import WhiteBalance


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    capture = synthesize_capture(illuminant="A", seed=1)
    truth = capture.illuminant_rgb
    base = ispkit.load_preset("default")
    for method in ("camera", "gray_world", "shades_of_gray", "gray_edge", "white_patch"):
        pipe = base.replace("white_balance", WhiteBalance(method=method))      # the one-line swap
        result = pipe.run(capture.frame, keep_intermediates=True)
        estimate = result.intermediates["white_balance"].meta.illuminant_rgb
        err = angular_error(estimate, truth)
        de = colorchecker_delta_e(result.output.data, capture)
        ispkit.write_image(result.output, out_dir / f"wb_{method}.png")
        print(f"{method:>15s}: angular error {err:5.2f}°, ColorChecker mean CIEDE2000 {de.mean():5.2f}, "
              f"{1000 * result.total_seconds:.0f} ms")
    assert np.isfinite(err)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output"))
