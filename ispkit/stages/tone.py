"""Global and local tone operators: curves, Reinhard, filmic, auto exposure, CLAHE, night tone.

Every operator is a function (``apply_tone_curve``, ``reinhard``, ``filmic``,
``auto_exposure``, ``local_contrast``, ``night_tone``) plus a stage. The
global operators work on scene-linear RGB (LINEAR_RGB or CAMERA_RGB) and
return the same domain; :class:`LocalContrast` works on DISPLAY_RGB.
Luminance is ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` (ITU-R BT.709 / sRGB
primaries; an approximation for camera RGB).

References
----------
E. Reinhard, M. Stark, P. Shirley, J. Ferwerda, "Photographic tone
reproduction for digital images", ACM TOG 21(3), 2002.
J. Hable, "Uncharted 2: HDR Lighting", GDC 2010, and "Filmic Tonemapping
Operators", filmicworlds.com, 2010.
K. Narkowicz, "ACES Filmic Tone Mapping Curve", knarkowicz.wordpress.com, 2016-01-06.
F. N. Fritsch, R. E. Carlson, "Monotone piecewise cubic interpolation",
SIAM J. Numer. Anal. 17(2), 1980 (scipy's PCHIP).
K. Zuiderveld, "Contrast limited adaptive histogram equalization", Graphics
Gems IV, 1994.
R. Lupton et al., "Preparing red-green-blue images from CCD data", PASP 116, 2004
(the asinh stretch of :func:`night_tone`).
"""

from __future__ import annotations

import functools

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels import tone as _k
from ._kernels.color import channel_max_rows
from ._kernels.scratch import recycled_empty, scratch
from ._kernels._parallel import threads_for

__all__ = [
    "LUMA_WEIGHTS",
    "FILMIC_METHODS",
    "LOCAL_CONTRAST_METHODS",
    "tone_curve_lut",
    "apply_tone_curve",
    "reinhard",
    "filmic",
    "exposure_gain",
    "auto_exposure",
    "local_contrast",
    "night_tone",
    "ToneCurve",
    "Reinhard",
    "Filmic",
    "AutoExposure",
    "LocalContrast",
    "NightTone",
]

log = logging.getLogger(__name__)

#: BT.709 / sRGB luminance weights.
LUMA_WEIGHTS: tuple[float, float, float] = (0.2126, 0.7152, 0.0722)
#: Filmic curves: Hable's Uncharted 2 operator and Narkowicz's ACES fit.
FILMIC_METHODS: frozenset[str] = frozenset({"hable2010", "narkowicz2016"})
#: Local contrast methods.
LOCAL_CONTRAST_METHODS: frozenset[str] = frozenset({"clahe"})

_HABLE_EXPOSURE = 2.0
_HABLE_WHITE = 11.2
_LINEAR_DOMAINS = (Domain.LINEAR_RGB, Domain.CAMERA_RGB)


# -- helpers ---------------------------------------------------------------

def _rgb_input(img: Any, where: str) -> np.ndarray:
    """float32 C-contiguous (..., 3) copy-free view when possible; non-finite → InputError."""
    arr = np.asarray(img)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise InputError(f"{where}: expected an RGB array of shape (..., 3), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{where}: expected a real numeric array, got dtype {arr.dtype}")
    arr = _readonly(np.ascontiguousarray(arr, dtype=np.float32))
    if arr.size and _run(_k.count_nonfinite, arr.size, arr.reshape(-1)):
        raise InputError(f"{where}: input holds NaN or inf values; fix or mask them first")
    return arr


def _run(kernel: Any, n_items: int, *args: Any) -> Any:
    """Call a parallel kernel, on one thread when the input is small (see ``_kernels._parallel``)."""
    with threads_for(n_items):
        return kernel(*args)


def _readonly(arr: np.ndarray) -> np.ndarray:
    """A read-only view, so the kernels compile one signature for frames and plain arrays."""
    if arr.flags.writeable:
        arr = arr.view()
        arr.setflags(write=False)
    return arr


