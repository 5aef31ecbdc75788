"""Unsharp-mask sharpening.

References
----------
R. C. Gonzalez, R. E. Woods, *Digital Image Processing*, 4th ed., §3.6
"Unsharp masking and highboost filtering".
GIMP "Unsharp Mask" (amount, radius, threshold parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, ParameterError
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage

__all__ = ["unsharp_mask", "Sharpen"]

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(amount: Any, radius: Any, threshold: Any, where: str) -> None:
    if not _number(amount) or amount < 0:
        raise ParameterError(f"{where}: parameter 'amount' must be a number >= 0, got {amount!r}")
    if not _number(radius) or not 0 < radius <= 100:
        raise ParameterError(f"{where}: parameter 'radius' must be a number in (0, 100] (Gaussian sigma "
                             f"in pixels), got {radius!r}")
    if not _number(threshold) or threshold < 0:
        raise ParameterError(f"{where}: parameter 'threshold' must be a number >= 0, got {threshold!r}")


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def unsharp_mask(img: Any, amount: float = 0.5, radius: float = 1.0, threshold: float = 0.0, *,
                 luma_only: bool = False) -> np.ndarray:
    """Sharpen by adding back ``amount`` × (image − Gaussian blur).

    Parameters
    ----------
    img : H×W or H×W×C image.
    amount : strength of the added detail (0 = unchanged).
    radius : Gaussian sigma in pixels.
    threshold : detail whose magnitude is below this (in image units) is
        left out, so flat noisy areas are not sharpened.
    luma_only : for H×W×3, take the detail from BT.709 luminance and add it
        to all three channels (no colour fringes).

    Notes
    -----
    H×W[×C] float → float32 of the same shape, not clipped. Borders reflect
    (OpenCV ``BORDER_REFLECT_101``).

    References
    ----------
    Gonzalez & Woods, *Digital Image Processing*, §3.6.
    """
    _check(amount, radius, threshold, "unsharp_mask")
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"unsharp_mask: expected a numeric H×W or H×W×C image, got {arr.dtype} {arr.shape}")
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    if not np.isfinite(x).all():
        raise InputError("unsharp_mask: input holds NaN or inf values; fix or mask them first")
    if luma_only and x.ndim == 3 and x.shape[2] == 3:
        y = x @ _LUMA
        detail = y - _blur(y, float(radius))
        detail = detail[..., None]
    else:
        detail = x - _blur(x, float(radius)).reshape(x.shape)
    if threshold > 0:
        detail = np.where(np.abs(detail) < np.float32(threshold), np.float32(0.0), detail)
    return x + np.float32(amount) * detail


@register_stage
@dataclass(frozen=True)
class Sharpen(Stage):
    """Sharpen with an unsharp mask.

    Parameters
    ----------
    amount, radius, threshold, luma_only : see :func:`unsharp_mask`.

    Notes
    -----
    CAMERA_RGB / LINEAR_RGB / DISPLAY_RGB H×W×3 float32 → same domain.
    """

    type_name = "sharpen"
    amount: float = 0.5
    radius: float = 1.0
    threshold: float = 0.0
    luma_only: bool = False

    def __post_init__(self) -> None:
        _check(self.amount, self.radius, self.threshold, f"stage {self.type_name!r}")
        if not isinstance(self.luma_only, bool):
            raise ParameterError(f"stage {self.type_name!r}: parameter 'luma_only' must be a bool, "
                                 f"got {self.luma_only!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB, Domain.LINEAR_RGB, Domain.DISPLAY_RGB))

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=unsharp_mask(frame.data, self.amount, self.radius, self.threshold,
                                               luma_only=self.luma_only))
