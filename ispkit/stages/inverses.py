"""Exact inverses of the invertible classical stages, as pure functions and stages.

Each forward stage that can be undone has an ``inverse()`` method returning
one of these stages (or another forward stage: ``Gamma`` ↔ ``GammaExpand``,
``PackBayer`` ↔ ``UnpackBayer``, ``Demosaic`` → :class:`Mosaic`), and
:meth:`ispkit.pipeline.Pipeline.inverse` chains them in reverse order.

"Inverse" means: given a forward output ``y``, return an input ``x`` with
``forward(x) == y`` (to float32 rounding), and ``inverse(forward(x)) == x``
wherever the forward stage is one-to-one — everywhere for white balance,
colour matrices, black level and strictly monotone curves; on the sampled
CFA positions for demosaicing; on unclipped values for stages that clip.

The parameters the forward stage read from the frame (white-balance gains,
colour matrix, raw levels) are read from the same metadata again, which the
forward stages carry through: run the inverse on the forward output.

References
----------
T. Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019
(the inverse pipeline, highlight-preserving inverse gains).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, NotInvertibleError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame, cfa_color_indices
from ..pipeline import Stage, StageSpec, register_stage
from .black_level import RAW_LEVELS_KEY, _black_pattern
from .color_matrix import COLOR_SOURCES, ColorMatrix, _check_ccm, _check_space_param
from .colorspaces import apply_color_matrix
from .demosaic import Demosaic, mosaic
from .exposure import exposure_gain_ev
from .highlights import HIGHLIGHT_CLIP_LEVELS_KEY, OPPOSED_CLIP
from .tone import FILMIC_METHODS, ToneCurve, tone_curve_lut
from .unprocess import invert_white_balance_safe
from .white_balance import _NORMALIZE, apply_white_balance, white_balance_gains

__all__ = [
    "invert_black_level", "invert_white_balance", "invert_color_matrix", "invert_tone_curve", "invert_filmic",
    "Identity", "Mosaic", "InverseBlackLevel", "InverseWhiteBalance", "InverseColorMatrix", "InverseToneCurve",
    "InverseFilmic", "InverseExposure", "InverseSigmoidToneMap", "invert_sigmoid_tone_map",
    "invert_highlight_reconstruction", "InverseHighlightReconstruction",
]

_INVERSE_WB_SOURCES = ("auto", "illuminant", "camera")

# -- pure functions ----------------------------------------------------------


def invert_black_level(x: np.ndarray, black_level: Any, white_level: float, *, black_level_pattern: Any = None,
                       linearization_table: Any = None) -> np.ndarray:
    """Map normalised values back to raw counts: ``x · (white − black) + black`` per CFA position.

    Parameters
    ----------
    x : H×W normalised mosaic (black 0, white 1).
    black_level, white_level, black_level_pattern : the levels
        :func:`~ispkit.stages.black_level.subtract_black_level` removed.
    linearization_table : the DNG LinearizationTable it applied; must be
        strictly increasing (its inverse is interpolated between entries).

    Notes
    -----
    RAW_MOSAIC H×W float32 in and out; counts are not rounded. Computed in
    float64, so 16-bit counts come back within 1e-3 of the original.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"invert_black_level: expected a non-empty H×W mosaic, got shape {a.shape}")
    pat = _black_pattern(black_level, black_level_pattern)
    scale = float(white_level) - pat
    if not math.isfinite(float(white_level)) or np.any(scale <= 0):
        raise ParameterError(f"invert_black_level: white level {white_level!r} must exceed every black level "
                             f"{pat.ravel().tolist()}")
    h, w = a.shape
    rows = np.arange(h) % pat.shape[0]
    cols = np.arange(w) % pat.shape[1]
    out = a * scale[rows][:, cols] + pat[rows][:, cols]
    if linearization_table is not None:
        lut = np.asarray(linearization_table, dtype=np.float64).ravel()
        if lut.size < 2 or np.any(np.diff(lut) <= 0):
            raise NotInvertibleError("invert_black_level: the linearization table is not strictly increasing, "
                                     "so raw counts cannot be recovered from linear values")
        out = np.interp(out, lut, np.arange(lut.size, dtype=np.float64))
    return out.astype(np.float32)


def _gains(gains: Any, where: str) -> np.ndarray:
    g = np.asarray(gains, dtype=np.float64).ravel()
    if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ParameterError(f"{where}: gains must be 3 positive finite values, got {np.ravel(gains).tolist()}")
    return g


