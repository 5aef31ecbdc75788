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


def _render_codes_fused(pipe: Pipeline, frame: Frame, bit_depth: int) -> np.ndarray | None:
    """uint8 codes straight from a fully fused pipeline (None when it is not one)."""
    from .stages.fused import FusedRender

    nodes = pipe.compiled_nodes()
    if len(nodes) != 1 or not isinstance(nodes[0][1], FusedRender):
        return None
    res = nodes[0][1].render_codes(frame, bit_depth)
    if res is None:
        return None
    codes, meta = res
    if meta.orientation != 1:
        codes = apply_orientation(codes, meta.orientation)
    return np.ascontiguousarray(codes)


def render(source: str | Path | Frame, preset: str | Path | Pipeline = "default", *,
           overrides: Mapping[str, Any] | None = None, orient: bool = True, bit_depth: int | None = None,
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
    bit_depth : None for float32; 8 or 16 for uint8 / uint16 codes (8-bit
        renders of a fully fused pipeline are quantised inside the kernel).

    Notes
    -----
    Returns DISPLAY_RGB float32 in [0, 1] (when the preset ends in an OETF
    with clipping), shape H×W×3 after orientation — or integer codes.
    """
    if bit_depth not in (None, 8, 16):
        from .errors import ParameterError
        raise ParameterError(f"render: bit_depth must be None, 8 or 16, got {bit_depth!r}")
    frame = source if isinstance(source, Frame) else read_raw(source)
    pipe = build_pipeline(preset, overrides=overrides, **kw_overrides)
    if bit_depth == 8 and orient:
        codes = _render_codes_fused(pipe, frame, 8)
        if codes is not None:
            return codes
    out = pipe.run(frame).output
    if out.domain not in (Domain.DISPLAY_RGB, Domain.LINEAR_RGB, Domain.CAMERA_RGB):
        raise DomainError(
            f"render: the pipeline ended in {out.domain}, not an RGB image; end it with a demosaic, "
            "colour and gamma stage"
        )
    data = out.data
    if orient and out.meta.orientation != 1:
        data = apply_orientation(data, out.meta.orientation)
    if bit_depth is not None:
        from .stages.quantize import quantize
        return np.ascontiguousarray(quantize(np.clip(data, 0.0, 1.0), bit_depth))
    return np.ascontiguousarray(data, dtype=np.float32)
