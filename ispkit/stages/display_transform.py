"""Display transform: a log-logistic ("sigmoid") tone curve with highlight roll-off.

Scene-linear values run from 0 to far above 1 (a +2.65 EV DNG baseline
exposure puts a bright sky at 3–6); a display shows [0, 1]. Clipping there
blows every highlight to white. :func:`sigmoid_tone_map` maps [0, ∞) onto
[black target, white target] with a smooth shoulder, after darktable's
scene-referred "sigmoid" module (Schwalm / Eriksson, darktable 4.2):

    f(x) = m · ( (x + fog)^p / ((x + fog)^p + e) )^q

a generalised log-logistic curve ("film" power ``p``, "paper" power ``q``,
"paper exposure" ``e``, "film fog" ``fog``, magnitude ``m``). The four
constants are solved (:func:`sigmoid_parameters`) so that

* f(0) = ``black_target``, f(∞) = ``white_target``;
* scene middle grey 0.1845 maps to display 0.1845 (sRGB code 119 of 255);
* the slope at middle grey is that of the unskewed curve with
  ``p = contrast`` (``skew`` moves contrast between shadows and highlights
  without changing it at grey; ``q = 5^-skew``).

Colour: the curve runs per channel (so bright saturated colours desaturate
toward white as film does), then each channel is moved back to its input's
place between the pixel's smallest and largest channel (``hue_preservation``
= 1 keeps the hue fully). Equal channels give equal outputs, so greys stay
exactly neutral. Negative (out-of-gamut) values are first desaturated toward
the pixel's mean until the smallest channel is 0, as darktable does.

Deviations from darktable: (1) its hue correction (≥ 4.4) additionally
rebalances the channels to keep the per-channel result's channel sum
("energy"); this module keeps the plain middle-channel correction of
darktable 4.2. (2) By default (``hue_encoding="srgb"``) the middle channel is
placed between the smallest and largest in sRGB-encoded values rather than
display-linear ones, so the hue fraction (mid − min) / (max − min) of the
8-bit output equals that of the scene-linear input; the fused 8-bit render
then reads the curve (composed with the OETF) for two channels per pixel and
needs no OETF table. The darktable-like display-linear placement
(``hue_encoding="linear"``) runs stage by stage.

References
----------
darktable user manual 4.x, "processing modules › sigmoid"
(docs.darktable.org/usermanual/4.6/en/module-reference/processing-modules/sigmoid/).
darktable source ``src/iop/sigmoid.c`` (2022–2023): ``generalized_loglogistic_sigmoid``,
the parameter solution in ``commit_params`` (defaults contrast 1.5, skew 0,
target black 0.0152 %, target white 100 %, middle grey 0.1845, per-channel
processing with 100 % hue preservation), ``negative_values``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels._parallel import threads_for
from ._kernels.sigmoid import sigmoid_rgb
from .gamma import gamma_compress_reference, gamma_expand

__all__ = ["SIGMOID_GREY", "HUE_ENCODINGS", "SigmoidParameters", "sigmoid_parameters", "loglogistic_curve",
           "sigmoid_table", "sigmoid_tone_map", "SigmoidToneMap"]

#: Scene and display middle grey of the curve (darktable's ``MIDDLE_GREY``).
SIGMOID_GREY = 0.1845
#: Table size (intervals over u = x / (x + k)) of the tabulated curve.
TABLE_INTERVALS = 4096


class SigmoidParameters(NamedTuple):
    """Constants of f(x) = magnitude · ((x + fog)^p / ((x + fog)^p + paper_exposure))^q."""

    magnitude: float
    paper_exposure: float
    film_fog: float
    film_power: float
    paper_power: float


def loglogistic_curve(x: Any, params: SigmoidParameters) -> np.ndarray:
    """Evaluate the generalised log-logistic curve in float64 (the reference for the kernels).

    Notes
    -----
    Any shape, values ≥ 0 (negative values are taken as 0); returns float64.
    """
    m, e, fog, p, q = params
    film = np.power(np.maximum(np.asarray(x, dtype=np.float64), 0.0) + fog, p)
    return m * np.power(film / (e + film), q)


def _slope_at_grey(params: SigmoidParameters) -> float:
    d = 1e-6
    return float((loglogistic_curve(SIGMOID_GREY + d, params) - loglogistic_curve(SIGMOID_GREY - d, params)) / (2 * d))


def _check(name: str, value: Any, lo: float, hi: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or not lo <= float(value) <= hi:
        raise ParameterError(f"{where}: parameter {name!r} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


@functools.lru_cache(maxsize=32)
def sigmoid_parameters(contrast: float = 1.5, skew: float = 0.0, white_target: float = 1.0,
                       black_target: float = 0.000152) -> SigmoidParameters:
    """Solve the curve constants for the given look and display targets.

    Parameters
    ----------
    contrast : slope of the curve at middle grey in log-log terms (the film
        power of the unskewed curve); 1.5 is darktable's default.
    skew : -1 … 1; > 0 gives more contrast in the shadows and a longer
        shoulder, < 0 the reverse (paper power ``5^-skew``).
    white_target, black_target : display-linear values of scene ∞ and 0
        (fractions; darktable's defaults 100 % and 0.0152 %, which is just
        above half an 8-bit sRGB code).

    Returns
    -------
    SigmoidParameters with f(0) = black_target, f(0.1845) = 0.1845, f(∞) = white_target.

    References
    ----------
    darktable ``src/iop/sigmoid.c`` ``commit_params``.
    """
    where = "sigmoid_parameters"
    contrast = _check("contrast", contrast, 0.1, 10.0, where)
    skew = _check("skew", skew, -1.0, 1.0, where)
    white = _check("white_target", white_target, 0.2, 16.0, where)
    black = _check("black_target", black_target, 0.0, 0.15, where)
    grey = SIGMOID_GREY
    if not black < grey < white:
        raise ParameterError(f"{where}: need black_target < {grey} < white_target, got {black} and {white}")
    # reference slope: unskewed curve, film power = contrast, display [0, 1]
    ref_e = grey ** contrast * (1.0 / grey - 1.0)
    ref_slope = _slope_at_grey(SigmoidParameters(1.0, ref_e, 0.0, contrast, 1.0))
    q = 5.0 ** -skew
    # the skewed curve's slope at film power 1; the slope scales linearly with the film power
    white_grey = (white / grey) ** (1.0 / q) - 1.0
    unit_slope = _slope_at_grey(SigmoidParameters(white, grey * white_grey, 0.0, 1.0, q))
    p = ref_slope / unit_slope
    if black > 0:
        white_black = (black / white) ** (-1.0 / q) - 1.0
        a, b = white_grey ** (1.0 / p), white_black ** (1.0 / p)
        fog = grey * a / (b - a)
    else:
        fog = 0.0
    e = (fog + grey) ** p * white_grey
    return SigmoidParameters(white, e, fog, p, q)


def _table_k() -> float:
    return SIGMOID_GREY


#: Encodings in which the hue is restored (see :func:`sigmoid_tone_map`).
HUE_ENCODINGS = ("srgb", "linear")


@functools.lru_cache(maxsize=32)
def sigmoid_table(params: SigmoidParameters, encoding: str = "srgb", n: int = TABLE_INTERVALS) -> np.ndarray:
    """The encoded curve E(f(x)) over u = x / (x + 0.1845) at u = i / n as a complex64
    (value, slope to the next) table; ``encoding`` "srgb" (E = the sRGB OETF, clipped
    to [0, 1]) or "linear" (E = identity).

    Entry ``n`` is (E(f(∞)), 0). Read-only, cached. Linear interpolation stays within
    1e-6 of the float64 curve for the default parameters.
    """
    u = np.arange(n + 1, dtype=np.float64) / n
    with np.errstate(divide="ignore"):
        x = _table_k() * u / (1.0 - u)
    v = np.append(loglogistic_curve(x[:-1], params), params.magnitude * 1.0)
    if encoding == "srgb":
        v = gamma_compress_reference(v, "srgb", clip=True)
    tab = np.zeros(n + 1, np.complex64)
    tab.real = v
    tab.imag[:-1] = np.diff(v.astype(np.float32))
    tab.setflags(write=False)
    return tab


def _check_encoding(encoding: Any, where: str) -> str:
    if not isinstance(encoding, str) or encoding not in HUE_ENCODINGS:
        raise unknown_name("hue encoding", encoding, HUE_ENCODINGS, where)
    return encoding


def kernel_arguments(contrast: float, skew: float, white_target: float, black_target: float,
                     hue_preservation: float, encoding: str = "srgb") -> tuple[np.float32, np.ndarray, np.float32]:
    """(k, table, hue) for the kernels of :mod:`ispkit.stages._kernels.sigmoid`."""
    params = sigmoid_parameters(contrast, skew, white_target, black_target)
    return np.float32(_table_k()), sigmoid_table(params, encoding), np.float32(hue_preservation)


def sigmoid_tone_map(img: Any, contrast: float = 1.5, skew: float = 0.0, *, white_target: float = 1.0,
                     black_target: float = 0.000152, hue_preservation: float = 1.0,
                     hue_encoding: str = "srgb") -> np.ndarray:
    """Map scene-linear RGB to display-linear RGB with the log-logistic curve.

    Parameters
    ----------
    img : (..., 3) scene-linear RGB (any real dtype; computed in float32).
    contrast, skew, white_target, black_target : see :func:`sigmoid_parameters`.
    hue_preservation : 0 … 1; 1 keeps each pixel's hue (the middle channel's
        place between the smallest and largest), 0 is the plain per-channel curve.
    hue_encoding : ``"srgb"`` — the channels are placed in sRGB-encoded values
        (what the following sRGB OETF will produce), so the fused 8-bit render
        reads the curve twice per pixel and writes codes without an OETF table;
        ``"linear"`` — placed in display-linear values, as darktable does.

    Returns
    -------
    float32 array of the input's shape, in [black_target, white_target].

    Notes
    -----
    LINEAR_RGB (scene-referred, values ≥ 0 nominal, > 1 allowed) → display-linear
    RGB; follow with an OETF (:class:`~ispkit.stages.gamma.Gamma`). Greys
    (R = G = B) stay exactly grey. The curve is read from a 4097-entry table
    over x / (x + 0.1845), linearly interpolated (within 1e-6 of the float64
    curve). NaN/inf input raises :class:`~ispkit.errors.InputError`.

    References
    ----------
    darktable "sigmoid" module (see the module docstring).
    """
    where = "sigmoid_tone_map"
    hue = _check("hue_preservation", hue_preservation, 0.0, 1.0, where)
    encoding = _check_encoding(hue_encoding, where)
    arr = np.asarray(img)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise InputError(f"{where}: expected an RGB array of shape (..., 3), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{where}: expected a real numeric array, got dtype {arr.dtype}")
    x = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1, 3)
    if x.size and not np.isfinite(x).all():
        raise InputError(f"{where}: input holds NaN or inf values; fix or mask them first")
    k, tab, hue32 = kernel_arguments(contrast, skew, white_target, black_target, hue, encoding)
    out = np.empty_like(x)
    if x.shape[0]:
        xr = x.view()
        xr.setflags(write=False)
        with threads_for(x.size):
            sigmoid_rgb(xr, k, tab, hue32, out)
        if encoding == "srgb":
            gamma_expand(out, "srgb", out=out)
    return out.reshape(arr.shape)


@register_stage
@dataclass(frozen=True)
class SigmoidToneMap(Stage):
    """Display transform: log-logistic tone curve with highlight roll-off, greys kept neutral.

    Parameters
    ----------
    contrast : slope at middle grey (darktable's default 1.5).
    skew : -1 … 1, shifts contrast between shadows and highlights.
    white_target, black_target : display-linear white and black (fractions).
    hue_preservation : 0 … 1 (1 keeps the hue of every pixel).
    hue_encoding : ``"srgb"`` (default; place the channels in the sRGB encoding
        the following OETF produces — fused into the 8-bit render kernel) or
        ``"linear"`` (display-linear, as darktable; not fused).

    Notes
    -----
    LINEAR_RGB → LINEAR_RGB (display-linear, in [black_target, white_target]);
    place it after the colour matrix and before the OETF. Scene middle grey
    0.1845 maps to 0.1845 (sRGB code 119). The fuser runs it inside the
    one-pass render kernel (:mod:`ispkit.stages.fused`).

    References
    ----------
    darktable ``src/iop/sigmoid.c``; darktable user manual, "sigmoid".
    """

    type_name = "sigmoid_tone_map"
    contrast: float = 1.5
    skew: float = 0.0
    white_target: float = 1.0
    black_target: float = 0.000152
    hue_preservation: float = 1.0
    hue_encoding: str = "srgb"

    def __post_init__(self) -> None:
        where = f"stage {self.type_name!r}"
        _check("hue_preservation", self.hue_preservation, 0.0, 1.0, where)
        _check_encoding(self.hue_encoding, f"{where} parameter 'hue_encoding'")
        try:
            sigmoid_parameters(self.contrast, self.skew, self.white_target, self.black_target)
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB, Domain.CAMERA_RGB), pointwise=True)

    def kernel_arguments(self) -> tuple[np.float32, np.ndarray, np.float32]:
        """(k, table, hue) for the fused render kernel."""
        return kernel_arguments(self.contrast, self.skew, self.white_target, self.black_target,
                                self.hue_preservation, self.hue_encoding)

    def process(self, frame: Frame) -> Frame:
        out = sigmoid_tone_map(frame.data, self.contrast, self.skew, white_target=self.white_target,
                               black_target=self.black_target, hue_preservation=self.hue_preservation,
                               hue_encoding=self.hue_encoding)
        return frame.replace(data=out)

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseSigmoidToneMap` (hue preservation 0 or 1; else NotInvertibleError)."""
        from .inverses import InverseSigmoidToneMap

        return InverseSigmoidToneMap(contrast=self.contrast, skew=self.skew, white_target=self.white_target,
                                     black_target=self.black_target, hue_preservation=self.hue_preservation,
                                     hue_encoding=self.hue_encoding)