def invert_white_balance(image: np.ndarray, gains: Any, *, cfa_pattern: str | None = None,
                         highlight_safe: bool = False, inflection: float = 0.9) -> np.ndarray:
    """Divide each CFA position (mosaic) or channel by its white-balance gain.

    Parameters
    ----------
    image : H×W mosaic (with ``cfa_pattern``), H×W×3 RGB or H×W×4 RAW_PACKED.
    gains : (3,) the RGB gains the forward white balance applied.
    highlight_safe : H×W×3 only: ease the inverse gains towards 1 above
        ``inflection`` (Brooks et al.'s highlight-preserving inverse, see
        :func:`~ispkit.stages.unprocess.invert_white_balance_safe`), so a
        saturated white stays saturated in every channel; exact below it.

    Notes
    -----
    Any layout, float32, linear. ``invert_white_balance(apply_white_balance(x, g), g) == x``
    to float32 rounding (two roundings: ≤ 2 ulp).

    References
    ----------
    Brooks et al., CVPR 2019, §3.3.
    """
    g = _gains(gains, "invert_white_balance")
    if highlight_safe:
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3:
            raise InputError(f"invert_white_balance: highlight_safe works on H×W×3 RGB, got shape {a.shape}")
        return invert_white_balance_safe(a, 1.0 / g, inflection=inflection)
    return apply_white_balance(image, 1.0 / g, cfa_pattern=cfa_pattern)


