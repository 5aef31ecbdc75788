"""Highlight recovery on white-balanced camera RGB: keep blown highlights neutral, not magenta.

After white balance the channels saturate at different levels
(``meta.white_point``, e.g. (2.1, 1.0, 1.5) when red and blue were gained):
where green has clipped but red and blue have not, a white object turns
magenta. The three methods:

* ``"clip"`` — clip every channel to the lowest saturation level,
  ``min(white_point)``, so a blown pixel is (m, m, m): dcraw ``-H 0``.
* ``"blend"`` — as the most saturated channel approaches its white point
  (from ``threshold``·white to white), blend the pixel toward the grey of its
  own mean (same R+G+B "lightness" as dcraw's ``blend_highlights``, ``-H 2``);
  fully reached, the pixel is exactly grey.
* ``"reconstruct"`` — rebuild each clipped channel from the unclipped ones
  with the local channel ratio. Demosaicing spreads a clipped channel into
  its neighbours just below the clip level (the magenta fringe of a blown
  highlight), so a channel within 2 px of where it clips and above 0.8 of
  its clip level is rebuilt too, and the colour reference skips that
  fringe: 4×4-pixel tiles holding clean, bright unclipped pixels (no
  clipped channel within 2 px, one channel at least half its clip level)
  give a ratio (R : G : B summed over those pixels), which is grown
  breadth-first through the tiles to rebuild, so a clipped region takes the
  colour of its own unclipped border. Each rebuilt channel becomes
  ``ratio_c / Σ_U ratio_u · Σ_U x_u`` over the kept channels U, never below
  its observed value; a pixel with all three channels to rebuild carries no
  colour information and becomes grey at its largest channel. This is a
  simplified version of dcraw's ``recover_highlights`` (``-H 3``…``-H 9``:
  channel ratios on a coarse grid, grown from unclipped cells into clipped
  ones), with the unclipped surround of the clipped region as the colour
  reference, as in darktable's "inpaint opposed".

References
----------
D. Coffin, *dcraw.c* v9.28 (2018): ``blend_highlights()`` and
``recover_highlights()``, options ``-H 0``, ``-H 2``, ``-H 3..9``.
H. Schwalm, darktable 4.4 (2023), ``src/iop/hlrecovery_v2.c``
("inpaint opposed" highlight reconstruction).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import cv2
import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from .colorspaces import _readonly_c
from ._kernels.color import above_rows
from ..frame import cfa_color_indices
from ._kernels.opposed import clipped_quads, count_clipped, opposed_chroma_sums, opposed_fill
from ._kernels.highlights import (
    blend_highlights_rows,
    clip_highlights_rows,
    clipped_channels,
    propagate_tile_ratios,
    reconstruct_highlights_rows,
    tile_statistics,
)
from ._kernels.scratch import recycled_empty, scratch

__all__ = ["HIGHLIGHT_CLIP_LEVELS_KEY", "HIGHLIGHT_METHODS", "recover_highlights", "neutralize_fringe", "highlight_white_point", "HighlightRecovery",
           "OPPOSED_CLIP", "reconstruct_opposed", "opposed_white_point", "HighlightReconstruction"]

HIGHLIGHT_METHODS: Mapping[str, float] = MappingProxyType({
    "clip": 1.0,
    "blend": 0.9,
    "reconstruct": 0.98,
})
"""Method name → its default ``threshold`` (fraction of the per-channel white point).