def _flat_input(img: Any, where: str) -> np.ndarray:
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{where}: expected a real numeric array, got dtype {arr.dtype}")
    arr = _readonly(np.ascontiguousarray(arr, dtype=np.float32))
    if arr.size and _run(_k.count_nonfinite, arr.size, arr.reshape(-1)):
        raise InputError(f"{where}: input holds NaN or inf values; fix or mask them first")
    return arr


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _param_error(stage: str, param: str, value: Any, expected: str) -> ParameterError:
    return ParameterError(f"stage {stage!r}: parameter {param!r} must be {expected}, got {value!r}")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    flat = rgb.reshape(-1, 3)
    out = np.empty(flat.shape[0], dtype=np.float32)
    if flat.shape[0]:
        _run(_k.luminance, flat.size, flat, out, *LUMA_WEIGHTS)
    return out.reshape(rgb.shape[:-1])


# -- tone curve ------------------------------------------------------------

def _check_points(points: Any, where: str) -> tuple[tuple[float, float], ...]:
    try:
        pts = tuple((float(p[0]), float(p[1])) for p in points)
        ok = all(len(p) == 2 for p in points)
    except (TypeError, ValueError, IndexError):
        ok, pts = False, ()
    if not ok or len(pts) < 2 or not all(math.isfinite(a) and math.isfinite(b) for a, b in pts):
        raise ParameterError(
            f"{where}: parameter 'points' must be at least two finite (x, y) pairs, got {points!r}")
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ParameterError(f"{where}: parameter 'points' needs strictly increasing x, got x = {xs}")
    if any(b < a for a, b in zip(ys, ys[1:])):
        raise ParameterError(
            f"{where}: parameter 'points' must be monotone (y non-decreasing with x) for a tone curve "
            f"that keeps the order of tones, got y = {ys}")
    return pts


def tone_curve_lut(points: Any, lut_size: int = 4096) -> tuple[np.ndarray, float, float, float, float]:
    """Sample the monotone cubic (PCHIP) through ``points`` on a uniform grid.

    Returns
    -------
    lut, x0, x1, slope_lo, slope_hi : the float32 samples over [x0, x1]
        (first and last control x) and the curve's end slopes, used to
        extend it linearly outside the control range.

    References
    ----------
    Fritsch & Carlson 1980; scipy.interpolate.PchipInterpolator.
    """
    pts = _check_points(points, "tone_curve_lut")
    if isinstance(lut_size, bool) or not isinstance(lut_size, int) or lut_size < 2:
        raise ParameterError(f"tone_curve_lut: parameter 'lut_size' must be an int >= 2, got {lut_size!r}")
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    from scipy.interpolate import PchipInterpolator  # noqa: PLC0415  (≈1 s: only when a curve is built)

    f = PchipInterpolator(xs, ys, extrapolate=False)
    grid = np.linspace(xs[0], xs[-1], lut_size)
    lut = f(grid).astype(np.float32)
    d = f.derivative()
    return lut, float(xs[0]), float(xs[-1]), float(d(xs[0])), float(d(xs[-1]))


def apply_tone_curve(img: Any, points: Any, *, lut_size: int = 4096) -> np.ndarray:
    """Map every value through the monotone cubic curve through ``points``.

    Parameters
    ----------
    img : array of any shape (applied per value, i.e. per channel).
    points : (x, y) control points, x strictly increasing, y non-decreasing.
    lut_size : samples of the dense LUT (linear interpolation between them).

    Notes
    -----
    Any shape float → float32 of the same shape. Outside the control range
    the curve continues linearly with its end slope (values above 1 stay
    meaningful). Max deviation from the exact PCHIP is below 1e-6 for
    curves on [0, 1] with the default LUT.

    References
    ----------
    Fritsch & Carlson 1980 (monotone piecewise cubic interpolation).
    """
    arr = _flat_input(img, "apply_tone_curve")
    lut, x0, x1, slo, shi = tone_curve_lut(points, lut_size)
    out = np.empty_like(arr)
    if arr.size:
        _run(_k.lut_apply, arr.size, arr.reshape(-1), out.reshape(-1), lut, x0, x1, slo, shi)
    return out