def _invertible_matrix(matrix: Any, where: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ParameterError(f"{where}: expected a finite 3×3 matrix, got shape {m.shape}")
    cond = np.linalg.cond(m)
    if not np.isfinite(cond) or cond > 1e8:
        raise NotInvertibleError(f"{where}: the colour matrix {m.round(6).tolist()} is singular (condition number "
                                 f"{cond:.3g}); distinct colours collapse onto one, so they cannot be separated again")
    return np.linalg.inv(m)


def invert_color_matrix(image: np.ndarray, matrix: Any) -> np.ndarray:
    """Apply the inverse of a 3×3 colour matrix to every pixel (refusing singular ones).

    Notes
    -----
    H×W×3 float32, linear, any range. Raises
    :class:`~ispkit.errors.NotInvertibleError` when the matrix is singular
    (condition number above 1e8).
    """
    return apply_color_matrix(image, _invertible_matrix(matrix, "invert_color_matrix"))


def _strictly_monotone_points(points: Any, where: str) -> None:
    ys = [float(p[1]) for p in points]
    flat = [i for i, (a, b) in enumerate(zip(ys, ys[1:])) if b <= a]
    if flat:
        i = flat[0]
        raise NotInvertibleError(f"{where}: the tone curve is flat between control points {i} and {i + 1} "
                                 f"(y = {ys[i]:g} and {ys[i + 1]:g}), so the tones it merges cannot be told apart; "
                                 "only strictly increasing curves have an inverse")


def invert_tone_curve(img: Any, points: Any, *, lut_size: int = 4096) -> np.ndarray:
    """Invert :func:`~ispkit.stages.tone.apply_tone_curve` for a strictly increasing curve.

    Notes
    -----
    Any shape float → float32. Inverts the curve exactly as applied: the
    same uniform LUT with linear interpolation (its inverse is the
    piecewise-linear map with x and y swapped), and the same straight-line
    extensions outside the control range (divided by their slopes).
    """
    _strictly_monotone_points(points, "invert_tone_curve")
    lut, x0, x1, slo, shi = tone_curve_lut(points, lut_size)
    grid = np.linspace(x0, x1, lut.size)
    ys = lut.astype(np.float64)
    if np.any(np.diff(ys) <= 0):
        raise NotInvertibleError("invert_tone_curve: the sampled curve is not strictly increasing (a slope rounds "
                                 "to 0 in float32); use control points with a steeper rise")
    y = np.asarray(img, dtype=np.float64)
    x = np.interp(y, ys, grid)
    below, above = y < ys[0], y > ys[-1]
    if np.any(below):
        if slo <= 0:
            raise NotInvertibleError("invert_tone_curve: values below the curve's start are all mapped to it "
                                     "(zero end slope); they cannot be recovered")
        x[below] = x0 + (y[below] - ys[0]) / slo
    if np.any(above):
        if shi <= 0:
            raise NotInvertibleError("invert_tone_curve: values above the curve's end are all mapped to it "
                                     "(zero end slope); they cannot be recovered")
        x[above] = x1 + (y[above] - ys[-1]) / shi
    return x.astype(np.float32)


# Hable's constants (A..F) and defaults, as tone.filmic uses them
_HABLE = (0.15, 0.50, 0.10, 0.20, 0.02, 0.30)
_HABLE_EXPOSURE, _HABLE_WHITE = 2.0, 11.2


def _hable(v: np.ndarray | float) -> np.ndarray | float:
    a, b, c, d, e, f = _HABLE
    return (v * (a * v + c * b) + d * e) / (v * (a * v + b) + d * f) - e / f


def _positive_root(qa: np.ndarray, qb: np.ndarray, qc: np.ndarray) -> np.ndarray:
    """The non-negative root of ``qa v² + qb v + qc = 0`` (stable form; linear when qa = 0)."""
    disc = np.sqrt(np.maximum(qb * qb - 4.0 * qa * qc, 0.0))
    # citardauq: v = 2c / (−b ∓ √disc); pick the sign that gives the root >= 0
    den = -qb - np.copysign(disc, qb)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(den != 0, 2.0 * qc / den, np.inf)
        r2 = np.where(qa != 0, den / (2.0 * qa), np.inf)
    r1 = np.where(r1 >= 0, r1, np.inf)
    r2 = np.where(r2 >= 0, r2, np.inf)
    return np.minimum(r1, r2)


def invert_filmic(img: Any, method: str = "hable2010", *, exposure: float | None = None,
                  white: float | None = None) -> np.ndarray:
    """Invert :func:`~ispkit.stages.tone.filmic` on its range [0, 1) (both curves are rational: a quadratic).

    Notes
    -----
    Any shape float → float32 linear values ≥ 0. Inputs are clipped to
    [0, 1]; 1 maps to the smallest linear value the curve sends to 1 (the
    forward clips everything above it).

    References
    ----------
    Hable, "Filmic Tonemapping Operators", 2010; Narkowicz, "ACES Filmic Tone
    Mapping Curve", 2016.
    """
    if not isinstance(method, str) or method not in FILMIC_METHODS:
        raise unknown_name("filmic method", method, FILMIC_METHODS, "invert_filmic")
    y = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    if method == "hable2010":
        ex = _HABLE_EXPOSURE if exposure is None else float(exposure)
        w = _HABLE_WHITE if white is None else float(white)
        a, b, c, d, e, f = _HABLE
        t = y * _hable(w) + e / f  # (v(Av+CB)+DE) = t (v(Av+B)+DF)
        v = _positive_root(a * (1.0 - t), b * (c - t), d * e - t * d * f)
    else:
        ex = 1.0 if exposure is None else float(exposure)
        v = _positive_root(2.43 * y - 2.51, 0.59 * y - 0.03, 0.14 * y)
    return (v / ex).astype(np.float32)


def _loglogistic_inverse(y: np.ndarray, params: Any) -> np.ndarray:
    """Invert ``f(x) = m · ((x + fog)^p / ((x + fog)^p + e))^q`` (float64; clamped to its range)."""
    m, e, fog, p, q = params
    u = np.power(np.clip(y / m, 0.0, 1.0 - 1e-12), 1.0 / q)
    film = e * u / (1.0 - u)
    return np.maximum(np.power(film, 1.0 / p) - fog, 0.0)


def invert_sigmoid_tone_map(img: Any, contrast: float = 1.5, skew: float = 0.0, *, white_target: float = 1.0,
                            black_target: float = 0.000152, hue_preservation: float = 1.0,
                            hue_encoding: str = "srgb") -> np.ndarray:
    """Invert :func:`~ispkit.stages.display_transform.sigmoid_tone_map` (hue preservation 0 or 1).

    Notes
    -----
    (..., 3) display-linear RGB → scene-linear float32 ≥ 0. The smallest and
    largest channel go through the inverse log-logistic curve (closed form);
    with full hue preservation the middle one is put back at its place between
    them, measured in the encoding the forward used (``hue_encoding``).
    Values at or above ``white_target`` map to very large scene values (the
    curve only reaches white at infinity); pixels the forward desaturated
    (negative input) come back desaturated. A partial hue preservation
    (0 < h < 1) mixes two curves per channel and raises
    :class:`~ispkit.errors.NotInvertibleError`.

    References
    ----------
    darktable ``src/iop/sigmoid.c`` (the generalised log-logistic curve).
    """
    from .display_transform import sigmoid_parameters
    from .gamma import gamma_compress

    if hue_preservation not in (0, 0.0, 1, 1.0):
        raise NotInvertibleError(f"invert_sigmoid_tone_map: hue_preservation={hue_preservation!r} blends the "
                                 "per-channel and hue-preserving curves; only 0 or 1 have a closed-form inverse")
    params = sigmoid_parameters(contrast, skew, white_target, black_target)
    y = np.asarray(img, dtype=np.float64)
    if y.ndim < 1 or y.shape[-1] != 3 or not np.all(np.isfinite(y)):
        raise InputError(f"invert_sigmoid_tone_map: expected finite (..., 3) RGB, got shape {y.shape}")
    if hue_preservation == 0:
        return _loglogistic_inverse(y, params).astype(np.float32)
    enc = gamma_compress(y, "srgb", clip=True) if hue_encoding == "srgb" else y
    e_lo, e_hi = enc.min(axis=-1, keepdims=True), enc.max(axis=-1, keepdims=True)
    lo = _loglogistic_inverse(y.min(axis=-1, keepdims=True), params)
    hi = _loglogistic_inverse(y.max(axis=-1, keepdims=True), params)
    span = e_hi - e_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(span > 0, (enc - e_lo) / span, 0.0)
    return (lo + frac * (hi - lo)).astype(np.float32)


# -- stages ------------------------------------------------------------------


@register_stage
@dataclass(frozen=True)
class Identity(Stage):
    """Pass frames through unchanged: the inverse of a clip on the values it outputs.

    Notes
    -----
    Any domain. A clip maps every value it outputs to itself, so the identity
    is an exact preimage (``clip(identity(y)) == y``); what the clip cut off
    is gone either way.
    """

    type_name = "identity"

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=tuple(Domain), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        return frame

    def inverse(self) -> "Identity":
        """Itself."""
        return self


@register_stage
@dataclass(frozen=True)
class Mosaic(Stage):
    """Sample camera RGB into a Bayer mosaic of ``meta.cfa_pattern`` (the inverse of :class:`Demosaic`).

    Notes
    -----
    CAMERA_RGB (or LINEAR_RGB still in camera primaries) H×W×3 float32 →
    RAW_MOSAIC H×W float32. Exact on the sampled positions: every
    demosaicing method keeps each pixel's own CFA sample, so
    ``mosaic(demosaic(m)) == m``.
    """

    type_name = "mosaic"

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB, Domain.LINEAR_RGB), out_domain=Domain.RAW_MOSAIC,
                         requires=("cfa_pattern",), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=mosaic(frame.data, frame.meta.cfa_pattern), domain=Domain.RAW_MOSAIC)

    def inverse(self) -> Demosaic:
        """A right inverse: ``mosaic(demosaic(m)) == m`` (the demosaic fills in the missing colours)."""
        return Demosaic()


