"""One-call rendering: a RAW file (or frame) through a preset to a display image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import DomainError
from .frame import Domain, Frame
from .io.image import apply_orientation
from .io.raw import read_raw
from .pipeline import Pipeline, RunResult
from .presets import load_preset

__all__ = ["render", "render_frame", "build_pipeline"]


def build_pipeline(preset: str | Path | Pipeline = "default", *,
                   overrides: Mapping[str, Any] | None = None, **kw_overrides: Any) -> Pipeline:
    """Return ``preset`` (a name, a TOML path or a Pipeline) with parameter overrides applied.

    Overrides are ``{"stage.param": value}`` or keywords ``stage__param=value``.
    """
    pipe = preset if isinstance(preset, Pipeline) else load_preset(preset)
    if overrides or kw_overrides:
        pipe = pipe.set(overrides, **kw_overrides)
    return pipe


def render_frame(frame: Frame, preset: str | Path | Pipeline = "default", *,
                 overrides: Mapping[str, Any] | None = None, keep_intermediates: bool = False,
                 **kw_overrides: Any) -> RunResult:
    """Run ``frame`` through a preset and return the :class:`RunResult`."""
    pipe = build_pipeline(preset, overrides=overrides, **kw_overrides)
    return pipe.run(frame, keep_intermediates=keep_intermediates)


def render(source: str | Path | Frame, preset: str | Path | Pipeline = "default", *,
           overrides: Mapping[str, Any] | None = None, orient: bool = True,
           **kw_overrides: Any) -> np.ndarray:
    """Render a RAW file (or RAW frame) to a display-referred H×W×3 float32 array.

    Parameters
    ----------
    source : a RAW file path (anything :func:`ispkit.read_raw` reads) or a Frame.
    preset : a preset name (``ispkit presets``), a TOML path, or a Pipeline.
    overrides, **kw_overrides : parameter changes, e.g.
        ``render(p, demosaic__method="menon2007")`` or
        ``overrides={"demosaic.method": "menon2007"}``.
    orient : apply the EXIF orientation from the metadata.

    Notes
    -----
    Returns DISPLAY_RGB float32 in [0, 1] (when the preset ends in an OETF
    with clipping), shape H×W×3 after orientation.
    """
    frame = source if isinstance(source, Frame) else read_raw(source)
    out = render_frame(frame, preset, overrides=overrides, **kw_overrides).output
    if out.domain not in (Domain.DISPLAY_RGB, Domain.LINEAR_RGB, Domain.CAMERA_RGB):
        raise DomainError(
            f"render: the pipeline ended in {out.domain}, not an RGB image; end it with a demosaic, "
            "colour and gamma stage"
        )
    data = out.data
    if orient and out.meta.orientation != 1:
        data = apply_orientation(data, out.meta.orientation)
    return np.ascontiguousarray(data, dtype=np.float32)