``clip`` clips at ``min(white_point)`` and ignores the threshold; ``blend``
starts blending at ``threshold``; ``reconstruct`` treats a channel at or above
``threshold × white_point`` as clipped.
"""

_BLOCK = 4            # tile size of the ratio statistics (px)
_MIN_COUNT = 4.0      # reference pixels a tile needs to give a ratio
_BRIGHT = 0.5         # a reference pixel reaches at least half its clip level in some channel
_SMEAR = 2            # demosaicing spreads a clipped channel this far (px; 5×5 kernels)
_SUSPECT = 0.8        # ... into neighbours at ≥ this fraction of the clip level: rebuilt too
_SMEAR_KERNEL = np.ones((2 * _SMEAR + 1, 2 * _SMEAR + 1), dtype=np.uint8)


def _check_white_point(white_point: object | None) -> np.ndarray:
    if white_point is None:
        return np.ones(3)
    wp = np.broadcast_to(np.asarray(white_point, dtype=np.float64), (3,)).copy()
    if not np.all(np.isfinite(wp)) or np.any(wp <= 0):
        raise ParameterError(f"recover_highlights: white_point must be 3 positive levels, got {wp.tolist()}")
    return wp


def _check_method(method: object, where: str) -> str:
    if not isinstance(method, str) or method not in HIGHLIGHT_METHODS:
        raise unknown_name("highlight method", method, HIGHLIGHT_METHODS, where)
    return method


def _check_threshold(threshold: object, where: str) -> float:
    try:
        t = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(threshold, bool) or not (0.0 < t <= 1.0):
        raise ParameterError(f"{where}: threshold must be a fraction of the white point in (0, 1], got {threshold!r}")
    return t


def highlight_white_point(white_point: object | None, method: str) -> np.ndarray:
    """Return the per-channel saturation level after :func:`recover_highlights`.

    ``clip``: min(white_point) per channel; ``blend``: the mean of the white
    point (a fully blown pixel becomes that grey); ``reconstruct``: the max.
    """
    wp = _check_white_point(white_point)
    level = {"clip": wp.min(), "blend": wp.mean(), "reconstruct": wp.max()}[
        _check_method(method, "highlight_white_point")]
    return np.full(3, level)


def neutralize_fringe(image: np.ndarray, clipped: np.ndarray, radius: int, *, level: float | None = None,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Blend pixels near clipped ones toward the grey of their own mean.

    Parameters
    ----------
    image : H×W×3 float32 RGB (after highlight recovery).
    clipped : H×W bool, where a channel of the input clipped.
    radius : pixels at distance ``d`` (1 … radius, in elliptical dilation
        steps) from the nearest clipped pixel get the weight
        ``1 - d / (radius + 1)`` toward grey (1 on the clipped pixels).
    level : the clip level (grey of a blown pixel); when given, a rim pixel
        is raised to at least ``weight² × level`` in every channel, so the
        undershoot of the demosaic kernels across a hard clipped edge (a
        dark, dotted outline around lamps and signs) becomes a short ramp.
    out : optional float32 buffer of the same shape (may be ``image``).

    Notes
    -----
    Demosaicing interpolates across the edge of a clipped region: there the
    white-balanced channels keep the ratio of the white-balance gains (R and
    B gained, G not), a magenta (or, with other gains, cyan) rim that no
    per-pixel method sees, because no channel of a rim pixel is clipped.
    Desaturating a ``radius``-pixel rim (the reach of the demosaic and
    denoise kernels) removes it and leaves the colour of a lamp's glow
    farther out.

    References
    ----------
    D. Coffin, *dcraw.c* ``blend_highlights`` (blend toward grey);
    darktable 4.4 ``hlrecovery_v2.c`` (the clipped region's rim as the
    working area).
    """
    x = np.ascontiguousarray(image, dtype=np.float32)
    out = np.empty_like(x) if out is None else out
    mask = np.ascontiguousarray(clipped, dtype=bool)
    if radius <= 0 or not mask.any():
        if out is not x:
            out[...] = x
        return out
    # weights ring by ring (elliptical dilations), computed only on the pixels they reach
    core = mask.view(np.uint8)
    reach = np.zeros(core.shape, dtype=np.uint8)
    for k in range(radius, 0, -1):
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        reach[cv2.dilate(core, disc).view(bool)] = radius + 1 - k
    reach[mask] = radius + 1
    if out is not x:
        out[...] = x
    idx = np.flatnonzero(reach)
    w = (reach.ravel()[idx].astype(np.float32) * np.float32(1.0 / (radius + 1)))[:, None]
    px = x.reshape(-1, 3)[idx]
    grey = px.mean(axis=1, keepdims=True)
    px += w * (grey - px)
    if level is not None:
        np.maximum(px, w * w * np.float32(level), out=px)
    out.reshape(-1, 3)[idx] = px
    return out