def _raw_levels(meta: CaptureMetadata, black_level: Any, white_level: Any) -> dict[str, Any]:
    rec = dict(meta.extra.get(RAW_LEVELS_KEY) or {"black_level": np.asarray(meta.black_level).tolist(),
                                                  "white_level": meta.white_level})
    if black_level is not None:
        rec["black_level"] = list(black_level)
        rec.pop("black_level_pattern", None)
    if white_level is not None:
        rec["white_level"] = float(white_level)
    return rec


@register_stage
@dataclass(frozen=True)
class InverseBlackLevel(Stage):
    """Map a normalised mosaic back to raw counts (the inverse of :class:`~ispkit.stages.BlackLevel`).

    Parameters
    ----------
    black_level : (4,) black levels to restore (raster order of the 2×2
        block); None uses the levels :class:`~ispkit.stages.BlackLevel`
        recorded in ``meta.extra["raw_levels"]``, else the frame's own.
    white_level : white level to restore (None: as above).

    Notes
    -----
    RAW_MOSAIC normalised float32 → RAW_MOSAIC raw counts float32 (not
    rounded); the metadata gets the restored ``black_level`` /
    ``white_level`` (and linearization table) back, ``white_point`` is
    cleared.
    """

    type_name = "inverse_black_level"
    black_level: tuple[float, float, float, float] | None = None
    white_level: float | None = None

    def __post_init__(self) -> None:
        if self.black_level is not None:
            b = tuple(float(v) for v in np.broadcast_to(np.asarray(self.black_level, dtype=np.float64).ravel(), (4,)))
            if not all(math.isfinite(v) for v in b):
                raise ParameterError(f"stage 'inverse_black_level': black_level must be finite, "
                                     f"got {self.black_level!r}")
            object.__setattr__(self, "black_level", b)
        if self.white_level is not None and not (isinstance(self.white_level, (int, float))
                                                 and math.isfinite(self.white_level)):
            raise ParameterError(f"stage 'inverse_black_level': white_level must be a finite number, "
                                 f"got {self.white_level!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        rec = _raw_levels(frame.meta, self.black_level, self.white_level)
        lut = rec.get("linearization_table")
        out = invert_black_level(frame.data, rec["black_level"], rec["white_level"],
                                 black_level_pattern=rec.get("black_level_pattern"), linearization_table=lut)
        extra = dict(frame.meta.extra)
        extra.pop(RAW_LEVELS_KEY, None)
        if rec.get("black_level_pattern") is not None:
            extra["black_level_pattern"] = rec["black_level_pattern"]
        return frame.replace(data=out, black_level=np.asarray(rec["black_level"], dtype=np.float64),
                             white_level=float(rec["white_level"]), linearization_table=lut, white_point=None,
                             extra=extra)

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.BlackLevel`."""
        from .black_level import BlackLevel

        return BlackLevel()


@register_stage
@dataclass(frozen=True)
class InverseWhiteBalance(Stage):
    """Undo a white balance: divide by the gains of ``meta.illuminant_rgb`` (what the forward stage applied).

    Parameters
    ----------
    method : where the illuminant comes from: ``"auto"`` (``meta.illuminant_rgb``
        — the forward stage records the illuminant it used, whatever its
        method — else the as-shot neutral ``1 / meta.wb_gains``),
        ``"illuminant"`` or ``"camera"`` (only those).
    normalize : the forward stage's gain normalisation (``"green"`` | ``"min"``).
    highlight_safe : Brooks et al.'s highlight-preserving inverse (H×W×3
        frames only): bright pixels keep their saturation instead of turning
        into tinted raw values; exact below ``inflection``.
    inflection : mean level above which ``highlight_safe`` eases the gains to 1.

    Notes
    -----
    RAW_MOSAIC, RAW_PACKED, CAMERA_RGB or LINEAR_RGB float32, linear.
    Divides ``white_point`` and the ``noise_profile`` back.

    References
    ----------
    Brooks et al., CVPR 2019, §3.3.
    """

    type_name = "inverse_white_balance"
    method: str = "auto"
    normalize: str = "green"
    highlight_safe: bool = False
    inflection: float = 0.9

    def __post_init__(self) -> None:
        if self.method not in _INVERSE_WB_SOURCES:
            raise unknown_name("illuminant source", self.method, _INVERSE_WB_SOURCES, f"stage {self.type_name!r}")
        if self.normalize not in _NORMALIZE:
            raise unknown_name("gain normalisation", self.normalize, _NORMALIZE, f"stage {self.type_name!r}")
        if not isinstance(self.highlight_safe, (bool, np.bool_)):
            raise ParameterError(f"stage {self.type_name!r}: highlight_safe must be True or False, "
                                 f"got {self.highlight_safe!r}")
        if not (isinstance(self.inflection, (int, float)) and 0.0 < self.inflection < 1.0):
            raise ParameterError(f"stage {self.type_name!r}: inflection must be in (0, 1), got {self.inflection!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.RAW_PACKED, Domain.CAMERA_RGB, Domain.LINEAR_RGB),
                         pointwise=not self.highlight_safe)

    def process(self, frame: Frame) -> Frame:
        m = frame.meta
        gains = white_balance_gains(self.illuminant_for(m), self.normalize)
        safe = self.highlight_safe and frame.data.ndim == 3 and frame.data.shape[2] == 3
        out = invert_white_balance(frame.data, gains, cfa_pattern=m.cfa_pattern, highlight_safe=safe,
                                   inflection=self.inflection)
        changes: dict[str, Any] = {}
        if m.white_point is not None:
            changes["white_point"] = np.asarray(m.white_point) / gains
        if m.noise_profile is not None:
            from .white_balance import _scale_noise_profile

            changes["noise_profile"] = _scale_noise_profile(m.noise_profile, 1.0 / gains)
        return frame.replace(data=out, **changes)

    def illuminant_for(self, meta: CaptureMetadata) -> np.ndarray:
        """The camera-native illuminant whose gains this stage divides by."""
        if self.method == "illuminant" or (self.method == "auto" and meta.illuminant_rgb is not None):
            return np.asarray(meta.require("illuminant_rgb", self.type_name), dtype=np.float64)
        from .white_balance import _camera_illuminant

        return _camera_illuminant(meta, self.type_name)

    def inverse(self) -> Stage:
        """A white balance by the same illuminant with the same normalisation."""
        from .white_balance import WhiteBalance

        method = "camera" if self.method == "camera" else "illuminant"
        return WhiteBalance(method=method, normalize=self.normalize)


@register_stage
@dataclass(frozen=True)
class InverseColorMatrix(Stage):
    """Map linear working-space RGB back to white-balanced camera RGB (inverse of :class:`ColorMatrix`).

    Parameters
    ----------
    output_space, source, ccm : those of the forward
        :class:`~ispkit.stages.ColorMatrix`; the matrix is rebuilt from the
        frame's metadata exactly as the forward stage built it, then inverted.

    Notes
    -----
    LINEAR_RGB → CAMERA_RGB, H×W×3 float32; clears ``meta.color_space``.
    A singular matrix raises :class:`~ispkit.errors.NotInvertibleError`.
    """

    type_name = "inverse_color_matrix"
    output_space: str = "sRGB"
    source: str = "auto"
    ccm: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        _check_space_param("InverseColorMatrix", "output_space", self.output_space)
        if self.source not in COLOR_SOURCES:
            raise unknown_name("color source", self.source, COLOR_SOURCES, "InverseColorMatrix.source")
        object.__setattr__(self, "ccm", _check_ccm(self.ccm))

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB,), out_domain=Domain.CAMERA_RGB, pointwise=True)

    def forward(self) -> ColorMatrix:
        """The forward stage this one undoes."""
        return ColorMatrix(output_space=self.output_space, source=self.source, ccm=self.ccm)

    def process(self, frame: Frame) -> Frame:
        matrix, _ = self.forward().matrix_for(frame.meta)
        out = apply_color_matrix(frame.data, _invertible_matrix(matrix, f"stage {self.type_name!r}"))
        return frame.replace(data=out, domain=Domain.CAMERA_RGB, color_space=None)

    def inverse(self) -> ColorMatrix:
        """The forward :class:`~ispkit.stages.ColorMatrix`."""
        return self.forward()


@register_stage
@dataclass(frozen=True)
class InverseToneCurve(Stage):
    """Undo a strictly increasing :class:`~ispkit.stages.ToneCurve` (see :func:`invert_tone_curve`).

    Notes
    -----
    Same domains and shape as the forward stage (per the ``space`` parameter).
    """

    type_name = "inverse_tone_curve"
    points: tuple = ((0.0, 0.0), (0.25, 0.3), (1.0, 1.0))
    space: str = "linear"

    def __post_init__(self) -> None:
        fwd = ToneCurve(points=self.points, space=self.space)  # validates
        object.__setattr__(self, "points", fwd.points)
        _strictly_monotone_points(fwd.points, f"stage {self.type_name!r}")

    @property
    def spec(self) -> StageSpec:
        return ToneCurve(points=self.points, space=self.space).spec

    def process(self, frame: Frame) -> Frame:
        if all(x == y for x, y in self.points):
            return frame
        return frame.replace(data=invert_tone_curve(frame.data, self.points))

    def inverse(self) -> ToneCurve:
        """The forward :class:`~ispkit.stages.ToneCurve`."""
        return ToneCurve(points=self.points, space=self.space)


@register_stage
@dataclass(frozen=True)
class InverseFilmic(Stage):
    """Undo a :class:`~ispkit.stages.Filmic` tone map (see :func:`invert_filmic`).

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB H×W×3 float32, values in [0, 1] → linear ≥ 0.
    """

    type_name = "inverse_filmic"
    method: str = "hable2010"
    exposure: float | None = None
    white: float | None = None

    def __post_init__(self) -> None:
        from .tone import Filmic

        Filmic(method=self.method, exposure=self.exposure, white=self.white)  # validates

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB, Domain.CAMERA_RGB), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=invert_filmic(frame.data, self.method, exposure=self.exposure, white=self.white))

    def inverse(self) -> Stage:
        """The forward :class:`~ispkit.stages.Filmic`."""
        from .tone import Filmic

        return Filmic(method=self.method, exposure=self.exposure, white=self.white)


@register_stage
@dataclass(frozen=True)
class InverseSigmoidToneMap(Stage):
    """Undo a :class:`~ispkit.stages.SigmoidToneMap` display transform (see :func:`invert_sigmoid_tone_map`).

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB display-linear H×W×3 float32 → scene-linear.
    """

    type_name = "inverse_sigmoid_tone_map"
    contrast: float = 1.5
    skew: float = 0.0
    white_target: float = 1.0
    black_target: float = 0.000152
    hue_preservation: float = 1.0
    hue_encoding: str = "srgb"

    def __post_init__(self) -> None:
        self.forward()  # validates
        if self.hue_preservation not in (0, 0.0, 1, 1.0):
            raise NotInvertibleError(f"stage {self.type_name!r}: hue_preservation={self.hue_preservation!r}; "
                                     "only 0 or 1 have a closed-form inverse")

    def forward(self) -> Stage:
        """The forward :class:`~ispkit.stages.SigmoidToneMap`."""
        from .display_transform import SigmoidToneMap

        return SigmoidToneMap(contrast=self.contrast, skew=self.skew, white_target=self.white_target,
                              black_target=self.black_target, hue_preservation=self.hue_preservation,
                              hue_encoding=self.hue_encoding)

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB, Domain.CAMERA_RGB), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=invert_sigmoid_tone_map(
            frame.data, self.contrast, self.skew, white_target=self.white_target, black_target=self.black_target,
            hue_preservation=self.hue_preservation, hue_encoding=self.hue_encoding))

    def inverse(self) -> Stage:
        """The forward :class:`~ispkit.stages.SigmoidToneMap`."""
        return self.forward()


@register_stage
@dataclass(frozen=True)
class InverseExposure(Stage):
    """Divide by the gain an :class:`~ispkit.stages.Exposure` stage applied (``2^(ev + baseline)``).

    Notes
    -----
    RAW_MOSAIC, CAMERA_RGB or LINEAR_RGB float32; ``white_point`` divided back.
    """

    type_name = "inverse_exposure"
    ev: float = 0.0
    use_baseline: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.ev, (int, float)) or not math.isfinite(self.ev) or abs(self.ev) > 16:
            raise ParameterError(f"stage 'inverse_exposure': ev must be a finite number of stops in [-16, 16], "
                                 f"got {self.ev!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.CAMERA_RGB, Domain.LINEAR_RGB), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        ev = exposure_gain_ev(frame.meta, self.ev, self.use_baseline)
        if ev == 0.0:
            return frame
        gain = 2.0 ** -ev
        wp = frame.meta.white_point
        changes = {"white_point": np.asarray(wp) * gain} if wp is not None else {}
        return frame.replace(data=np.multiply(frame.data, np.float32(gain), dtype=np.float32), **changes)

    def inverse(self) -> Stage:
        """The forward :class:`~ispkit.stages.Exposure`."""
        from .exposure import Exposure

        return Exposure(ev=self.ev, use_baseline=self.use_baseline)


def invert_highlight_reconstruction(mosaic: np.ndarray, cfa_pattern: str, white_point: Any) -> np.ndarray:
    """Clip each photosite of a white-balanced mosaic at its colour's white point.

    This undoes :func:`~ispkit.stages.highlights.reconstruct_opposed` on
    what a sensor can record. The reconstruction changes only photosites at
    or above ``clip × white_point`` (0.987 of it) and only raises them, so
    for a mosaic ``x`` read from a sensor (``x ≤ white_point``) the clip
    returns ``x`` exactly wherever ``x < clip × white_point`` and wherever
    ``x`` was saturated (``x = white_point``: rebuilt values lie at or above
    it). Only photosites in the narrow band between the two, which the
    reconstruction raised, come back within ``(1 − clip) × white_point`` of
    their value: the reconstruction overwrote that part of them.

    Parameters
    ----------
    mosaic : H×W white-balanced mosaic (the reconstruction's output).
    cfa_pattern : ``"RGGB" | "BGGR" | "GRBG" | "GBRG"``.
    white_point : (3,) per-colour saturation level of the white-balanced
        mosaic (``meta.white_point`` at the reconstruction's input), or a scalar.

    Notes
    -----
    RAW_MOSAIC H×W float32 in and out, white-balanced, scene-linear.

    References
    ----------
    H. Schwalm et al., darktable 4.2 ``src/iop/hlreconstruct/opposed.c`` (the
    forward method: clipped photosites raised to the opposed colours' level).
    """
    x = np.asarray(mosaic, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"invert_highlight_reconstruction: expected an H×W mosaic, got shape {x.shape}")
    wp = np.broadcast_to(np.asarray(white_point, dtype=np.float64).ravel(), (3,)) \
        if np.size(white_point) in (1, 3) else np.full(3, np.nan)
    if not np.all(np.isfinite(wp)) or np.any(wp <= 0):
        raise ParameterError(f"invert_highlight_reconstruction: white_point must be 1 or 3 positive finite values, "
                             f"got {np.ravel(white_point).tolist()}")
    levels = wp.astype(np.float32)[np.asarray(cfa_color_indices(cfa_pattern))]
    h, w = x.shape
    tile = np.tile(levels, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    return np.minimum(x, tile)


@register_stage
@dataclass(frozen=True)
class InverseHighlightReconstruction(Stage):
    """Undo :class:`~ispkit.stages.HighlightReconstruction`: clip at the sensor's white point.

    An exact left inverse on what a sensor records, away from the narrow band
    just below saturation (see :func:`invert_highlight_reconstruction`).

    Parameters
    ----------
    clip : the forward stage's ``clip`` (to read its recorded clip levels back).
    white_point : (3,) white point of the white-balanced mosaic; None reads it
        from the record the forward stage left in
        ``meta.extra["highlight_clip_levels"]`` (its clip levels ÷ ``clip``),
        else — for a display image with only the capture metadata — rebuilds
        it as the ``default`` preset's stages set it on a normalised frame
        (white 1): the exposure gain ``2**exposure_gain_ev(meta, ev,
        use_baseline)`` times the as-shot white-balance gains normalised by
        ``normalize``.
    normalize, ev, use_baseline : the forward white balance's gain
        normalisation and the forward :class:`~ispkit.stages.Exposure`'s
        parameters (the ``default`` preset's: ``"min"``, 0, True), used by
        that last fallback only.

    Notes
    -----
    RAW_MOSAIC → RAW_MOSAIC, white-balanced; sets ``white_point`` to the level
    used and drops the forward stage's records from ``meta.extra``.

    References
    ----------
    darktable 4.2 ``src/iop/hlreconstruct/opposed.c`` (the forward method).
    """

    type_name = "inverse_highlight_reconstruction"
    clip: float = OPPOSED_CLIP
    white_point: tuple[float, float, float] | None = None
    normalize: str = "min"
    ev: float = 0.0
    use_baseline: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.clip, bool) or not isinstance(self.clip, (int, float)) or not 0.5 <= self.clip <= 1.0:
            raise ParameterError(f"stage {self.type_name!r}: parameter 'clip' must be a fraction of the white "
                                 f"point in [0.5, 1], got {self.clip!r}")
        if self.white_point is not None:
            wp = np.broadcast_to(np.asarray(self.white_point, dtype=np.float64).ravel(), (3,))
            if not np.all(np.isfinite(wp)) or np.any(wp <= 0):
                raise ParameterError(f"stage {self.type_name!r}: parameter 'white_point' must be 3 positive "
                                     f"finite values, got {self.white_point!r}")
            object.__setattr__(self, "white_point", tuple(float(v) for v in wp))
        if self.normalize not in _NORMALIZE:
            raise unknown_name("gain normalisation", self.normalize, _NORMALIZE, f"stage {self.type_name!r}")
        if isinstance(self.ev, bool) or not isinstance(self.ev, (int, float)) or not abs(self.ev) <= 16:
            raise ParameterError(f"stage {self.type_name!r}: parameter 'ev' must be a finite number of stops in "
                                 f"[-16, 16], got {self.ev!r}")
        if not isinstance(self.use_baseline, (bool, np.bool_)):
            raise ParameterError(f"stage {self.type_name!r}: use_baseline must be True or False, "
                                 f"got {self.use_baseline!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",), provides=("white_point",),
                         pointwise=True)

    def white_point_for(self, meta: CaptureMetadata) -> np.ndarray:
        """The (3,) level this stage clips a frame with this metadata at."""
        if self.white_point is not None:
            return np.asarray(self.white_point, dtype=np.float64)
        record = meta.extra.get(HIGHLIGHT_CLIP_LEVELS_KEY)
        if record is not None:
            return np.asarray(record, dtype=np.float64).ravel() / float(self.clip)
        illum = InverseWhiteBalance(normalize=self.normalize).illuminant_for(meta)
        gain = 2.0 ** exposure_gain_ev(meta, float(self.ev), bool(self.use_baseline))
        return gain * white_balance_gains(illum, self.normalize)

    def process(self, frame: Frame) -> Frame:
        wp = self.white_point_for(frame.meta)
        out = invert_highlight_reconstruction(frame.data, frame.meta.cfa_pattern, wp)
        extra = {k: v for k, v in frame.meta.extra.items() if k not in (HIGHLIGHT_CLIP_LEVELS_KEY, "highlight_chroma")}
        return frame.replace(data=out, white_point=wp, extra=extra)

    def inverse(self) -> Stage:
        """The forward :class:`~ispkit.stages.HighlightReconstruction` (method ``"opposed"``)."""
        from .highlights import HighlightReconstruction

        return HighlightReconstruction(clip=self.clip)