@register_stage
@dataclass(frozen=True)
class ToneCurve(Stage):
    """Apply a fixed monotone tone curve through control points.

    Parameters
    ----------
    points : ((x, y), ...) control points; x strictly increasing, y
        non-decreasing (a non-monotone curve raises ParameterError).
    space : ``"linear"`` (LINEAR_RGB / CAMERA_RGB frames) or ``"display"``
        (DISPLAY_RGB frames): the encoding the points are written in.

    Notes
    -----
    H×W×3 float32 → same domain and shape, per channel. An identity curve
    (all points on y = x) returns the frame untouched.
    """

    type_name = "tone_curve"
    points: tuple = ((0.0, 0.0), (0.25, 0.3), (1.0, 1.0))
    space: str = "linear"

    def __post_init__(self) -> None:
        where = f"stage {self.type_name!r}"
        object.__setattr__(self, "points", _check_points(self.points, where))
        if self.space not in ("linear", "display"):
            raise unknown_name("tone curve space", self.space, ("linear", "display"),
                               f"{where} parameter 'space'")

    @property
    def is_identity(self) -> bool:
        """Whether every control point lies on y = x."""
        return all(x == y for x, y in self.points)

    @property
    def spec(self) -> StageSpec:
        domains = _LINEAR_DOMAINS if self.space == "linear" else (Domain.DISPLAY_RGB,)
        return StageSpec(in_domains=domains, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        if self.is_identity:
            return frame
        return frame.replace(data=apply_tone_curve(frame.data, self.points))

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseToneCurve`; a curve with a flat part raises NotInvertibleError."""
        from .inverses import InverseToneCurve

        return InverseToneCurve(points=self.points, space=self.space)


# -- Reinhard --------------------------------------------------------------

def reinhard(img: Any, key: float = 0.18, white: float | None = None, *,
             log_average: float | None = None) -> np.ndarray:
    """Reinhard et al.'s global photographic operator on luminance, keeping hue.

    Parameters
    ----------
    img : (..., 3) linear RGB.
    key : the key value ``a``: the log-average luminance is mapped to it.
    white : ``L_white`` in scaled units (eq. 4): the smallest scaled
        luminance mapped to 1. ``None`` uses eq. 3, ``L / (1 + L)``.
    log_average : use this instead of the image's log-average luminance
        (e.g. to keep a sequence stable).

    Notes
    -----
    (..., 3) float → float32, linear. ``L = key / L̄ · Y``,
    ``L_d = L (1 + L / white²) / (1 + L)``, RGB scaled by ``L_d / Y`` (hue and
    saturation kept; saturated colours may exceed 1). Negative luminance is
    treated as 0 when computing the ratio.

    References
    ----------
    Reinhard, Stark, Shirley, Ferwerda, ACM TOG 21(3), 2002, eqs. 1–4.
    """
    if not _is_number(key) or key <= 0:
        raise ParameterError(f"reinhard: parameter 'key' must be a number > 0, got {key!r}")
    if white is not None and (not _is_number(white) or white <= 0):
        raise ParameterError(f"reinhard: parameter 'white' must be None or a number > 0, got {white!r}")
    rgb = _rgb_input(img, "reinhard")
    flat = rgb.reshape(-1, 3)
    out = np.empty_like(rgb)
    if not flat.shape[0]:
        return out
    if log_average is None:
        log_average = float(_run(_k.log_mean, flat.size, flat, *LUMA_WEIGHTS, 1e-6))
    elif not _is_number(log_average) or log_average <= 0:
        raise ParameterError(f"reinhard: parameter 'log_average' must be a number > 0, got {log_average!r}")
    scale = key / max(log_average, 1e-12)
    inv_white2 = 0.0 if white is None else 1.0 / (white * white)
    _run(_k.reinhard_rgb, flat.size, flat, out.reshape(-1, 3), *LUMA_WEIGHTS, scale, inv_white2)
    return out


@register_stage
@dataclass(frozen=True)
class Reinhard(Stage):
    """Tone-map with Reinhard et al.'s global operator (luminance-based, hue kept).

    Parameters
    ----------
    key : key value (0.18 = average scene).
    white : scaled luminance mapped to 1 (None: ``L / (1 + L)``).

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB H×W×3 float32 → same domain.

    References
    ----------
    Reinhard et al., ACM TOG 21(3), 2002.
    """

    type_name = "reinhard"
    key: float = 0.18
    white: float | None = None

    def __post_init__(self) -> None:
        if not _is_number(self.key) or self.key <= 0:
            raise _param_error(self.type_name, "key", self.key, "a number > 0")
        if self.white is not None and (not _is_number(self.white) or self.white <= 0):
            raise _param_error(self.type_name, "white", self.white, "None or a number > 0")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=_LINEAR_DOMAINS)

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=reinhard(frame.data, self.key, self.white))


# -- filmic ----------------------------------------------------------------

def filmic(img: Any, method: str = "hable2010", *, exposure: float | None = None,
           white: float | None = None) -> np.ndarray:
    """Apply a filmic (S-shaped, film-like) tone curve per channel.

    Parameters
    ----------
    img : array of linear values (any shape, applied per value).
    method : ``"hable2010"`` — John Hable's Uncharted 2 operator
        ``f(x) = ((x(Ax+CB)+DE)/(x(Ax+B)+DF)) - E/F`` with A=0.15, B=0.50,
        C=0.10, D=0.20, E=0.02, F=0.30, output ``f(exposure·x)/f(white)``
        (defaults exposure 2.0 = his ExposureBias, white 11.2);
        ``"narkowicz2016"`` — Krzysztof Narkowicz's fit of the ACES RRT+ODT,
        ``x(2.51x+0.03)/(x(2.43x+0.59)+0.14)`` (pre-exposed: 1 → ~0.8;
        ``exposure=0.6`` gives the original ACES brightness; no ``white``).
    exposure : multiplier applied before the curve (None: the method default).
    white : Hable's linear white point (None: 11.2).

    Notes
    -----
    Any shape float → float32, linear, clipped to [0, 1]; negatives → 0.

    References
    ----------
    Hable, "Filmic Tonemapping Operators", 2010; Narkowicz, "ACES Filmic Tone
    Mapping Curve", 2016.
    """
    if not isinstance(method, str) or method not in FILMIC_METHODS:
        raise unknown_name("filmic method", method, FILMIC_METHODS, "filmic")
    if exposure is not None and (not _is_number(exposure) or exposure <= 0):
        raise ParameterError(f"filmic: parameter 'exposure' must be None or a number > 0, got {exposure!r}")
    if white is not None:
        if method != "hable2010":
            raise ParameterError(f"filmic: parameter 'white' applies to method 'hable2010' only, got "
                                 f"white={white!r} with method {method!r}")
        if not _is_number(white) or white <= 0:
            raise ParameterError(f"filmic: parameter 'white' must be None or a number > 0, got {white!r}")
    arr = _flat_input(img, "filmic")
    out = np.empty_like(arr)
    if not arr.size:
        return out
    if method == "hable2010":
        _run(_k.hable_rgb, arr.size, arr.reshape(-1), out.reshape(-1),
                     _HABLE_EXPOSURE if exposure is None else exposure,
                     _HABLE_WHITE if white is None else white)
    else:
        _run(_k.narkowicz_rgb, arr.size, arr.reshape(-1), out.reshape(-1), 1.0 if exposure is None else exposure)
    return out


@register_stage
@dataclass(frozen=True)
class Filmic(Stage):
    """Tone-map with a filmic curve (Hable 2010 or Narkowicz's ACES fit 2016).

    Parameters
    ----------
    method : ``"hable2010"`` or ``"narkowicz2016"`` (see :func:`filmic`).
    exposure : pre-curve multiplier (None: method default).
    white : Hable's linear white (None: 11.2).

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB H×W×3 float32 → same domain, values in [0, 1].
    """

    type_name = "filmic"
    method: str = "hable2010"
    exposure: float | None = None
    white: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in FILMIC_METHODS:
            raise unknown_name("filmic method", self.method, FILMIC_METHODS,
                               f"stage {self.type_name!r} parameter 'method'")
        if self.exposure is not None and (not _is_number(self.exposure) or self.exposure <= 0):
            raise _param_error(self.type_name, "exposure", self.exposure, "None or a number > 0")
        if self.white is not None and (self.method != "hable2010" or not _is_number(self.white)
                                       or self.white <= 0):
            raise _param_error(self.type_name, "white", self.white,
                               "None or a number > 0 (method 'hable2010' only)")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=_LINEAR_DOMAINS, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=filmic(frame.data, self.method, exposure=self.exposure, white=self.white))

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseFilmic` (exact below the clipped white)."""
        from .inverses import InverseFilmic

        return InverseFilmic(method=self.method, exposure=self.exposure, white=self.white)


# -- auto exposure ---------------------------------------------------------

def exposure_gain(img: Any, percentile: float = 97.0, target: float = 0.9, *,
                  max_gain: float | None = None, noise_floor: float = 0.0,
                  exclude: np.ndarray | None = None) -> float:
    """Return the gain that maps the ``percentile`` of luminance to ``target``.

    Parameters
    ----------
    img : (..., 3) linear RGB.
    percentile, target : the luminance percentile and the level it maps to.
    max_gain : upper bound of the gain (None: unbounded).
    noise_floor : the anchor level is taken as at least this (e.g. a
        multiple of the read-noise σ), so a frame holding only noise (a
        lens-cap shot) is not pushed until its noise fills the range.
    exclude : optional H×W mask of pixels left out of the percentile (lamps
        and their glow, see :class:`AutoExposure`).

    Notes
    -----
    Returns 1.0 (and logs at INFO) when the anchor level is not positive (a
    black frame). Images above 2 MP are sampled on every k-th row and
    column, k = floor(sqrt(pixels / 1 M)) (12 MP: k = 3, 1.3 M samples).
    """
    return _exposure_gain(img, percentile, target, max_gain, noise_floor, exclude)[0]


#: about this many pixels are sampled (every k-th row and column) for the exposure percentile and lamp mask.
_EXPOSURE_SAMPLES = 1_000_000


def _sample_step(height: int, width: int) -> int:
    """Row and column step that leaves about :data:`_EXPOSURE_SAMPLES` pixels (1: all of a small frame)."""
    return max(1, int(math.sqrt(height * width / _EXPOSURE_SAMPLES)))


def _exposure_gain(img: Any, percentile: float, target: float, max_gain: float | None,
                   noise_floor: float, exclude: np.ndarray | None = None) -> tuple[float, str | None]:
    """The gain and what limited it: None, ``"noise_floor"`` or ``"max_gain"``."""
    if not _is_number(percentile) or not 0 < percentile <= 100:
        raise ParameterError(f"exposure_gain: parameter 'percentile' must be in (0, 100], got {percentile!r}")
    if not _is_number(target) or target <= 0:
        raise ParameterError(f"exposure_gain: parameter 'target' must be a number > 0, got {target!r}")
    if max_gain is not None and (not _is_number(max_gain) or not max_gain > 0):
        raise ParameterError(f"exposure_gain: parameter 'max_gain' must be None or a number > 0, got {max_gain!r}")
    if not _is_number(noise_floor) or not noise_floor >= 0:
        raise ParameterError(f"exposure_gain: parameter 'noise_floor' must be a number >= 0, got {noise_floor!r}")
    rgb = _rgb_input(img, "exposure_gain")
    step = _sample_step(*rgb.shape[:2]) if rgb.ndim == 3 else 1
    if step > 1:  # ~1 M samples: the percentile moves by far less than a code value
        if exclude is not None and np.shape(exclude) == rgb.shape[:2]:
            exclude = np.asarray(exclude)[::step, ::step]   # a full-size mask; AutoExposure passes it sampled
        rgb = rgb[::step, ::step]
    lum = _luminance(rgb)
    if exclude is not None:
        keep = ~np.asarray(exclude, dtype=bool)
        if keep.shape != lum.shape:
            raise InputError(f"exposure_gain: exclude mask has shape {keep.shape}, the image {lum.shape}")
        lum = lum[keep] if keep.any() else lum
    lum = lum.reshape(-1)
    if not lum.size:
        return 1.0, None
    level = float(np.percentile(lum, percentile))
    limit = None
    if level < noise_floor:
        level, limit = float(noise_floor), "noise_floor"
    if level <= 0:
        log.info("auto exposure: the %g-th luminance percentile is %g (not positive); gain left at 1",
                 percentile, level)
        return 1.0, None
    gain = float(target) / level
    if max_gain is not None and gain > max_gain:
        gain, limit = float(max_gain), "max_gain"
    return gain, limit


def auto_exposure(img: Any, percentile: float = 97.0, target: float = 0.9) -> np.ndarray:
    """Scale linear RGB so the ``percentile`` of its luminance lands on ``target``.

    Notes
    -----
    (..., 3) float → float32, linear, not clipped.
    """
    gain = exposure_gain(img, percentile, target)
    rgb = _rgb_input(img, "auto_exposure")
    return np.multiply(rgb, np.float32(gain), dtype=np.float32)


def _lamp_mask(frame: Frame) -> np.ndarray:
    """Clipped light sources of a linear RGB frame grown by their glow (H×W uint8)."""
    from ._sources import glow_mask

    wp = frame.meta.white_point
    level = 0.98 * (float(np.min(wp)) if wp is not None else 1.0)
    d = frame.data
    step = _sample_step(*d.shape[:2])  # the pixels the exposure percentile samples
    d = d[::step, ::step]
    d = np.ascontiguousarray(d, dtype=np.float32)
    peak = np.empty(d.shape[:2], dtype=np.float32)
    _run(channel_max_rows, d.size, _readonly(d), peak)
    return glow_mask(peak >= np.float32(level), 0.005 * max(d.shape[:2]))


def _read_noise_sigma(profile: Any) -> float:
    """Read-noise σ (√offset of the green or only pair) of a noise profile, 0 when unknown."""
    if not profile:
        return 0.0
    pairs = list(profile)
    scale_offset = pairs[1] if len(pairs) >= 3 else pairs[0]
    return math.sqrt(max(float(scale_offset[1]), 0.0))


@register_stage
@dataclass(frozen=True)
class AutoExposure(Stage):
    """Scale the frame so a luminance percentile maps to a target level.

    Parameters
    ----------
    percentile : luminance percentile to anchor (97 keeps a few highlights above).
    target : the level it maps to.
    max_gain : cap of the gain (None: no cap). Night frames are pushed
        hard; a cap keeps a frame with almost no signal dark.
    min_snr : the anchor level is at least ``min_snr`` × the read-noise σ
        from ``meta.noise_profile`` (0: off), so noise alone never sets
        the exposure.
    exclude_lamps : leave light sources out of the percentile: pixels with a
        channel at 0.98 × ``min(meta.white_point)`` or more, grown by a
        disc of 6× each region's radius (their glow), so street lights
        do not set the exposure of a night scene.

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB H×W×3 float32 → same domain. The gain is stored
    in ``meta.extra["exposure_gain"]``, and what limited it (None,
    ``"noise_floor"`` or ``"max_gain"``) in ``meta.extra["exposure_gain_limit"]``;
    ``meta.white_point`` is scaled by the gain.
    """

    type_name = "auto_exposure"
    percentile: float = 97.0
    target: float = 0.9
    max_gain: float | None = None
    min_snr: float = 0.0
    exclude_lamps: bool = False

    def __post_init__(self) -> None:
        if not _is_number(self.percentile) or not 0 < self.percentile <= 100:
            raise _param_error(self.type_name, "percentile", self.percentile, "a number in (0, 100]")
        if not _is_number(self.target) or self.target <= 0:
            raise _param_error(self.type_name, "target", self.target, "a number > 0")
        if self.max_gain is not None and (not _is_number(self.max_gain) or not self.max_gain > 0):
            raise _param_error(self.type_name, "max_gain", self.max_gain, "None or a number > 0")
        if not _is_number(self.min_snr) or not 0 <= self.min_snr <= 1e6:
            raise _param_error(self.type_name, "min_snr", self.min_snr, "a number in [0, 1e6]")
        if not isinstance(self.exclude_lamps, (bool, np.bool_)):
            raise _param_error(self.type_name, "exclude_lamps", self.exclude_lamps, "true or false")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=_LINEAR_DOMAINS)

    def gain_for(self, frame: Frame) -> tuple[float, str | None]:
        """The gain this stage applies to ``frame`` and what limited it (None, "noise_floor", "max_gain")."""
        floor = float(self.min_snr) * _read_noise_sigma(frame.meta.noise_profile)
        exclude = _lamp_mask(frame) if self.exclude_lamps else None
        return _exposure_gain(frame.data, self.percentile, self.target, self.max_gain, floor, exclude)

    @staticmethod
    def output_meta(meta: CaptureMetadata, gain: float, limit: str | None) -> CaptureMetadata:
        """``meta`` after a gain: recorded in ``extra``, the white point scaled."""
        extra = dict(meta.extra)
        extra["exposure_gain"] = gain
        extra["exposure_gain_limit"] = limit
        wp = meta.white_point
        changes = {"white_point": np.asarray(wp) * gain} if wp is not None else {}
        return meta.replace(extra=extra, **changes)

    def process(self, frame: Frame) -> Frame:
        gain, limit = self.gain_for(frame)
        out = np.multiply(frame.data, np.float32(gain), dtype=np.float32)
        return frame.replace(data=out, meta=self.output_meta(frame.meta, gain, limit))


# -- local contrast (CLAHE) ------------------------------------------------

def _clahe_levels(height: int, width: int, tiles: int) -> int:
    """Histogram levels for CLAHE: a power of two in [256, 4096] with >= 8 samples per bin per tile."""
    area = max(1, (height // tiles) * (width // tiles))
    levels = 256
    while levels < 4096 and area >= 16 * levels:
        levels *= 2
    return levels


def local_contrast(img: Any, method: str = "clahe", *, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Boost local contrast of display RGB with CLAHE on the L channel of CIELAB.

    Parameters
    ----------
    img : H×W×3 display (sRGB-encoded) RGB in [0, 1] (clipped to it).
    method : ``"clahe"``.
    clip_limit : histogram clip limit relative to the mean bin count, as in
        OpenCV's 8-bit CLAHE (2.0 = its customary value).
    tiles : the image is split into tiles × tiles regions.

    Notes
    -----
    H×W×3 float → float32 in [0, 1]; a and b are kept. L is quantised to
    ``n`` levels (a power of two from 256 to 4096, as many as the tile size
    fills with at least 8 samples per bin on average) placed every
    ``65536 / n`` codes of OpenCV's 16-bit CLAHE, with the clip limit scaled
    by the same step so it means what it means in OpenCV's 8-bit CLAHE. Large
    images thus get up to 12-bit input resolution and a 16-bit mapping
    instead of 8-bit banding; small ones behave like the 8-bit version.

    References
    ----------
    Zuiderveld, "Contrast limited adaptive histogram equalization", Graphics
    Gems IV, 1994; OpenCV ``cv::CLAHE``.
    """
    if not isinstance(method, str) or method not in LOCAL_CONTRAST_METHODS:
        raise unknown_name("local contrast method", method, LOCAL_CONTRAST_METHODS, "local_contrast")
    if not _is_number(clip_limit) or clip_limit <= 0:
        raise ParameterError(f"local_contrast: parameter 'clip_limit' must be a number > 0, got {clip_limit!r}")
    if isinstance(tiles, bool) or not isinstance(tiles, int) or not 1 <= tiles <= 256:
        raise ParameterError(f"local_contrast: parameter 'tiles' must be an int in [1, 256], got {tiles!r}")
    rgb = _rgb_input(img, "local_contrast")
    if rgb.ndim != 3:
        raise InputError(f"local_contrast: expected an H×W×3 image, got shape {rgb.shape}")
    if rgb.size == 0:
        return rgb.copy()
    import cv2  # noqa: PLC0415

    h, w = rgb.shape[:2]
    # full-frame temporaries come from reused scratch buffers (fresh pages are slow to fault in)
    clipped = np.clip(rgb, 0.0, 1.0, out=scratch("local_contrast.rgb", rgb.shape))
    lab = cv2.cvtColor(clipped, cv2.COLOR_RGB2Lab, dst=scratch("local_contrast.lab", rgb.shape))
    levels = _clahe_levels(h, w, tiles)
    step = 65536 // levels
    light = cv2.extractChannel(lab, 0, dst=scratch("local_contrast.light", (h, w)))  # contiguous L*
    np.clip(light, 0.0, 100.0, out=light)
    light *= np.float32((levels - 1) / 100.0)
    np.rint(light, out=light)
    code = scratch("local_contrast.code", (h, w), np.uint16)
    np.copyto(code, light, casting="unsafe")
    code *= np.uint16(step)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit) * step, tileGridSize=(tiles, tiles))
    mapped = clahe.apply(code, dst=scratch("local_contrast.mapped", (h, w), np.uint16))
    np.multiply(mapped, np.float32(100.0 / 65535.0), out=light, dtype=np.float32)
    cv2.insertChannel(light, lab, 0)
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=recycled_empty(rgb.shape, np.float32))
    np.clip(out, 0.0, 1.0, out=out)
    return out


