"""Image resizing through OpenCV's interpolators.

References
----------
OpenCV ``cv::resize`` (INTER_AREA pixel-area averaging, INTER_LANCZOS4 8×8
Lanczos, INTER_LINEAR, INTER_CUBIC with a = -0.75).
C. E. Duchon, "Lanczos filtering in one and two dimensions", J. Appl.
Meteorology 18, 1979.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage

__all__ = ["RESIZE_METHODS", "resize", "Resize"]

#: Method name → OpenCV interpolation flag.
RESIZE_METHODS: dict[str, int] = {
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
    "bilinear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST_EXACT,
}

_MAX_SIDE = 1 << 15


def _check(scale: Any, size: Any, method: Any, where: str) -> None:
    if not isinstance(method, str) or method not in RESIZE_METHODS:
        raise unknown_name("resize method", method, RESIZE_METHODS, f"{where} parameter 'method'")
    if scale is not None and size is not None and scale != 1:
        raise ParameterError(f"{where}: give 'scale' or 'size', not both, got scale={scale!r}, size={size!r}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not math.isfinite(scale) or not 0 < scale <= 64):
        raise ParameterError(f"{where}: parameter 'scale' must be a number in (0, 64], got {scale!r}")
    if size is not None:
        ok = (isinstance(size, (tuple, list)) and len(size) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_SIDE for v in size))
        if not ok:
            raise ParameterError(
                f"{where}: parameter 'size' must be (height, width), two ints in [1, {_MAX_SIDE}], got {size!r}")


def _target(shape: tuple[int, ...], scale: float | None, size: Any) -> tuple[int, int]:
    if size is not None:
        return int(size[0]), int(size[1])
    s = 1.0 if scale is None else float(scale)
    return max(1, int(round(shape[0] * s))), max(1, int(round(shape[1] * s)))


def resize(img: Any, scale: float | None = None, size: tuple[int, int] | None = None, *,
           method: str = "area") -> np.ndarray:
    """Resize an image by a factor or to a size.

    Parameters
    ----------
    img : H×W or H×W×C image.
    scale : factor applied to both sides (output side = round(side × scale));
        None with no ``size`` leaves the size unchanged.
    size : output (height, width) — note the order, ispkit's array order,
        not OpenCV's (width, height). Give ``scale`` or ``size``, not both.
    method : one of :data:`RESIZE_METHODS` (``"area"`` for downscaling,
        ``"lanczos"`` / ``"cubic"`` for upscaling).

    Notes
    -----
    H×W[×C] float → float32 of the new size. Lanczos and cubic can ring
    slightly outside the input range; nothing is clipped.

    References
    ----------
    OpenCV ``cv::resize``.
    """
    _check(scale, size, method, "resize")
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.number) or 0 in arr.shape[:2]:
        raise InputError(f"resize: expected a non-empty numeric H×W or H×W×C image, got {arr.dtype} {arr.shape}")
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 512:
        raise InputError(f"resize: too many channels ({arr.shape[2]}); OpenCV takes at most 512")
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError("resize: input holds NaN or inf values; fix or mask them first")
    h, w = _target(x.shape, scale, size)
    if (h, w) == x.shape[:2]:
        return x.copy()
    out = cv2.resize(x, (w, h), interpolation=RESIZE_METHODS[method])
    if x.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


@register_stage
@dataclass(frozen=True)
class Resize(Stage):
    """Resize RGB frames by a scale factor or to a fixed (height, width).

    Parameters
    ----------
    scale : factor for both sides (default 1.0: unchanged).
    size : (height, width) output size; when set it wins, and ``scale``
        must stay 1.0.
    method : one of :data:`RESIZE_METHODS`.

    Notes
    -----
    CAMERA_RGB / LINEAR_RGB / DISPLAY_RGB H×W×3 float32 → same domain.
    """

    type_name = "resize"
    scale: float = 1.0
    size: tuple[int, int] | None = None
    method: str = "area"

    def __post_init__(self) -> None:
        size = tuple(self.size) if isinstance(self.size, list) else self.size
        object.__setattr__(self, "size", size)
        if self.scale is None:
            raise ParameterError(f"stage {self.type_name!r}: parameter 'scale' must be a number in (0, 64], "
                                 "got None (use size=(height, width) for a fixed size)")
        _check(self.scale, self.size, self.method, f"stage {self.type_name!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB, Domain.LINEAR_RGB, Domain.DISPLAY_RGB))

    def process(self, frame: Frame) -> Frame:
        scale = None if self.size is not None else self.scale
        return frame.replace(data=resize(frame.data, scale, self.size, method=self.method))
