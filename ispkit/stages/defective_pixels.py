"""Defective (hot / dead / stuck) pixel detection and correction on the Bayer mosaic.

Detection compares each pixel with its same-colour neighbours in the 5×5
window (8 for red and blue, 12 for green): a pixel is defective when it lies
above the second-largest neighbour, or below the second-smallest, by more
than ``threshold`` robust standard deviations, the deviation being the
larger of the neighbours' scaled MAD, the noise of the frame's flattest
areas and 2 % of the local level; or, in strong texture where the MAD is
large, when it is also darker than ``ratio`` × (brighter than 1/``ratio`` ×)
those neighbours above black — the signature of dead and hot pixels.
Using the second extreme keeps detection working when two defects share a
window; the MAD makes the margin grow on texture and edges, so structure is
not mistaken for defects.

Correction replaces flagged pixels by the median of their unflagged
same-colour neighbours (``"median"``) or by the mean of the opposite
neighbour pair with the smallest difference (``"gradient"``, edge-directed).

References
----------
A. Tanbakuchi, A. van der Sijde, B. Dillen, A. Theuwissen, W. de Haan,
"Adaptive pixel defect correction", Proc. SPIE 5017, 2003.
cruxopen/openISP ``dpc`` (fixed-threshold test against the 8 same-colour
neighbours, gradient-directed replacement along the flattest of 4 directions);
here the fixed threshold becomes a robust, locally adaptive one.
P. J. Rousseeuw, C. Croux, "Alternatives to the median absolute deviation",
JASA 88(424), 1993 (MAD scaled by 1.4826 as a robust σ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame, cfa_color_indices, cfa_position_of, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels import defective_pixels as _k
from ._kernels._parallel import threads_for

__all__ = [
    "DEFECT_CORRECTION_METHODS",
    "same_color_offsets",
    "estimate_noise_sigma",
    "detect_defective_pixels",
    "correct_defective_pixels",
    "DefectivePixelCorrection",
]

#: Replacement methods.
DEFECT_CORRECTION_METHODS: frozenset[str] = frozenset({"median", "gradient"})

_REL_FLOOR = 0.02  # σ never below 2 % of the local level (shot noise of mid-tones)
_MIN_SIDE = 3


@lru_cache(maxsize=8)
def _tables(pattern: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour offsets, counts, opposite pairs and pair counts for the four 2×2 phases."""
    colors = cfa_color_indices(pattern)
    offsets = np.zeros((4, 16, 2), dtype=np.int64)
    counts = np.zeros(4, dtype=np.int64)
    pairs = np.zeros((4, 8, 2), dtype=np.int64)
    npairs = np.zeros(4, dtype=np.int64)
    directions = ((0, 2), (2, 0), (1, 1), (1, -1), (2, 2), (2, -2))
    for py in (0, 1):
        for px in (0, 1):
            p = 2 * py + px
            own = colors[py, px]
            n = 0
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    if (dy or dx) and colors[(py + dy) % 2, (px + dx) % 2] == own:
                        offsets[p, n] = (dy, dx)
                        n += 1
            counts[p] = n
            m = 0
            for dy, dx in directions:
                if colors[(py + dy) % 2, (px + dx) % 2] == own:
                    pairs[p, m] = (dy, dx)
                    m += 1
            npairs[p] = m
    for arr in (offsets, counts, pairs, npairs):
        arr.setflags(write=False)
    return offsets, counts, pairs, npairs


def same_color_offsets(cfa_pattern: str) -> dict[str, list[tuple[int, int]]]:
    """Return the same-colour neighbour offsets in the 5×5 window for each CFA position.

    Notes
    -----
    Keys ``"R"``, ``"Gr"``, ``"Gb"``, ``"B"``; offsets are (dy, dx). Green
    pixels count both greens as the same colour.
    """
    offsets, counts, _, _ = _tables(check_cfa_pattern(cfa_pattern, "same_color_offsets"))
    out = {}
    for name, (py, px) in cfa_position_of(cfa_pattern).items():
        p = 2 * py + px
        out[name] = [tuple(int(v) for v in o) for o in offsets[p, :counts[p]]]
    return out


def _mosaic_input(mosaic: Any, where: str) -> np.ndarray:
    arr = np.asarray(mosaic)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{where}: expected a numeric H×W Bayer mosaic, got {arr.dtype} {arr.shape}")
    if min(arr.shape) < _MIN_SIDE:
        raise InputError(f"{where}: the mosaic must be at least {_MIN_SIDE}×{_MIN_SIDE}, got {arr.shape}")
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{where}: the mosaic holds NaN or inf values; fix or mask them first")
    return _readonly(x)