def recover_highlights(image: np.ndarray, white_point: object | None = None, method: str = "clip",
                       threshold: float | None = None, *, out: np.ndarray | None = None,
                       fringe: int = 0) -> np.ndarray:
    """Make clipped highlights of white-balanced camera RGB neutral.

    Parameters
    ----------
    image : H×W×3 white-balanced camera RGB.
    white_point : (3,) per-channel saturation level after the white-balance
        gains (``meta.white_point``); None means 1.0 per channel.
    method : a key of :data:`HIGHLIGHT_METHODS`.
    threshold : fraction of the white point (default per method, see
        :data:`HIGHLIGHT_METHODS`).
    out : optional C-contiguous H×W×3 float32 buffer; may be ``image`` itself.
    fringe : also desaturate a rim of this many pixels around every pixel
        with a channel at 0.98 of its white point or more
        (:func:`neutralize_fringe`); 0 = off.

    Notes
    -----
    CAMERA_RGB, H×W×3 float32 in and out, scene-linear. Pixels whose channels
    all stay below ``threshold × white_point`` (below ``min(white_point)``
    for ``"clip"``; for ``"reconstruct"`` below 0.8 of that, or farther than
    2 px from a clipped pixel) are returned unchanged. Non-finite input raises
    :class:`~ispkit.errors.InputError`.

    References
    ----------
    dcraw ``-H 0`` / ``-H 2`` / ``recover_highlights``; darktable "inpaint opposed".
    """
    method = _check_method(method, "recover_highlights")
    t = HIGHLIGHT_METHODS[method] if threshold is None else _check_threshold(threshold, "recover_highlights")
    wp = _check_white_point(white_point)
    x = np.asarray(image)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"recover_highlights: expected an H×W×3 image, got shape {x.shape}")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if out is None:
        out = recycled_empty(x.shape, np.float32)
    elif (not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != np.float32
          or not out.flags.writeable or not out.flags.c_contiguous):
        raise ParameterError(
            f"recover_highlights: out must be a writable C-contiguous float32 array of shape {x.shape}")
    if x.size == 0:
        return out
    x = _readonly_c(x)
    if isinstance(fringe, bool) or not isinstance(fringe, (int, np.integer)) or not 0 <= fringe <= 64:
        raise ParameterError(f"recover_highlights: fringe must be an integer number of pixels in [0, 64], got {fringe!r}")
    sensor_clipped = None
    if fringe:
        sensor_clipped = scratch("highlights.sensor_clipped", x.shape[:2], np.uint8)
        above_rows(x, (0.98 * wp).astype(np.float32), sensor_clipped)  # x is already read-only
        sensor_clipped = sensor_clipped.view(bool)
    if method == "clip":
        bad = clip_highlights_rows(x.reshape(x.shape[0], -1), np.float32(wp.min()), out.reshape(x.shape[0], -1))
    elif method == "blend":
        bad = blend_highlights_rows(x, (1.0 / wp).astype(np.float32), float(t), out)
    else:  # each pixel reads only itself and the tile statistics: in place is safe
        level = (t * wp).astype(np.float32)
        clipped = np.empty(x.shape, dtype=np.uint8)
        bad = clipped_channels(x, level, clipped)
        if not bad:
            if not clipped.any():
                out[...] = x
            else:
                near = cv2.dilate(clipped, _SMEAR_KERNEL)
                code = np.empty(x.shape[:2], dtype=np.uint8)
                tiles = tile_statistics(x, level, clipped, near, np.float32(_SUSPECT), np.float32(_BRIGHT),
                                        _BLOCK, code)
                ratio, weight = propagate_tile_ratios(tiles, _MIN_COUNT)
                reconstruct_highlights_rows(x, code, ratio, weight, _BLOCK, out)
    if bad:
        raise InputError("recover_highlights: the image holds NaN or infinite values; "
                         "fix the upstream stage or replace them (np.nan_to_num) first")
    if sensor_clipped is not None:
        neutralize_fringe(out, sensor_clipped, int(fringe), level=float(highlight_white_point(wp, method)[0]),
                          out=out)
    return out


#: Fraction of the white point from which a photosite counts as clipped (darktable's
#: ``highlights_clip_magics`` for "inpaint opposed").
OPPOSED_CLIP = 0.987
_OPPOSED_LOW = 0.2      # chroma reference photosites lie between 0.2 and 1 of the clip level
_OPPOSED_REACH = 3      # ... within this many 2×2 quads of a clipped photosite of their colour
_OPPOSED_MIN_COUNT = 100.0
#: ``meta.extra`` key of the (3,) per-colour levels from which :class:`HighlightReconstruction`
#: took a photosite as clipped (read by ``Demosaic(near_clip=...)``).
HIGHLIGHT_CLIP_LEVELS_KEY = "highlight_clip_levels"


