"""Quick start: synthesise a RAW capture, render it with the default preset, save it, score it.

Run: python examples/quickstart.py [OUTPUT_DIR]
"""

import sys
from pathlib import Path

import ispkit
from ispkit.io.synthetic import synthesize_capture
from ispkit.metrics import colorchecker_delta_e


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    capture = synthesize_capture(illuminant="D65", seed=0)   # a physically made Bayer frame + truth
    pipe = ispkit.load_preset("default")
    print(pipe)
    rendered = pipe(capture.frame)                            # Frame(DISPLAY_RGB)
    path = ispkit.write_image(rendered, out_dir / "quickstart.png", bit_depth=16)
    de = colorchecker_delta_e(rendered.data, capture)
    print(f"wrote {path}; ColorChecker mean CIEDE2000 = {de.mean():.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output"))
