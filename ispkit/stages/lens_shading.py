"""Lens shading (vignetting and colour shading) correction on the Bayer mosaic.

Three sources of the gain:

* ``"gain_map"`` — the DNG ``GainMap`` opcode (ID 9) from ``OpcodeList2``:
  a grid of gains over the image, bilinearly interpolated at pixel centres,
  applied to the pixels the opcode's area and row/column pitch select (a
  Bayer file usually carries four, one per CFA phase with pitch 2).
  :func:`ispkit.io.read_gain_maps` parses them from a DNG with tifffile; a RAW reader
  puts them, as plain dicts, in ``meta.extra["gain_maps"]``.
* ``"radial"`` — ``gain = 1 + k1 r² + k2 r⁴ + k3 r⁶``, ``r`` the distance to
  the image centre over the half-diagonal (corner pixel centre at r = 1).
* ``"flat_field"`` — the gain that makes a (smoothed) flat-field capture
  uniform, per CFA phase.

All work on black-subtracted data (after ``BlackLevel``): a gain applied to
a black offset would be wrong.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.4.0.0 (2012), chapter 7
"Opcode List Processing", GainMap (opcode 9) and the area specification;
Adobe DNG SDK 1.4 ``dng_gain_map.cpp`` (interpolation at pixel centres,
clamping at the map edges).
D. B. Goldman, "Vignette and exposure calibration and compensation", IEEE
TPAMI 32(12), 2010 (even-polynomial radial vignetting model).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import cv2
import numpy as np

from ..errors import DomainError, InputError, ParameterError, unknown_name
from ..frame import Domain, Frame, GainMap, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage

__all__ = [
    "LENS_SHADING_METHODS",
    "GainMap",
    "gain_map_gains",
    "apply_gain_map",
    "apply_gain_maps",
    "radial_gain",
    "apply_radial_shading",
    "flat_field_gain",
    "apply_flat_field",
    "LensShading",
]

log = logging.getLogger(__name__)

#: Lens shading methods of :class:`LensShading`.
LENS_SHADING_METHODS: frozenset[str] = frozenset({"gain_map", "radial", "flat_field"})
_FLAT_FIELD_SIGMA = 2.0


def _as_gain_map(g: Any) -> GainMap:
    if isinstance(g, GainMap):
        return g
    if isinstance(g, Mapping):
        return GainMap.from_dict(g)
    raise ParameterError(f"expected a GainMap or a dict from GainMap.to_dict(), got {type(g).__name__}")


def _axis_interp(n: int, start: int, pitch: int, origin: float, spacing: float, points: int,
                 bound_start: int, bound_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel positions on one axis, their lower map index and fraction (DNG SDK clamping)."""
    pos = np.arange(start, n, pitch, dtype=np.int64)
    f = ((pos + 0.5 - bound_start) / bound_size - origin) / spacing
    idx = np.floor(f).astype(np.int64)
    frac = f - idx
    low = f <= 0
    high = idx >= points - 1
    idx = np.where(low, 0, np.where(high, points - 1, idx))
    frac = np.where(low | high, 0.0, frac)
    return pos, idx, frac


def gain_map_gains(gain_map: GainMap | Mapping[str, Any], shape: tuple[int, int],
                   image_bounds: tuple[int, int, int, int] | None = None) -> tuple[slice, slice, np.ndarray]:
    """Return the row and column slices a GainMap touches and the (n_rows, n_cols, map_planes) gains there.

    Notes
    -----
    Gains are interpolated bilinearly at pixel centres ``(row + 0.5 - top) / H``
    of ``image_bounds`` (default: the whole ``shape``), clamped to the edge
    values outside the map, exactly as the DNG SDK's
    ``dng_gain_map_interpolator``; float64 arithmetic.
    """
    gm = _as_gain_map(gain_map)
    h, w = int(shape[0]), int(shape[1])
    bt, bl, bb, br = image_bounds if image_bounds is not None else (0, 0, h, w)
    top, left, bottom, right = gm.top, gm.left, gm.bottom, gm.right
    if bottom <= top or right <= left:  # empty area = whole image
        top, left, bottom, right = bt, bl, bb, br
    r0 = max(top, 0)
    r0 += (-(r0 - top)) % gm.row_pitch
    c0 = max(left, 0)
    c0 += (-(c0 - left)) % gm.col_pitch
    r_end, c_end = min(bottom, h), min(right, w)
    rows, ri, rf = _axis_interp(r_end, r0, gm.row_pitch, gm.origin_v, gm.spacing_v, gm.points_v, bt, bb - bt)
    cols, ci, cf = _axis_interp(c_end, c0, gm.col_pitch, gm.origin_h, gm.spacing_h, gm.points_h, bl, br - bl)
    m = gm.gains.astype(np.float64)
    ri2 = np.minimum(ri + 1, gm.points_v - 1)
    ci2 = np.minimum(ci + 1, gm.points_h - 1)
    rf = rf[:, None, None]
    cf = cf[None, :, None]
    top_row = m[ri][:, ci] * (1 - cf) + m[ri][:, ci2] * cf
    bottom_row = m[ri2][:, ci] * (1 - cf) + m[ri2][:, ci2] * cf
    gains = top_row * (1 - rf) + bottom_row * rf
    return slice(r0, r_end, gm.row_pitch), slice(c0, c_end, gm.col_pitch), gains