def _readonly(arr: np.ndarray) -> np.ndarray:
    """A read-only view, so the kernels compile one signature for frames and plain arrays."""
    if arr.flags.writeable:
        arr = arr.view()
        arr.setflags(write=False)
    return arr


def estimate_noise_sigma(mosaic: Any, block: int = 16, percentile: float = 5.0) -> float:
    """Estimate the noise σ of the smooth parts of a mosaic.

    Notes
    -----
    H×W mosaic (any scale) → σ in the same units. Same-colour horizontal
    differences ``d = x[r, c] - x[r, c+2]`` (every other row) are cut into
    ``block``×``block`` tiles; each tile gives ``1.4826·median|d|/√2`` and
    the ``percentile``-th tile value is returned, i.e. the noise of the
    flattest areas, which texture does not inflate.

    References
    ----------
    Rousseeuw & Croux, JASA 1993 (MAD).
    """
    x = _mosaic_input(mosaic, "estimate_noise_sigma")
    d = np.abs(x[::2, 2:] - x[::2, :-2])
    bh = max(1, min(block, d.shape[0]))
    bw = max(1, min(block, d.shape[1]))
    nh, nw = d.shape[0] // bh, d.shape[1] // bw
    if nh == 0 or nw == 0:
        return 0.0
    tiles = d[:nh * bh, :nw * bw].reshape(nh, bh, nw, bw).transpose(0, 2, 1, 3).reshape(nh * nw, bh * bw)
    sig = 1.4826 * np.median(tiles, axis=1) / math.sqrt(2.0)
    return float(np.percentile(sig, percentile))


def _check_threshold(threshold: Any, where: str) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            math.isfinite(threshold) and threshold > 0):
        raise ParameterError(f"{where}: parameter 'threshold' must be a number > 0 (robust σ units), "
                             f"got {threshold!r}")


def _black_2x2(black_level: Any, where: str) -> np.ndarray:
    try:
        b = np.broadcast_to(np.asarray(black_level, dtype=np.float64).ravel(), (4,))
    except ValueError:
        raise ParameterError(f"{where}: parameter 'black_level' must be a number or 4 values (2×2 raster "
                             f"order), got {black_level!r}") from None
    if not np.all(np.isfinite(b)):
        raise ParameterError(f"{where}: parameter 'black_level' must be finite, got {black_level!r}")
    return np.ascontiguousarray(b.reshape(2, 2), dtype=np.float32)


def _check_ratio(ratio: Any, where: str) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (
            math.isfinite(ratio) and 0 <= ratio < 1):
        raise ParameterError(f"{where}: parameter 'ratio' must be a number in [0, 1) (0 disables the "
                             f"ratio test), got {ratio!r}")


