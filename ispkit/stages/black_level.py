"""Black level subtraction and normalisation to [0, 1] (the template stage).

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.6, §5 "Mapping Raw Values to
Linear Reference Values" (BlackLevel, WhiteLevel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ParameterError
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage

__all__ = ["subtract_black_level", "BlackLevel"]


def subtract_black_level(mosaic: np.ndarray, black_level: np.ndarray, white_level: float,
                         *, clip: bool = False) -> np.ndarray:
    """Map raw counts to ``(x - black) / (white - black)`` per 2×2 CFA position.

    Notes
    -----
    RAW_MOSAIC, H×W, any real dtype in → float32 out, nominally [0, 1].
    ``black_level`` is (4,) in raster order of the 2×2 block (or a scalar).
    """
    x = np.asarray(mosaic)
    if x.ndim != 2:
        raise InputError(f"subtract_black_level: expected an H×W mosaic, got shape {x.shape}")
    black = np.broadcast_to(np.asarray(black_level, dtype=np.float64).ravel(), (4,)).reshape(2, 2)
    scale = float(white_level) - black
    if np.any(scale <= 0):
        raise ParameterError(
            f"black_level: white level {white_level} must exceed every black level {black.ravel().tolist()}"
        )
    out = np.empty(x.shape, dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            sl = (slice(dy, None, 2), slice(dx, None, 2))
            np.subtract(x[sl], np.float32(black[dy, dx]), out=out[sl], dtype=np.float32)
            out[sl] *= np.float32(1.0 / scale[dy, dx])
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


@register_stage
@dataclass(frozen=True)
class BlackLevel(Stage):
    """Subtract the per-channel black level and scale by the white level.

    Parameters
    ----------
    clip : clip the result to [0, 1] (default keeps negatives from noise).
    """

    type_name = "black_level"
    clip: bool = False

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",),
                         provides=("white_point",), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        m = frame.meta
        out = subtract_black_level(frame.data, m.black_level, m.white_level, clip=self.clip)
        return frame.replace(data=out, white_point=np.ones(3), black_level=np.zeros(4), white_level=1.0)
