"""Chroma denoising: blur the colour-difference channels, keep luma.

Low-light colour noise lives mostly in the chroma channels, while the eye
takes detail from luma, so chroma can be smoothed strongly without visible
loss of sharpness.

References
----------
ITU-R Recommendation BT.709-6, item 3 (luma weights and colour-difference
signals Cb, Cr).
A. Buades, B. Coll, J.-M. Morel, "A review of image denoising algorithms",
Multiscale Model. Simul. 4(2), 2005, §5 (denoising in a luma/chroma space).
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
from ._kernels._parallel import readonly
from ._kernels.color import add_chroma_rows, chroma_peak_rows
from ._kernels.scratch import recycled_empty, scratch

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "chroma_denoise", "ChromaDenoise"]

_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
# BT.709 Y'CbCr (full range, no offsets): Y = Kr R + Kg G + Kb B,
# Cb = (B - Y) / (2 (1 - Kb)), Cr = (R - Y) / (2 (1 - Kr)).
_RGB2YCC = np.array([
    [_KR, _KG, _KB],
    [-_KR / (2 * (1 - _KB)), -_KG / (2 * (1 - _KB)), 0.5],
    [0.5, -_KG / (2 * (1 - _KR)), -_KB / (2 * (1 - _KR))],
])
_YCC2RGB = np.linalg.inv(_RGB2YCC)


def _transform(img: Any, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3×3 matrix to the last axis (OpenCV's multithreaded transform for large images)."""
    x = np.asarray(img, dtype=np.float32)
    if x.ndim == 3 and x.shape[2] == 3 and x.shape[0] * x.shape[1] >= 65536 and x.shape[0] < 2 ** 31:
        return cv2.transform(np.ascontiguousarray(x), matrix.astype(np.float32))
    return x @ matrix.T.astype(np.float32)


def rgb_to_ycbcr(img: Any) -> np.ndarray:
    """Convert RGB to full-range BT.709 YCbCr (Y in [0, 1], Cb/Cr in [-0.5, 0.5] for [0, 1] RGB).

    Notes
    -----
    (..., 3) float → float32 (..., 3); a linear map, so it works on linear or
    encoded RGB alike.

    References
    ----------
    ITU-R BT.709-6, item 3.
    """
    return _transform(img, _RGB2YCC)


def ycbcr_to_rgb(img: Any) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`."""
    return _transform(img, _YCC2RGB)


def _check(strength: Any, radius: Any, where: str) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (
            math.isfinite(strength) and 0 <= strength <= 1):
        raise ParameterError(f"{where}: parameter 'strength' must be a number in [0, 1], got {strength!r}")
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (
            math.isfinite(radius) and 0 < radius <= 100):
        raise ParameterError(f"{where}: parameter 'radius' must be a number in (0, 100] (Gaussian sigma in "
                             f"pixels), got {radius!r}")


def _blur(chroma: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of σ = ``radius``; for σ >= 3 on large images, computed at 1/k scale.

    A Gaussian of σ >= 3 passes almost nothing above 1/(2σ) cycles/px, so
    area-downsampling by ``k = floor(σ / 1.5)``, blurring with
    ``sqrt(σ² - k²/4) / k`` and bilinear upsampling gives the same low-pass
    (within ~1 % of the chroma range) at a fraction of the cost.
    """
    h, w = chroma.shape[:2]
    k = int(radius // 1.5)
    if radius < 3.0 or h * w < 262144 or min(h, w) < 16 * k:
        return cv2.GaussianBlur(chroma, (0, 0), sigmaX=radius, sigmaY=radius, borderType=cv2.BORDER_REFLECT_101)
    small = cv2.resize(chroma, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    sigma = math.sqrt(max(radius * radius - k * k / 4.0, 0.25)) / k
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    out = scratch("chroma_denoise.blurred", (h, w) + chroma.shape[2:], chroma.dtype)
    return cv2.resize(small, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)


def chroma_denoise(img: Any, strength: float = 1.0, radius: float = 2.0, *,
                   protect: float | None = None) -> np.ndarray:
    """Smooth chroma (Cb, Cr) with a Gaussian and blend by ``strength``; luma is untouched.

    Parameters
    ----------
    img : H×W×3 RGB (linear or display).
    strength : 0 = unchanged, 1 = fully blurred chroma.
    radius : Gaussian sigma in pixels.
    protect : pixels with a channel at or above this level (clipped light
        sources) keep their chroma, so a lamp's glow colour does not bleed
        into its neutral core (the core's near-zero chroma still takes part
        in its neighbours' blur, a slight desaturation right at the edge of
        a lamp). None: off.

    Notes
    -----
    H×W×3 float → float32, same range; Y is preserved to float32 rounding.

    References
    ----------
    ITU-R BT.709-6 (YCbCr); Buades, Coll & Morel 2005.
    """
    _check(strength, radius, "chroma_denoise")
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3 or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"chroma_denoise: expected a numeric H×W×3 image, got {arr.dtype} {arr.shape}")
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    # YCbCr is linear: only the chroma changes, so out = x + YCC2RGB[:, 1:] @ (blurred - chroma).
    chroma = scratch("chroma_denoise.chroma", x.shape[:2] + (2,))
    peak = scratch("chroma_denoise.peak", x.shape[:2])
    if chroma_peak_rows(readonly(x), _RGB2YCC[1:].astype(np.float32), chroma, peak):
        raise InputError("chroma_denoise: input holds NaN or inf values; fix or mask them first")
    blurred = _blur(chroma, float(radius))
    out = recycled_empty(x.shape, np.float32)
    add_chroma_rows(readonly(x), readonly(blurred), readonly(chroma), np.ascontiguousarray(_YCC2RGB[:, 1:], dtype=np.float32),
                    readonly(peak), np.float32(protect if protect is not None else np.inf), np.float32(strength), out)
    return out


@register_stage
@dataclass(frozen=True)
class ChromaDenoise(Stage):
    """Reduce colour noise by blurring chroma in YCbCr, keeping luma.

    Parameters
    ----------
    strength : blend of the blurred chroma, in [0, 1].
    radius : Gaussian sigma in pixels.
    protect_highlights : leave clipped pixels (a channel at 0.98 ×
        ``min(meta.white_point)`` or more in linear domains; at 0.98 or more
        in DISPLAY_RGB, whose white is 1) out of the blur and unchanged (see
        :func:`chroma_denoise`).

    Notes
    -----
    CAMERA_RGB / LINEAR_RGB / DISPLAY_RGB H×W×3 float32 → same domain.
    """

    type_name = "chroma_denoise"
    strength: float = 1.0
    radius: float = 2.0
    protect_highlights: bool = False

    def __post_init__(self) -> None:
        _check(self.strength, self.radius, f"stage {self.type_name!r}")
        if not isinstance(self.protect_highlights, (bool, np.bool_)):
            raise ParameterError(f"stage {self.type_name!r}: parameter 'protect_highlights' must be true or false, "
                                 f"got {self.protect_highlights!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB, Domain.LINEAR_RGB, Domain.DISPLAY_RGB))

    def process(self, frame: Frame) -> Frame:
        protect = None
        if self.protect_highlights:
            wp = frame.meta.white_point
            linear = frame.domain is not Domain.DISPLAY_RGB and wp is not None
            protect = 0.98 * (float(np.min(wp)) if linear else 1.0)
        return frame.replace(data=chroma_denoise(frame.data, self.strength, self.radius, protect=protect))