@register_stage
@dataclass(frozen=True)
class LocalContrast(Stage):
    """Enhance local contrast with CLAHE on CIELAB lightness.

    Parameters
    ----------
    method : ``"clahe"``.
    clip_limit : contrast limit (relative to the mean histogram bin).
    tiles : tiles per side.

    Notes
    -----
    DISPLAY_RGB H×W×3 float32 → DISPLAY_RGB in [0, 1].

    References
    ----------
    Zuiderveld 1994; OpenCV ``cv::CLAHE``.
    """

    type_name = "local_contrast"
    method: str = "clahe"
    clip_limit: float = 2.0
    tiles: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in LOCAL_CONTRAST_METHODS:
            raise unknown_name("local contrast method", self.method, LOCAL_CONTRAST_METHODS,
                               f"stage {self.type_name!r} parameter 'method'")
        if not _is_number(self.clip_limit) or self.clip_limit <= 0:
            raise _param_error(self.type_name, "clip_limit", self.clip_limit, "a number > 0")
        if isinstance(self.tiles, bool) or not isinstance(self.tiles, int) or not 1 <= self.tiles <= 256:
            raise _param_error(self.type_name, "tiles", self.tiles, "an int in [1, 256]")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.DISPLAY_RGB,))

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=local_contrast(frame.data, self.method, clip_limit=self.clip_limit,
                                                 tiles=self.tiles))


