"""ispkit — a camera image signal processor mixing classical and neural stages.

Quick start::

    import ispkit
    img = ispkit.render("photo.dng")                       # H×W×3 float32 display sRGB
    pipe = ispkit.load_preset("default")
    pipe = pipe.set({"demosaic.method": "menon2007"})      # pipelines are immutable
    out = pipe(ispkit.read_raw("photo.dng"))               # a Frame
    ispkit.write_image(out, "photo.png", bit_depth=16)

``import ispkit`` does not import torch; the neural stages register lazily
(``ispkit.neural``).
"""

from __future__ import annotations

from . import errors
from . import stages as _stages  # noqa: F401  (importing registers the classical stages)
from .errors import ISPError
from .frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame
from .io.image import read_image, write_image
from .io.raw import from_array, read_raw
from .pipeline import Pipeline, RunResult, Stage, StageSpec, register_provider, register_stage, stage_names
from .presets import list_presets, load_preset
from .render import build_pipeline, render, render_frame

register_provider("ispkit.neural.stages")
register_provider("ispkit.neural.reverse_isp")

__version__ = "0.1.0"

__all__ = [
    "errors", "ISPError", "Frame", "Domain", "CaptureMetadata", "CFA_PATTERNS",
    "read_raw", "from_array", "write_image", "read_image",
    "Pipeline", "Stage", "StageSpec", "RunResult", "register_stage",
    "load_preset", "list_presets", "render", "render_frame", "build_pipeline",
    "list_stages", "__version__",
]


def list_stages(*, include_neural: bool = True) -> list[str]:
    """Names of every registered stage type (classical, and neural when torch imports)."""
    return stage_names(include_providers=include_neural)