def reconstruct_opposed(mosaic: np.ndarray, cfa_pattern: str, white_point: object | None = None, *,
                        clip: float = OPPOSED_CLIP) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild clipped photosites of a white-balanced Bayer mosaic from the opposed colours.

    Parameters
    ----------
    mosaic : H×W white-balanced mosaic (after black level and white-balance
        gains; values in units of the white-balanced white point).
    cfa_pattern : ``"RGGB" | "BGGR" | "GRBG" | "GBRG"``.
    white_point : (3,) per-colour saturation level (``meta.white_point``);
        None means 1.0.
    clip : a photosite at or above ``clip × white_point`` of its colour is clipped.

    Returns
    -------
    (out, chroma): the float32 mosaic with every clipped photosite raised to
    ``max(value, opposed + chroma[c])``, and the (3,) chroma offsets used.

    Notes
    -----
    RAW_MOSAIC float32, scene-linear, white-balanced. ``opposed`` is the mean
    of the two other colours over the 3×3 neighbourhood, averaged in cube-root
    space (each colour's mean, cube-rooted, the two averaged, cubed).
    ``chroma[c]`` is the mean of ``value − opposed`` over the unclipped
    photosites of colour c between 0.2 and 1 of the clip level that lie within
    3 Bayer quads (≈ 6 px) of a clipped photosite of colour c — the colour of
    what surrounds the blown areas — or 0 when fewer than 100 such photosites
    exist. A photosite never decreases; an image with nothing clipped is
    returned unchanged. Non-finite input raises :class:`~ispkit.errors.InputError`.

    References
    ----------
    H. Schwalm, I. (gmic), garagecoder: darktable 4.2 "inpaint opposed" highlight
    reconstruction, ``src/iop/hlreconstruct/opposed.c`` (``_process_opposed``,
    ``_calc_refavg``; clip magic 0.987, HL_POWERF 3, chroma from photosites
    above 0.2 of the clip next to clipped data, at least 100 of them).
    """
    x = np.asarray(mosaic)
    if x.ndim != 2:
        raise InputError(f"reconstruct_opposed: expected an H×W mosaic, got shape {x.shape}")
    try:
        c = float(clip)
    except (TypeError, ValueError):
        c = float("nan")
    if isinstance(clip, bool) or not 0.5 <= c <= 1.0:
        raise ParameterError(f"reconstruct_opposed: clip must be a fraction of the white point in [0.5, 1], "
                             f"got {clip!r}")
    wp = _check_white_point(white_point)
    x = _readonly_c(np.ascontiguousarray(x, dtype=np.float32))
    chroma = np.zeros(3)
    if x.size == 0:
        return x.copy(), chroma
    if not np.isfinite(x).all():
        raise InputError("reconstruct_opposed: the mosaic holds NaN or infinite values; "
                         "fix the upstream stage or replace them (np.nan_to_num) first")
    cidx = np.ascontiguousarray(cfa_color_indices(cfa_pattern), dtype=np.int64)
    clips = (c * wp).astype(np.float32)
    if count_clipped(x, cidx, clips) == 0:
        return x.copy(), chroma
    h, w = x.shape
    quads = np.zeros(((h + 1) // 2, (w + 1) // 2, 3), np.uint8)
    clipped_quads(x[:h // 2 * 2, :w // 2 * 2], cidx, clips, quads[:h // 2, :w // 2])
    near = cv2.dilate(quads, np.ones((2 * _OPPOSED_REACH + 1, 2 * _OPPOSED_REACH + 1), np.uint8))
    sums = opposed_chroma_sums(x, cidx, clips, np.ascontiguousarray(near), _OPPOSED_LOW)
    chroma = np.where(sums[3:] > _OPPOSED_MIN_COUNT, sums[:3] / np.maximum(sums[3:], 1.0), 0.0)
    out = np.empty_like(x)
    opposed_fill(x, cidx, clips, chroma.astype(np.float32), out)
    return out, chroma


def opposed_white_point(white_point: object | None, chroma: np.ndarray) -> np.ndarray:
    """The saturation level after :func:`reconstruct_opposed`: no rebuilt value exceeds it."""
    wp = _check_white_point(white_point)
    return np.full(3, wp.max() + max(float(np.max(chroma)), 0.0))


@register_stage
@dataclass(frozen=True)
class HighlightReconstruction(Stage):
    """Rebuild what the sensor clipped from the opposed colours ("inpaint opposed").

    Parameters
    ----------
    method : ``"opposed"`` (the only method: see :func:`reconstruct_opposed`).
    clip : fraction of the white point from which a photosite counts as clipped.

    Notes
    -----
    RAW_MOSAIC → RAW_MOSAIC, after white balance and before demosaicing;
    needs ``cfa_pattern`` and uses ``meta.white_point`` (1.0 when absent). Sets
    ``white_point`` to a level no rebuilt value exceeds
    (:func:`opposed_white_point`), so a highlight clip after demosaicing keeps
    the rebuilt values; records the chroma offsets in
    ``meta.extra["highlight_chroma"]`` and its clip levels in
    ``meta.extra["highlight_clip_levels"]``. The fuser keeps the one-pass render for
    frames with nothing clipped (the stage is then the identity).

    References
    ----------
    darktable 4.2 ``src/iop/hlreconstruct/opposed.c``.
    """

    type_name = "highlight_reconstruction"
    method: str = "opposed"
    clip: float = OPPOSED_CLIP

    def __post_init__(self) -> None:
        if self.method != "opposed":
            raise unknown_name("highlight reconstruction method", self.method, ("opposed",),
                               f"stage {self.type_name!r} parameter 'method'")
        if isinstance(self.clip, bool) or not isinstance(self.clip, (int, float)) or not 0.5 <= self.clip <= 1.0:
            raise ParameterError(f"stage {self.type_name!r}: parameter 'clip' must be a fraction of the white "
                                 f"point in [0.5, 1], got {self.clip!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",), provides=("white_point",))

    def clip_levels(self, meta) -> np.ndarray:
        """The per-colour clip levels for frames with this metadata."""
        return self.clip * _check_white_point(meta.white_point)

    def process(self, frame: Frame) -> Frame:
        wp = frame.meta.white_point
        out, chroma = reconstruct_opposed(frame.data, frame.meta.cfa_pattern, wp, clip=self.clip)
        extra = dict(frame.meta.extra)
        extra["highlight_chroma"] = [float(v) for v in chroma]
        extra[HIGHLIGHT_CLIP_LEVELS_KEY] = [float(v) for v in self.clip_levels(frame.meta)]
        return frame.replace(data=out, white_point=opposed_white_point(wp, chroma), extra=extra)

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseHighlightReconstruction`: clip at the white point.

        The reconstruction only raises photosites at or above its clip level,
        so clipping at the sensor's white point returns every unclipped and
        every saturated photosite exactly (see
        :func:`~ispkit.stages.inverses.invert_highlight_reconstruction`).
        """
        from .inverses import InverseHighlightReconstruction

        return InverseHighlightReconstruction(clip=self.clip)


@register_stage
@dataclass(frozen=True)
class HighlightRecovery(Stage):
    """Keep blown highlights neutral in white-balanced camera RGB.

    Parameters
    ----------
    method : ``"clip"`` | ``"blend"`` | ``"reconstruct"`` (see :data:`HIGHLIGHT_METHODS`).
    threshold : fraction of the white point (None: the method's default).
    fringe : desaturate this many pixels around clipped ones (the magenta
        rim demosaicing leaves at the edge of a blown light; 0 = off).

    Notes
    -----
    CAMERA_RGB → CAMERA_RGB, after white balance and demosaicing, before the
    colour matrix. Uses ``meta.white_point`` (1.0 per channel when absent) and
    sets it to the new saturation level (:func:`highlight_white_point`).
    """

    type_name = "highlight_recovery"
    method: str = "clip"
    threshold: float | None = None
    fringe: int = 0

    def __post_init__(self) -> None:
        _check_method(self.method, "HighlightRecovery.method")
        if self.threshold is not None:
            _check_threshold(self.threshold, "HighlightRecovery.threshold")
        if isinstance(self.fringe, bool) or not isinstance(self.fringe, int) or not 0 <= self.fringe <= 64:
            raise ParameterError(f"stage 'highlight_recovery': parameter fringe must be an integer in [0, 64] "
                                 f"(pixels), got {self.fringe!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB,), provides=("white_point",),
                         pointwise=self.method != "reconstruct" and self.fringe == 0)

    def process(self, frame: Frame) -> Frame:
        wp = frame.meta.white_point
        out = recover_highlights(frame.data, wp, self.method, self.threshold, fringe=self.fringe)
        return frame.replace(data=out, white_point=highlight_white_point(wp, self.method))

    def inverse(self) -> Stage:
        """For ``method="clip"`` without ``fringe``: :class:`~ispkit.stages.inverses.Identity`.

        Every value the clip returns is its own preimage (values below the
        white point pass unchanged); the other methods rewrite pixels from
        their neighbours and raise NotInvertibleError.
        """
        if self.method != "clip" or self.fringe:
            from ..errors import NotInvertibleError

            raise NotInvertibleError(
                f"stage {self.type_name!r} with method={self.method!r}, fringe={self.fringe} rebuilds clipped pixels "
                "from their neighbours; only method='clip' without fringe has an inverse (the identity)")
        from .inverses import Identity

        return Identity()