# -- night tone ------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _night_ratio_table(shadows: float) -> np.ndarray:
    table = _k.night_ratio_table(shadows)
    table.setflags(write=False)
    return table


def night_tone(img: Any, shadows: float = 8.0, highlights: float = 0.35) -> np.ndarray:
    """Lift shadows and roll off highlights for night scenes, keeping light sources below 1.

    Parameters
    ----------
    img : (..., 3) linear RGB, nominally [0, 1], light sources may be far above.
    shadows : strength ``s`` of the shadow lift (>= 0; 0 = none). Luminance
        ``Y`` becomes ``asinh(s·Y) / asinh(s)``: linear near black with slope
        ``s / asinh(s)`` (×2.9 for 8), logarithmic in the mid-tones, 1 → 1.
        The lift is applied as an RGB ratio, so hue and saturation are kept.
    highlights : width of the shoulder, in (0, 1): each channel ``u`` above
        the knee ``k = 1 - highlights`` becomes
        ``k + (1 - k)(1 - exp(-(u - k)/(1 - k)))`` — C¹ at the knee and
        asymptotic to 1, so bright lamps roll off instead of clipping.

    Notes
    -----
    (..., 3) float → float32 in (-inf, 1). The design: night frames are mostly
    dark with small, very bright sources; a log-like (asinh) lift shows the
    dark scene without a large gain that would blow out the lamps, and the
    exponential shoulder compresses whatever still exceeds the knee while
    keeping the order of tones (both parts are increasing).

    References
    ----------
    Lupton et al., PASP 116, 2004 (asinh stretch).
    """
    if not _is_number(shadows) or shadows < 0 or shadows > 1e6:
        raise ParameterError(f"night_tone: parameter 'shadows' must be a number in [0, 1e6], got {shadows!r}")
    if not _is_number(highlights) or not 0 < highlights < 1:
        raise ParameterError(f"night_tone: parameter 'highlights' must be in (0, 1), got {highlights!r}")
    rgb = _rgb_input(img, "night_tone")
    out = np.empty_like(rgb)
    flat = rgb.reshape(-1, 3)
    if flat.shape[0]:
        _run(_k.night_tone_rgb, flat.size, flat, out.reshape(-1, 3), *LUMA_WEIGHTS, float(shadows),
             1.0 - float(highlights), _night_ratio_table(float(shadows)))
    return out


@register_stage
@dataclass(frozen=True)
class NightTone(Stage):
    """Night-friendly global tone curve: asinh shadow lift plus a soft highlight shoulder.

    Parameters
    ----------
    shadows : shadow lift strength (0 = none); see :func:`night_tone`.
    highlights : shoulder width in (0, 1); larger compresses more.

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB H×W×3 float32 → same domain, values below 1.
    """

    type_name = "night_tone"
    shadows: float = 8.0
    highlights: float = 0.35

    def __post_init__(self) -> None:
        if not _is_number(self.shadows) or not 0 <= self.shadows <= 1e6:
            raise _param_error(self.type_name, "shadows", self.shadows, "a number in [0, 1e6]")
        if not _is_number(self.highlights) or not 0 < self.highlights < 1:
            raise _param_error(self.type_name, "highlights", self.highlights, "a number in (0, 1)")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=_LINEAR_DOMAINS, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=night_tone(frame.data, self.shadows, self.highlights))
