"""Write your own stage, register it, use it from Python and from a TOML config.

Run: python examples/custom_stage.py [OUTPUT_DIR]
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import ispkit
from ispkit.errors import ParameterError
from ispkit.frame import Domain, Frame
from ispkit.io.synthetic import synthesize_capture
from ispkit.pipeline import Stage, StageSpec, register_stage


def vignette(image: np.ndarray, strength: float) -> np.ndarray:
    """Darken corners by ``1 - strength * r²`` (r = 1 at the corners)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    return (image * (1.0 - strength * r2)[..., None]).astype(np.float32)


@register_stage
@dataclass(frozen=True)
class Vignette(Stage):
    """Add a radial vignette to linear RGB (a creative effect)."""

    type_name = "vignette"
    strength: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ParameterError(f"stage 'vignette': strength must be in [0, 1], got {self.strength!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB,))

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=vignette(frame.data, self.strength))


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = ispkit.load_preset("default").insert_after("color_matrix", Vignette(strength=0.5))
    toml_path = pipe.save(out_dir / "with_vignette.toml")       # configs are data
    again = ispkit.load_preset(str(toml_path))                     # … and load back identically
    assert again == pipe
    frame = synthesize_capture(seed=2).frame
    out = again(frame)
    corner, centre = out.data[:8, :8].mean(), out.data[248:264, 376:392].mean()
    ispkit.write_image(out, out_dir / "vignette.png")
    print(f"{again}\nsaved {toml_path}; corner/centre brightness {corner:.3f}/{centre:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output"))