def apply_gain_map(image: Any, gain_map: GainMap | Mapping[str, Any], *, clip: bool = False,
                   image_bounds: tuple[int, int, int, int] | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Multiply the pixels a DNG GainMap selects by its interpolated gains.

    Parameters
    ----------
    image : H×W mosaic (one plane) or H×W×P image, black-subtracted.
    gain_map : a :class:`GainMap` or its ``to_dict()`` form.
    clip : clip the changed pixels at 1.0 as the DNG SDK does (default keeps
        values above 1, the ispkit convention).
    image_bounds : (top, left, bottom, right) the map's relative
        coordinates refer to (default: the whole image).
    out : optional float32 output of the same shape (may be ``image``).

    Notes
    -----
    H×W[×P] → float32, same shape. No CFA argument is needed: a DNG encodes
    the Bayer phase in the opcode's Top/Left and pitch (2).

    References
    ----------
    Adobe DNG Specification 1.4.0.0, §7 GainMap; DNG SDK ``dng_gain_map.cpp``.
    """
    x = np.asarray(image)
    if x.ndim not in (2, 3) or not np.issubdtype(x.dtype, np.number):
        raise InputError(f"apply_gain_map: expected a numeric H×W or H×W×P image, got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("apply_gain_map: the image holds NaN or inf values; fix or mask them first")
    if out is None:
        out = np.array(x, dtype=np.float32, copy=True)
    else:
        if out.shape != x.shape or out.dtype != np.float32 or not out.flags.writeable:
            raise ParameterError(f"apply_gain_map: parameter 'out' must be a writeable float32 array of shape "
                                 f"{x.shape}")
        if out is not x:
            np.copyto(out, x)
    gm = _as_gain_map(gain_map)
    n_planes = 1 if x.ndim == 2 else x.shape[2]
    rows, cols, gains = gain_map_gains(gm, x.shape[:2], image_bounds)
    if gains.size == 0:
        return out
    for plane in range(gm.plane, min(gm.plane + gm.planes, n_planes)):
        g = gains[..., min(plane - gm.plane, gm.map_planes - 1)].astype(np.float32)
        view = out[rows, cols] if x.ndim == 2 else out[rows, cols, plane]
        view *= g
        if clip:
            np.minimum(view, np.float32(1.0), out=view)
    return out


def apply_gain_maps(image: Any, gain_maps: Iterable[GainMap | Mapping[str, Any]], *, clip: bool = False,
                    image_bounds: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Apply several GainMaps in order (e.g. the four Bayer phases of an OpcodeList2)."""
    out = np.array(image, dtype=np.float32, copy=True)
    for gm in gain_maps:
        apply_gain_map(out, gm, clip=clip, image_bounds=image_bounds, out=out)
    return out


# -- radial model ----------------------------------------------------------

def _check_radial(radial: Any, where: str) -> tuple[float, float, float]:
    try:
        k = tuple(float(v) for v in radial)
    except (TypeError, ValueError):
        k = ()
    if len(k) != 3 or not all(math.isfinite(v) for v in k) or any(isinstance(v, bool) for v in radial):
        raise ParameterError(f"{where}: parameter 'radial' must be three finite numbers (k1, k2, k3), "
                             f"got {radial!r}")
    r2 = np.linspace(0.0, 1.0, 1001)
    g = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    if g.min() <= 0:
        raise ParameterError(f"{where}: parameter 'radial' = {radial!r} gives a gain <= 0 inside the image "
                             f"(min {g.min():.3g}); the gain 1 + k1 r² + k2 r⁴ + k3 r⁶ must stay positive")
    return k  # type: ignore[return-value]


def radial_gain(shape: tuple[int, ...], radial: tuple[float, float, float]) -> np.ndarray:
    """Gain ``1 + k1 r² + k2 r⁴ + k3 r⁶`` over an H×W grid.

    Notes
    -----
    Returns H×W float32. ``r`` is the distance of a pixel centre to the image
    centre ``((H-1)/2, (W-1)/2)`` divided by the half-diagonal (the distance
    to a corner pixel centre), so corners have r = 1.

    References
    ----------
    Goldman, IEEE TPAMI 32(12), 2010.
    """
    k1, k2, k3 = _check_radial(radial, "radial_gain")
    h, w = int(shape[0]), int(shape[1])
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    half_diag2 = max(cy * cy + cx * cx, 1e-12)
    y2 = ((np.arange(h) - cy) ** 2 / half_diag2)[:, None]
    x2 = ((np.arange(w) - cx) ** 2 / half_diag2)[None, :]
    r2 = y2 + x2
    return (1 + r2 * (k1 + r2 * (k2 + r2 * k3))).astype(np.float32)


def apply_radial_shading(image: Any, radial: tuple[float, float, float]) -> np.ndarray:
    """Multiply an H×W or H×W×C image by :func:`radial_gain` (every channel alike)."""
    x = np.asarray(image)
    if x.ndim not in (2, 3) or not np.issubdtype(x.dtype, np.number):
        raise InputError(f"apply_radial_shading: expected a numeric H×W or H×W×C image, got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("apply_radial_shading: the image holds NaN or inf values; fix or mask them first")
    g = radial_gain(x.shape, radial)
    if x.ndim == 3:
        g = g[..., None]
    return np.multiply(x, g, dtype=np.float32)


# -- flat field ------------------------------------------------------------

def flat_field_gain(flat_field: Any, cfa_pattern: str, shape: tuple[int, int] | None = None, *,
                    sigma: float = _FLAT_FIELD_SIGMA) -> np.ndarray:
    """Gain that flattens a flat-field capture, per CFA phase.

    Parameters
    ----------
    flat_field : H×W black-subtracted mosaic of a uniformly lit target (any
        scale), same CFA layout as the images to correct.
    cfa_pattern : its CFA layout (the four 2×2 phases are normalised
        separately, so colour shading is removed too).
    shape : output (H, W) when the images differ in size from the flat
        field (each phase plane is resized bilinearly).
    sigma : Gaussian smoothing of each phase plane, in plane pixels, to keep
        the flat field's noise out of the gain.

    Notes
    -----
    Returns H×W float32 ``max(plane) / plane`` (≥ 1, 1 at the brightest
    point of each phase). Non-positive smoothed values raise InputError.
    """
    check_cfa_pattern(cfa_pattern, "flat_field_gain")
    ff = np.asarray(flat_field, dtype=np.float32)
    if ff.ndim != 2 or min(ff.shape) < 2:
        raise InputError(f"flat_field_gain: expected an H×W mosaic flat field, got shape {ff.shape}")
    if not np.isfinite(ff).all():
        raise InputError("flat_field_gain: the flat field holds NaN or inf values")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma >= 0):
        raise ParameterError(f"flat_field_gain: parameter 'sigma' must be a number >= 0, got {sigma!r}")
    h, w = (ff.shape if shape is None else (int(shape[0]), int(shape[1])))
    out = np.empty((h, w), dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            plane = np.ascontiguousarray(ff[dy::2, dx::2])
            if sigma > 0:
                plane = cv2.GaussianBlur(plane, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma),
                                         borderType=cv2.BORDER_REFLECT)
            target = out[dy::2, dx::2]
            if plane.shape != target.shape:
                plane = cv2.resize(plane, (target.shape[1], target.shape[0]), interpolation=cv2.INTER_LINEAR)
            if plane.min() <= 0:
                raise InputError("flat_field_gain: the smoothed flat field has values <= 0; subtract the black "
                                 "level correctly and use a well-exposed flat field")
            target[...] = plane.max() / plane
    return out


def apply_flat_field(mosaic: Any, flat_field: Any, cfa_pattern: str, *,
                     sigma: float = _FLAT_FIELD_SIGMA) -> np.ndarray:
    """Correct lens shading with a flat-field capture (see :func:`flat_field_gain`).

    Notes
    -----
    RAW_MOSAIC H×W black-subtracted → float32 H×W.
    """
    x = np.asarray(mosaic)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise InputError(f"apply_flat_field: expected a numeric H×W mosaic, got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("apply_flat_field: the mosaic holds NaN or inf values; fix or mask them first")
    g = flat_field_gain(flat_field, cfa_pattern, x.shape, sigma=sigma)
    return np.multiply(x, g, dtype=np.float32)


@lru_cache(maxsize=4)
def _load_flat_field(path: str, mtime_ns: int) -> np.ndarray:
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise OSError("OpenCV could not decode it")
    except (OSError, ValueError) as exc:
        raise InputError(f"flat field {path}: cannot read it ({exc}); use .npy, .tif or .png") from None
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise InputError(f"flat field {path}: expected a single-plane H×W mosaic, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    arr.setflags(write=False)
    return arr


# -- the stage -------------------------------------------------------------

@register_stage
@dataclass(frozen=True)
class LensShading(Stage):
    """Correct lens shading from DNG GainMaps, a radial model or a flat field.

    Parameters
    ----------
    method : ``"gain_map"`` (opcodes in ``meta.extra["gain_maps"]``;
        without any the stage logs an INFO line and passes the frame
        through), ``"radial"`` or ``"flat_field"``.
    radial : (k1, k2, k3) of ``gain = 1 + k1 r² + k2 r⁴ + k3 r⁶``.
    flat_field_path : .npy / .tif / .png flat-field mosaic (black-subtracted,
        same CFA layout) for ``"flat_field"``.
    clip : clip corrected values at 1 (the DNG SDK does for GainMaps).

    Notes
    -----
    RAW_MOSAIC H×W float32, black-subtracted (after ``BlackLevel``) →
    RAW_MOSAIC. Only OpcodeList2 GainMaps are applied here (OpcodeList3 ones
    belong after demosaicing and are reported and skipped).

    References
    ----------
    Adobe DNG Specification 1.4.0.0, §7; Goldman, TPAMI 2010.
    """

    type_name = "lens_shading"
    method: str = "gain_map"
    radial: tuple[float, float, float] = (0.0, 0.0, 0.0)
    flat_field_path: str | None = None
    clip: bool = False

    def __post_init__(self) -> None:
        where = f"stage {self.type_name!r}"
        if not isinstance(self.method, str) or self.method not in LENS_SHADING_METHODS:
            raise unknown_name("lens shading method", self.method, LENS_SHADING_METHODS,
                               f"{where} parameter 'method'")
        object.__setattr__(self, "radial", _check_radial(self.radial, where))
        if self.flat_field_path is not None and not isinstance(self.flat_field_path, (str, os.PathLike)):
            raise ParameterError(f"{where}: parameter 'flat_field_path' must be a path string, "
                                 f"got {self.flat_field_path!r}")
        if isinstance(self.flat_field_path, os.PathLike):
            object.__setattr__(self, "flat_field_path", os.fspath(self.flat_field_path))
        if self.method == "flat_field" and not self.flat_field_path:
            raise ParameterError(f"{where}: method 'flat_field' needs parameter 'flat_field_path' "
                                 f"(a .npy/.tif/.png flat-field mosaic), got {self.flat_field_path!r}")
        if not isinstance(self.clip, bool):
            raise ParameterError(f"{where}: parameter 'clip' must be a bool, got {self.clip!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",))

    def process(self, frame: Frame) -> Frame:
        meta = frame.meta
        if np.any(np.asarray(meta.black_level) != 0):
            raise DomainError(
                f"stage {self.type_name!r} needs black-subtracted data, but the frame still has black level "
                f"{np.asarray(meta.black_level).tolist()}; put 'black_level' before 'lens_shading'")
        source = meta.source or "in-memory frame"
        if self.method == "gain_map":
            maps = [_as_gain_map(g) for g in (meta.extra.get("gain_maps") or ())]
            usable = [g for g in maps if g.opcode_list == 2]
            skipped = len(maps) - len(usable)
            if skipped:
                log.info("%d GainMap opcode(s) of %s are not in OpcodeList2; lens shading ignores them",
                         skipped, source)
            if not usable:
                log.info("no GainMap opcode in %s; lens shading skipped", source)
                return frame
            out = apply_gain_maps(frame.data, usable, clip=self.clip)
        elif self.method == "radial":
            out = apply_radial_shading(frame.data, self.radial)
            if self.clip:
                np.minimum(out, np.float32(1.0), out=out)
        else:
            path = os.fspath(self.flat_field_path)  # type: ignore[arg-type]
            if not os.path.isfile(path):
                raise InputError(f"stage {self.type_name!r}: flat field {path} does not exist")
            flat = _load_flat_field(path, os.stat(path).st_mtime_ns)
            out = apply_flat_field(frame.data, flat, meta.cfa_pattern)
            if self.clip:
                np.minimum(out, np.float32(1.0), out=out)
        return frame.replace(data=out)
