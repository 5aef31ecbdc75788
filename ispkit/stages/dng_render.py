"""The DNG camera profile's rendering steps after the colour matrix: HueSatMap and the default black render.

The DNG SDK renders a raw file as camera → linear ProPhoto RGB (the
ColorMatrix / ForwardMatrix step, :mod:`ispkit.stages.color_matrix`) →
``ProfileHueSatMap`` (hue shift, saturation and value scale looked up in HSV)
→ exposure ramp with an automatic black point (skipped when the profile's
``DefaultBlackRender`` is None) → ``ProfileLookTable`` → ``ProfileToneCurve``
→ output space. This module holds the HueSatMap, the black render, the look
table and the profile tone curve (a look, not colorimetry); all are opt-in
stages, in that order after ``color_matrix``
(``pipe.insert_after("color_matrix", HueSatMap())``), that read their tables
from ``meta.extra["dng"]`` as :func:`ispkit.io.read_raw` stores them.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.6.0.0 (2020), tags
ProfileHueSatMapDims (50937), ProfileHueSatMapData1/2/3 (50938/50939/52537),
ProfileHueSatMapEncoding (51107), ProfileLookTableDims / Data / Encoding
(50981 / 50982 / 51108), ProfileToneCurve (50940), DefaultBlackRender (51110),
ShadowScale (50739);
chapter 6 "Mapping Camera Color Space to CIE XYZ Space".
Adobe DNG SDK 1.6, ``dng_reference.cpp`` (``RefBaselineHueSatMap``,
``DNG_RGBtoHSV`` / ``DNG_HSVtoRGB``, ``RefBaselineRGBTone``), ``dng_spline.cpp``
and ``dng_render.cpp``
(``dng_function_exposure_ramp``, default shadows 5, ``defaultBlackRender_None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import DomainError, InputError, ParameterError
from ..frame import CaptureMetadata, Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from .color_matrix import DNGProfile, dng_color_solution
from .colorspaces import canonical_color_space, rgb_to_rgb_matrix
from .exposure import exposure_gain_ev

__all__ = [
    "exposure_ramp",
    "apply_hue_sat_map",
    "hue_sat_map_for",
    "look_table_for",
    "spline_slopes",
    "evaluate_spline",
    "apply_rgb_tone",
    "HueSatMap",
    "LookTable",
    "ProfileToneCurve",
    "BlackRender",
    "HUE_SAT_MAP_ENCODINGS",
]

#: ProfileHueSatMapEncoding values → name (DNG 1.4): how the value axis is indexed.
HUE_SAT_MAP_ENCODINGS: Mapping[int, str] = {0: "linear", 1: "srgb"}

_WORKING = "ProPhoto RGB"  # the SDK applies the map to linear ProPhoto RGB (D50 white)


def _dng(meta: CaptureMetadata) -> Mapping[str, Any]:
    return meta.extra.get("dng") or {}


# ---------------------------------------------------------------------------
# exposure ramp / black render


def exposure_ramp(x: Any, black: float, white: float = 1.0, min_black: float | None = None) -> np.ndarray:
    """Map ``x`` to ``(x − black) / (white − black)`` with the DNG SDK's quadratic toe at the black point.

    Parameters
    ----------
    x : linear values (any shape).
    black : black point (0 ≤ black < white).
    white : value mapped to 1.
    min_black : sets the toe radius ``min(0.5·min_black, (white − black)/16)``
        (default ``black``, as the SDK's renderer uses it).

    Returns
    -------
    float32 array of ``x``'s shape: 0 below ``black − radius``, a parabola
    up to ``black + radius`` joining the line with matching slope, then the
    line (not clipped at 1: scene-linear values may exceed 1).

    Notes
    -----
    Any linear domain; float32 out.

    References
    ----------
    Adobe DNG SDK 1.6, ``dng_render.cpp``, ``dng_function_exposure_ramp``.
    """
    v = np.asarray(x, dtype=np.float64)
    black, white = float(black), float(white)
    if not (np.isfinite(black) and np.isfinite(white) and 0.0 <= black < white):
        raise ParameterError(f"exposure_ramp: need 0 <= black < white, got black={black!r}, white={white!r}")
    slope = 1.0 / (white - black)
    mb = black if min_black is None else float(min_black)
    radius = min(0.5 * mb, (1.0 / 16.0) / slope)
    out = (v - black) * slope
    if radius > 0.0:
        q = slope / (4.0 * radius)
        toe = v - (black - radius)
        out = np.where(v <= black - radius, 0.0, np.where(v >= black + radius, out, q * toe * toe))
    else:
        out = np.maximum(out, 0.0)
    return out.astype(np.float32)


@register_stage
@dataclass(frozen=True)
class BlackRender(Stage):
    """Subtract the renderer's automatic black point (DNG ``DefaultBlackRender`` = Auto) with the SDK's toe.

    Parameters
    ----------
    shadows : the SDK's shadows setting (5 by default; the black point is
        ``shadows · 0.001 · ShadowScale`` of the white before exposure).
    respect_dng : leave the frame unchanged when its DNG says
        ``DefaultBlackRender`` = 1 (None), as the SDK does.

    Notes
    -----
    CAMERA_RGB or LINEAR_RGB, H×W×3 float32, white-balanced (white = (1, 1,
    1)). The frame is taken to carry the DNG exposure already (the default
    preset's :class:`~ispkit.stages.exposure.Exposure` stage), so for a total
    of ``ev`` = BaselineExposure + offset > 0 the black point is scaled by
    ``2**ev`` as the SDK's ramp (white ``2**-ev``) implies. The SDK applies
    the ramp per channel in linear ProPhoto RGB; its linear part is the same
    in any RGB space with the same white, only the toe (a few thousandths
    wide) differs. Records ``meta.extra["black_render"]`` (the black point used).

    References
    ----------
    Adobe, DNG Specification 1.6, DefaultBlackRender (51110); Adobe DNG SDK
    ``dng_render.cpp`` (``fShadows`` 5, ``dng_function_exposure_ramp``).
    """

    type_name = "black_render"
    shadows: float = 5.0
    respect_dng: bool = True

    def __post_init__(self) -> None:
        s = self.shadows
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 100.0:
            raise ParameterError(f"stage 'black_render': shadows must be a number in [0, 100], got {s!r}")
        if not isinstance(self.respect_dng, (bool, np.bool_)):
            raise ParameterError(f"stage 'black_render': respect_dng must be True or False, got {self.respect_dng!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB, Domain.LINEAR_RGB), pointwise=True)

    def black_point(self, meta: CaptureMetadata) -> float:
        """The black point (in the frame's exposed scale) this stage subtracts; 0 when the DNG says None."""
        dng = _dng(meta)
        if self.respect_dng and int(dng.get("default_black_render", 0) or 0) == 1:
            return 0.0
        scale = float(dng.get("shadow_scale", 1.0) or 1.0)
        ev = exposure_gain_ev(meta)
        return self.shadows * 0.001 * scale * 2.0 ** max(0.0, ev)

    def process(self, frame: Frame) -> Frame:
        black = self.black_point(frame.meta)
        extra = dict(frame.meta.extra)
        extra["black_render"] = black
        if black <= 0.0:
            return frame.replace(extra=extra)
        black = min(black, 0.99)
        return frame.replace(data=exposure_ramp(frame.data, black), extra=extra)


# ---------------------------------------------------------------------------
# HueSatMap


def _rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DNG SDK ``DNG_RGBtoHSV``: hue in [0, 6), saturation ``gap / max``, value ``max``."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = np.max(rgb, axis=-1)
    gap = v - np.min(rgb, axis=-1)
    safe = np.where(gap > 0, gap, 1.0)
    h = np.where(r == v, (g - b) / safe, np.where(g == v, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(h < 0, h + 6.0, h)
    h = np.where(gap > 0, h, 0.0)
    s = np.where((gap > 0) & (v > 0), gap / np.where(v > 0, v, 1.0), 0.0)
    return h, s, v


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """DNG SDK ``DNG_HSVtoRGB`` (hue wrapped into [0, 6))."""
    h = np.mod(h, 6.0)
    i = np.minimum(np.floor(h), 5).astype(np.int64)
    f = h - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices_r = [v, q, p, p, t, v]
    choices_g = [t, v, v, q, p, p]
    choices_b = [p, p, t, v, v, q]
    out = np.stack([np.choose(i, choices_r), np.choose(i, choices_g), np.choose(i, choices_b)], axis=-1)
    grey = s <= 0
    return np.where(grey[..., None], v[..., None], out)


def _srgb_encode(v: np.ndarray) -> np.ndarray:
    v = np.maximum(v, 0.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def _srgb_decode(v: np.ndarray) -> np.ndarray:
    v = np.maximum(v, 0.0)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4))


def _check_table(table: Any) -> np.ndarray:
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 4 or t.shape[-1] != 3 or t.shape[1] < 1 or t.shape[2] < 2 or not np.all(np.isfinite(t)):
        raise ParameterError(
            "apply_hue_sat_map: table must be a finite (value, hue, saturation, 3) array with ≥ 2 saturation "
            f"divisions, got shape {np.shape(table)}")
    return t


def apply_hue_sat_map(rgb: Any, table: Any, *, encoding: str = "linear", lookup_scale: float = 1.0) -> np.ndarray:
    """Apply a DNG ProfileHueSatMap to linear ProPhoto RGB.

    Parameters
    ----------
    rgb : H×W×3 (or N×3) linear ProPhoto RGB, white (1, 1, 1).
    table : (value, hue, saturation, 3) entries of (hue shift in degrees,
        saturation scale, value scale) — the tag's nested order reshaped.
    encoding : ``"linear"`` or ``"srgb"`` (ProfileHueSatMapEncoding 1: the
        value axis is indexed, and the value scale applied, in sRGB-encoded value).
    lookup_scale : factor from the frame's values to the table's (``2**-ev``
        when the frame already carries an exposure of ``ev``).

    Returns
    -------
    float32 array of ``rgb``'s shape.

    Notes
    -----
    Per pixel (DNG SDK ``RefBaselineHueSatMap``): HSV with hue in [0, 6);
    hue index ``h·H/6`` wraps around, saturation index ``s·(S − 1)`` and
    value index ``v·(V − 1)`` clamp at the last cell; (tri)linear
    interpolation of the three entries; then ``h += shift·6/360``,
    ``s = min(s·sat_scale, 1)``, ``v = min(v·val_scale, 1)`` (values above 1
    on input are scaled without that clip) and back to RGB. LINEAR_RGB,
    float32 out.

    References
    ----------
    Adobe, DNG Specification 1.6, ProfileHueSatMapDims / Data1 / Data2 /
    Encoding; Adobe DNG SDK ``dng_reference.cpp``.
    """
    if encoding not in ("linear", "srgb"):
        raise ParameterError(f"apply_hue_sat_map: encoding must be 'linear' or 'srgb', got {encoding!r}")
    t = _check_table(table)
    x = np.asarray(rgb, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputError(f"apply_hue_sat_map: expected RGB with 3 channels last, got shape {x.shape}")
    n_val, n_hue, n_sat = t.shape[:3]
    h, s, v = _rgb_to_hsv(x)
    v_table = v * float(lookup_scale)
    v_index = _srgb_encode(v_table) if encoding == "srgb" else v_table

    h_scaled = h * (n_hue / 6.0) if n_hue >= 2 else np.zeros_like(h)
    h0 = np.minimum(h_scaled.astype(np.int64), n_hue - 1)
    h1 = np.where(h0 >= n_hue - 1, 0, h0 + 1)
    hf = h_scaled - h0
    s_scaled = np.clip(s, 0.0, 1.0) * (n_sat - 1)
    s0 = np.minimum(s_scaled.astype(np.int64), n_sat - 2)
    sf = s_scaled - s0
    if n_val >= 2:
        v_scaled = np.clip(v_index, 0.0, 1.0) * (n_val - 1)
        v0 = np.minimum(v_scaled.astype(np.int64), n_val - 2)
        vf = v_scaled - v0
    else:
        v0, vf = np.zeros_like(h0), np.zeros_like(h)
    v1 = np.minimum(v0 + 1, n_val - 1)

    def corner(vi, hi, si):
        return t[vi, hi, si]

    acc = np.zeros(h.shape + (3,))
    for vi, wv in ((v0, 1 - vf), (v1, vf)):
        for hi, wh in ((h0, 1 - hf), (h1, hf)):
            for si, ws in ((s0, 1 - sf), (s0 + 1, sf)):
                acc += (wv * wh * ws)[..., None] * corner(vi, hi, si)
    hue_shift, sat_scale, val_scale = acc[..., 0], acc[..., 1], acc[..., 2]

    h_new = h + hue_shift * (6.0 / 360.0)
    s_new = np.minimum(s * sat_scale, 1.0)
    if encoding == "srgb":
        v_new_table = _srgb_decode(_srgb_encode(v_table) * val_scale)
        v_new = v_new_table / float(lookup_scale)
    else:
        v_new = v * val_scale
    cap = np.maximum(1.0, v_table) / float(lookup_scale)  # the SDK's clip at 1, in the table's scale
    v_new = np.minimum(v_new, cap)
    out = _hsv_to_rgb(h_new, s_new, v_new)
    out = np.where((v > 0)[..., None], out, x)  # black (and all-negative) pixels pass unchanged
    return out.astype(np.float32)


def hue_sat_map_for(meta: CaptureMetadata) -> tuple[np.ndarray, str] | None:
    """Return the (value, hue, sat, 3) HueSatMap for ``meta``'s white and its encoding, or None.

    With two tables and two calibration illuminants the tables are mixed
    with the same weight as the colour matrices (linear in inverse CCT of the
    scene white, :func:`~ispkit.stages.color_matrix.dng_color_solution`);
    with three (DNG 1.6 ProfileHueSatMapData3 and a third calibration) by
    the triple-illuminant weights; one table is used as it is.
    """
    dng = _dng(meta)
    dims = dng.get("hue_sat_map_dims")
    data = [dng.get(f"hue_sat_map_data{k}") for k in (1, 2, 3)]
    if dims is None or all(d is None for d in data[:2]):
        return None
    n_hue, n_sat, n_val = (int(v) for v in dims)
    shape = (n_val, n_hue, n_sat, 3)
    t1, t2, t3 = (None if d is None else np.asarray(d, dtype=np.float64).reshape(shape) for d in data)
    profile = DNGProfile.from_metadata(meta)
    if t1 is not None and t2 is not None and t3 is not None and profile.triple:
        w = dng_color_solution(meta).weights
        table = w[0] * t1 + w[1] * t2 + w[2] * t3
    elif t1 is not None and t2 is not None and profile.dual:
        g = dng_color_solution(meta).weight
        table = g * t1 + (1.0 - g) * t2
    else:
        table = t1 if t1 is not None else t2
    encoding = HUE_SAT_MAP_ENCODINGS.get(int(dng.get("hue_sat_map_encoding", 0) or 0), "linear")
    return table, encoding


@register_stage
@dataclass(frozen=True)
class HueSatMap(Stage):
    """Apply the DNG profile's ProfileHueSatMap (dims, encoding, dual-illuminant mix) in linear ProPhoto RGB.

    Parameters
    ----------
    ev : the exposure (EV) the frame already carries, used to index the value
        axis of 3-D tables at the unexposed level as the SDK does; None takes
        the DNG BaselineExposure + offset (what the default preset's
        :class:`~ispkit.stages.exposure.Exposure` stage applied).

    Notes
    -----
    LINEAR_RGB → LINEAR_RGB, H×W×3 float32 in any named working space:
    converted to linear ProPhoto RGB (Bradford), mapped with
    :func:`apply_hue_sat_map`, converted back. A frame without the tags
    passes unchanged, and so does one whose ``extra["hue_sat_map_applied"]``
    says a ``ColorMatrix(profile=...)`` applied its table already. Place it
    right after ``color_matrix``.

    References
    ----------
    Adobe, DNG Specification 1.6, ProfileHueSatMapDims / Data1 / Data2 / Encoding.
    """

    type_name = "hue_sat_map"
    ev: float | None = None

    def __post_init__(self) -> None:
        if self.ev is not None and (isinstance(self.ev, bool) or not isinstance(self.ev, (int, float))
                                    or not np.isfinite(self.ev)):
            raise ParameterError(f"stage 'hue_sat_map': ev must be a finite number of stops or None, got {self.ev!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB,), out_domain=Domain.LINEAR_RGB, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        if frame.meta.extra.get("hue_sat_map_applied"):  # ColorMatrix(profile=...) applied the profile's table
            return frame
        found = hue_sat_map_for(frame.meta)
        if found is None:
            return frame
        ev = exposure_gain_ev(frame.meta) if self.ev is None else float(self.ev)
        return _map_in_prophoto(frame, *found, lookup_scale=2.0 ** -ev, stage=self.type_name)


def _map_in_prophoto(frame: Frame, table: np.ndarray, encoding: str, *, lookup_scale: float, stage: str) -> Frame:
    """Convert ``frame`` to linear ProPhoto RGB, apply an HSV table, convert back."""
    space = frame.meta.color_space
    if space is None or space == "camera":
        raise DomainError(
            f"stage {stage!r} needs a named linear colour space, but {frame.meta.source or 'the frame'} "
            f"has color_space={space!r}; run it after a ColorMatrix that found the DNG colour tags")
    space = canonical_color_space(space, f"stage {stage!r} (meta.color_space)")
    to_pp = rgb_to_rgb_matrix(space, _WORKING, "bradford")
    from_pp = rgb_to_rgb_matrix(_WORKING, space, "bradford")
    x = np.asarray(frame.data, dtype=np.float64) @ to_pp.T
    y = apply_hue_sat_map(x, table, encoding=encoding, lookup_scale=lookup_scale)
    return frame.replace(data=(y.astype(np.float64) @ from_pp.T).astype(np.float32))


def look_table_for(meta: CaptureMetadata) -> tuple[np.ndarray, str] | None:
    """Return the (value, hue, sat, 3) ProfileLookTable of ``meta`` and its encoding, or None."""
    dng = _dng(meta)
    dims, data = dng.get("look_table_dims"), dng.get("look_table_data")
    if dims is None or data is None:
        return None
    n_hue, n_sat, n_val = (int(v) for v in dims)
    table = np.asarray(data, dtype=np.float64).reshape(n_val, n_hue, n_sat, 3)
    encoding = HUE_SAT_MAP_ENCODINGS.get(int(dng.get("look_table_encoding", 0) or 0), "linear")
    return table, encoding


@register_stage
@dataclass(frozen=True)
class LookTable(Stage):
    """Apply the DNG profile's ProfileLookTable (dims, encoding) in linear ProPhoto RGB.

    Notes
    -----
    LINEAR_RGB → LINEAR_RGB, H×W×3 float32 in any named working space. The
    same HSV table lookup as :class:`HueSatMap` (:func:`apply_hue_sat_map`),
    but one table (no illuminant mix) indexed at the frame's exposed values:
    the SDK applies it after the exposure ramp, so place it after
    :class:`BlackRender` (or right after ``hue_sat_map``). A frame without
    the tags passes unchanged.

    References
    ----------
    Adobe, DNG Specification 1.6, ProfileLookTableDims / Data / Encoding
    (50981 / 50982 / 51108); Adobe DNG SDK ``dng_render.cpp``.
    """

    type_name = "look_table"

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB,), out_domain=Domain.LINEAR_RGB, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        found = look_table_for(frame.meta)
        if found is None:
            return frame
        return _map_in_prophoto(frame, *found, lookup_scale=1.0, stage=self.type_name)


# ---------------------------------------------------------------------------
# ProfileToneCurve


def spline_slopes(x: Any, y: Any) -> np.ndarray:
    """Return the knot slopes of the natural cubic spline through (x, y).

    Notes
    -----
    The curve that is C0, C1 and C2 continuous with zero second derivative
    at both ends (what the DNG SDK's ``dng_spline_solver`` computes): the
    tridiagonal system ``h[i]·s[i-1] + 2(h[i-1] + h[i])·s[i] + h[i-1]·s[i+1]
    = 3(h[i]·d[i-1] + h[i-1]·d[i])`` with ``2s[0] + s[1] = 3d[0]`` and
    ``s[n-2] + 2s[n-1] = 3d[n-2]`` (``h`` knot spacing, ``d`` secant slopes).
    Two knots give the straight line.
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = xs.size
    if n < 2 or ys.size != n or np.any(np.diff(xs) <= 0):
        raise ParameterError(f"spline_slopes: need ≥ 2 knots with x strictly increasing, got {n} knots")
    h = np.diff(xs)
    d = np.diff(ys) / h
    if n == 2:
        return np.array([d[0], d[0]])
    a = np.zeros((n, n))
    rhs = np.empty(n)
    a[0, 0], a[0, 1], rhs[0] = 2.0, 1.0, 3.0 * d[0]
    a[-1, -2], a[-1, -1], rhs[-1] = 1.0, 2.0, 3.0 * d[-1]
    for i in range(1, n - 1):
        a[i, i - 1], a[i, i], a[i, i + 1] = h[i], 2.0 * (h[i - 1] + h[i]), h[i - 1]
        rhs[i] = 3.0 * (h[i] * d[i - 1] + h[i - 1] * d[i])
    return np.linalg.solve(a, rhs)


def evaluate_spline(x: Any, y: Any, slopes: Any, t: Any) -> np.ndarray:
    """Evaluate the cubic Hermite spline with knots (x, y) and ``slopes`` at ``t`` (clamped to the knots' range)."""
    xs, ys, ss = (np.asarray(v, dtype=np.float64) for v in (x, y, slopes))
    tt = np.clip(np.asarray(t, dtype=np.float64), xs[0], xs[-1])
    i = np.clip(np.searchsorted(xs, tt, side="right") - 1, 0, xs.size - 2)
    h = xs[i + 1] - xs[i]
    u = (tt - xs[i]) / h
    h00, h10 = (1 + 2 * u) * (1 - u) ** 2, u * (1 - u) ** 2
    h01, h11 = u * u * (3 - 2 * u), u * u * (u - 1)
    return h00 * ys[i] + h10 * h * ss[i] + h01 * ys[i + 1] + h11 * h * ss[i + 1]


def apply_rgb_tone(rgb: Any, curve: Any) -> np.ndarray:
    """Apply a tone curve to RGB keeping hue: the largest and smallest channels through the curve, the middle interpolated.

    Parameters
    ----------
    rgb : ...×3 linear RGB; values are clipped to [0, 1] first, as the SDK does.
    curve : a callable mapping an array of [0, 1] values to [0, 1].

    Notes
    -----
    ``mid' = min' + (max' − min')·(mid − min)/(max − min)``; neutrals
    (max = min) go through the curve directly. float32 out.

    References
    ----------
    Adobe DNG SDK ``dng_reference.cpp``, ``RefBaselineRGBTone``.
    """
    x = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    lo, hi = x.min(axis=-1), x.max(axis=-1)
    lo_t, hi_t = np.asarray(curve(lo), np.float64), np.asarray(curve(hi), np.float64)
    span = hi - lo
    pos = (span > 0)[..., None]
    frac = np.where(pos, (x - lo[..., None]) / np.where(pos, span[..., None], 1.0), 0.0)
    out = lo_t[..., None] + (hi_t - lo_t)[..., None] * frac
    return out.astype(np.float32)


@register_stage
@dataclass(frozen=True)
class ProfileToneCurve(Stage):
    """Apply the DNG profile's ProfileToneCurve (a look) hue-preservingly in linear ProPhoto RGB.

    Notes
    -----
    LINEAR_RGB → LINEAR_RGB, H×W×3 float32 in any named working space. The
    curve is the natural cubic spline through the tag's (x, y) points
    (:func:`spline_slopes`), applied with :func:`apply_rgb_tone` to values
    clipped to [0, 1] — the output is display-referred, so run it last
    before the gamma stage. A frame without the tag passes unchanged.

    References
    ----------
    Adobe, DNG Specification 1.6, ProfileToneCurve (50940); Adobe DNG SDK
    ``dng_spline.cpp`` and ``RefBaselineRGBTone``.
    """

    type_name = "profile_tone_curve"

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB,), out_domain=Domain.LINEAR_RGB, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        pts = _dng(frame.meta).get("profile_tone_curve")
        if pts is None:
            return frame
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        slopes = spline_slopes(pts[:, 0], pts[:, 1])

        def curve(v: np.ndarray) -> np.ndarray:
            return np.clip(evaluate_spline(pts[:, 0], pts[:, 1], slopes, v), 0.0, 1.0)

        space = frame.meta.color_space
        if space is None or space == "camera":
            raise DomainError(
                f"stage 'profile_tone_curve' needs a named linear colour space, but {frame.meta.source or 'the frame'} "
                f"has color_space={space!r}; run it after a ColorMatrix that found the DNG colour tags")
        space = canonical_color_space(space, "stage 'profile_tone_curve' (meta.color_space)")
        to_pp = rgb_to_rgb_matrix(space, _WORKING, "bradford")
        from_pp = rgb_to_rgb_matrix(_WORKING, space, "bradford")
        y = apply_rgb_tone(np.asarray(frame.data, dtype=np.float64) @ to_pp.T, curve)
        return frame.replace(data=(y.astype(np.float64) @ from_pp.T).astype(np.float32))