def detect_defective_pixels(mosaic: Any, cfa_pattern: str, threshold: float = 8.0, *, ratio: float = 0.25,
                            black_level: Any = 0.0, noise_sigma: float | None = None) -> np.ndarray:
    """Find hot and dead pixels by comparison with same-colour neighbours.

    Parameters
    ----------
    mosaic : H×W Bayer mosaic (raw counts or normalised; the test is scale-free).
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG".
    threshold : margin ``k`` in robust σ; lower finds fainter defects and
        risks flagging fine detail.
    ratio : the ratio test: a pixel below ``ratio`` × its second-darkest
        neighbour (or above it / ``ratio`` × the second-brightest), signal
        above black, is defective even in strong texture. 0 disables it.
    black_level : scalar or (4,) 2×2 raster-order black level of ``mosaic``
        (0 after ``BlackLevel``); only the ratio test uses it.
    noise_sigma : noise σ of flat areas; estimated with
        :func:`estimate_noise_sigma` when None.

    Returns
    -------
    H×W bool mask, True at defective pixels.

    Notes
    -----
    RAW_MOSAIC H×W, any real dtype, at least 3×3. The rules are in
    :func:`ispkit.stages._kernels.defective_pixels.detect_defects`.

    References
    ----------
    Tanbakuchi et al., Proc. SPIE 5017, 2003.
    """
    _check_threshold(threshold, "detect_defective_pixels")
    _check_ratio(ratio, "detect_defective_pixels")
    pattern = check_cfa_pattern(cfa_pattern, "detect_defective_pixels")
    x = _mosaic_input(mosaic, "detect_defective_pixels")
    black = _black_2x2(black_level, "detect_defective_pixels")
    if noise_sigma is None:
        noise_sigma = estimate_noise_sigma(x)
    elif isinstance(noise_sigma, bool) or not isinstance(noise_sigma, (int, float)) or not (
            math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise ParameterError(f"detect_defective_pixels: parameter 'noise_sigma' must be a number >= 0, "
                             f"got {noise_sigma!r}")
    offsets, counts, _, _ = _tables(pattern)
    mask = np.empty(x.shape, dtype=np.bool_)
    with threads_for(x.size):
        _k.detect_defects(x, black, offsets, counts, float(threshold), float(ratio), float(noise_sigma),
                          _REL_FLOOR, mask)
    return mask


def correct_defective_pixels(mosaic: Any, cfa_pattern: str, mask: Any = None, *, method: str = "median",
                             threshold: float = 8.0, ratio: float = 0.25, black_level: Any = 0.0) -> np.ndarray:
    """Replace defective pixels by a value interpolated from same-colour neighbours.

    Parameters
    ----------
    mosaic : H×W Bayer mosaic.
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG".
    mask : H×W bool of pixels to replace (e.g. a factory defect map); None
        detects them with :func:`detect_defective_pixels` (``threshold``,
        ``ratio``, ``black_level``).
    method : ``"median"`` (median of unflagged same-colour neighbours) or
        ``"gradient"`` (mean of the opposite pair — horizontal, vertical or
        diagonal — with the smallest difference).

    Notes
    -----
    RAW_MOSAIC H×W → float32 H×W in the same units; unflagged pixels are
    copied unchanged.

    References
    ----------
    Tanbakuchi et al., Proc. SPIE 5017, 2003.
    """
    if not isinstance(method, str) or method not in DEFECT_CORRECTION_METHODS:
        raise unknown_name("defect correction method", method, DEFECT_CORRECTION_METHODS,
                           "correct_defective_pixels")
    pattern = check_cfa_pattern(cfa_pattern, "correct_defective_pixels")
    x = _mosaic_input(mosaic, "correct_defective_pixels")
    if mask is None:
        m = detect_defective_pixels(x, pattern, threshold, ratio=ratio, black_level=black_level)
    else:
        m = np.asarray(mask)
        if m.shape != x.shape:
            raise InputError(f"correct_defective_pixels: mask shape {m.shape} differs from mosaic shape {x.shape}")
        m = _readonly(np.ascontiguousarray(m, dtype=np.bool_))
    offsets, counts, pairs, npairs = _tables(pattern)
    m = _readonly(m)
    out = np.empty(x.shape, dtype=np.float32)
    with threads_for(x.size):
        if method == "median":
            _k.correct_median(x, m, offsets, counts, out)
        else:
            _k.correct_gradient(x, m, offsets, counts, pairs, npairs, out)
    return out


@register_stage
@dataclass(frozen=True)
class DefectivePixelCorrection(Stage):
    """Detect and correct hot / dead pixels on the Bayer mosaic.

    Parameters
    ----------
    threshold : detection margin in robust σ (default 8).
    method : ``"median"`` or ``"gradient"``.
    ratio : ratio test of :func:`detect_defective_pixels` (0 disables it).

    Notes
    -----
    RAW_MOSAIC H×W float32 → RAW_MOSAIC; works before or after
    ``BlackLevel``. Stores the number of corrected pixels in
    ``meta.extra["defective_pixel_count"]``.
    """

    type_name = "defective_pixel_correction"
    threshold: float = 8.0
    method: str = "median"
    ratio: float = 0.25

    def __post_init__(self) -> None:
        _check_threshold(self.threshold, f"stage {self.type_name!r}")
        _check_ratio(self.ratio, f"stage {self.type_name!r}")
        if not isinstance(self.method, str) or self.method not in DEFECT_CORRECTION_METHODS:
            raise unknown_name("defect correction method", self.method, DEFECT_CORRECTION_METHODS,
                               f"stage {self.type_name!r} parameter 'method'")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",))

    def process(self, frame: Frame) -> Frame:
        pattern = frame.meta.cfa_pattern
        mask = detect_defective_pixels(frame.data, pattern, self.threshold, ratio=self.ratio,
                                       black_level=frame.meta.black_level)
        out = correct_defective_pixels(frame.data, pattern, mask, method=self.method)
        extra = dict(frame.meta.extra)
        extra["defective_pixel_count"] = int(mask.sum())
        return frame.replace(data=out, extra=extra)
