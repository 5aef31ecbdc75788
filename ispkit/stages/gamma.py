"""Transfer functions (OETF / inverse EOTF) and their exact inverses.

Curves (the ``curve`` argument, table :data:`GAMMA_CURVES`):

* ``"srgb"`` — IEC 61966-2-1 sRGB encoding (linear toe 12.92 below 0.0031308,
  ``1.055 x^(1/2.4) - 0.055`` above).
* ``"rec709"`` — ITU-R BT.709 OETF (4.5 x below 0.018, ``1.099 x^0.45 - 0.099``
  above); the inverse switches at the OETF's value at 0.018, as colour-science
  does, so the pair is an exact round trip.
* ``"power"`` — a pure power ``x^(1/gamma)`` (2.2 for a display-ish look, 3.2
  in NEW Deep-FlexISP).
* ``"dcraw"`` — dcraw / LibRaw ``gamma_curve(pwr, ts)``, the curve behind
  rawpy's ``gamma=(power, slope)`` (rawpy's default is (2.222, 4.5)): a power
  ``1/gamma`` joined to a linear toe of slope ``toe_slope`` at the point where
  value and derivative both match (solved by the same 48-step bisection).
* ``"linear"`` — the identity.

Negative values are **mirrored**: ``f(-x) = -f(x)``. This keeps noise and
out-of-gamut colours invertible (a round trip restores them) instead of
folding them to 0; values above 1 follow the curve. ``clip=True`` clamps the
input to [0, 1] first (negatives become 0).

References
----------
IEC 61966-2-1:1999, *Default RGB colour space — sRGB*.
ITU-R Recommendation BT.709-6 (2015), item 1.2, opto-electronic transfer.
D. Coffin, *dcraw.c* rev. 1.477, ``gamma_curve()``; LibRaw
``src/utils/curves.cpp``.
M. Dai et al., *NEW Deep-FlexISP*, NTIRE 2022 Night Photography Rendering (γ=3.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels._parallel import threads_for
from ._kernels.gamma import piecewise_power_f32, piecewise_power_f64

__all__ = [
    "GAMMA_CURVES",
    "gamma_compress",
    "gamma_expand",
    "gamma_compress_reference",
    "kernel_coefficients",
    "dcraw_gamma_coefficients",
    "Gamma",
    "GammaExpand",
]

#: Names accepted by ``curve`` (see the module docstring).
GAMMA_CURVES: frozenset[str] = frozenset({"srgb", "rec709", "power", "dcraw", "linear"})

_SRGB_BREAK = 0.0031308
_BT709_BREAK = 0.018


def dcraw_gamma_coefficients(gamma: float = 2.222, toe_slope: float = 4.5) -> tuple[float, ...]:
    """Return dcraw's ``g[0..5]`` for ``gamma_curve(1/gamma, toe_slope)``.

    ``g[0]`` is the power 1/gamma, ``g[1]`` the toe slope, ``g[2]`` the
    encoded value and ``g[3] = g[2]/g[1]`` the linear value where toe and
    power meet, ``g[4]`` the offset of the power segment and ``g[5]`` the
    normalisation of its integral (kept for completeness; the curve itself
    does not use it).

    Notes
    -----
    Computed exactly as dcraw does it, including the 48-step bisection on the
    junction, so a curve built from these numbers equals LibRaw's table.
    ``toe_slope = 0`` (or a slope on the wrong side of 1) gives a pure power.

    References
    ----------
    D. Coffin, *dcraw.c* rev. 1.477, ``gamma_curve()``.
    """
    _check_gamma(gamma, "dcraw_gamma_coefficients")
    _check_toe_slope(toe_slope, "dcraw_gamma_coefficients")
    g = [1.0 / float(gamma), float(toe_slope), 0.0, 0.0, 0.0, 0.0]
    bnd = [0.0, 0.0]
    bnd[1 if g[1] >= 1 else 0] = 1.0
    if g[1] and (g[1] - 1) * (g[0] - 1) <= 0:
        for _ in range(48):
            g[2] = (bnd[0] + bnd[1]) / 2
            if g[0]:
                side = (math.pow(g[2] / g[1], -g[0]) - 1) / g[0] - 1 / g[2] > -1
            else:
                side = g[2] / math.exp(1 - 1 / g[2]) < g[1]
            bnd[1 if side else 0] = g[2]
        g[3] = g[2] / g[1]
        if g[0]:
            g[4] = g[2] * (1 / g[0] - 1)
    if g[0]:
        g[5] = 1 / (g[1] * g[3] ** 2 / 2 - g[4] * (1 - g[3])
                    + (1 - math.pow(g[3], 1 + g[0])) * (1 + g[4]) / (1 + g[0])) - 1
    else:
        g[5] = 1 / (g[1] * g[3] ** 2 / 2 + 1 - g[2] - g[3] - g[2] * g[3] * (math.log(g[3]) - 1)) - 1
    return tuple(g)


def _check_gamma(gamma: Any, where: str) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not (
            math.isfinite(gamma) and 0 < gamma <= 100):
        raise ParameterError(f"{where}: parameter 'gamma' must be a number in (0, 100], got {gamma!r}")


def _check_toe_slope(toe_slope: Any, where: str) -> None:
    if isinstance(toe_slope, bool) or not isinstance(toe_slope, (int, float)) or not (
            math.isfinite(toe_slope) and toe_slope >= 0):
        raise ParameterError(
            f"{where}: parameter 'toe_slope' must be a finite number >= 0 (0 = pure power), got {toe_slope!r}")


def _curve_params(curve: str, gamma: float, toe_slope: float, inverse: bool) -> tuple[float, ...]:
    """(t, k, u, v, q, w, z) of the piecewise kernel for ``curve`` or its inverse."""
    if curve == "srgb":
        if not inverse:
            return (_SRGB_BREAK, 12.92, 1.0, 0.0, 1 / 2.4, 1.055, -0.055)
        return (12.92 * _SRGB_BREAK, 1 / 12.92, 1 / 1.055, 0.055 / 1.055, 2.4, 1.0, 0.0)
    if curve == "rec709":
        if not inverse:
            return (_BT709_BREAK, 4.5, 1.0, 0.0, 0.45, 1.099, -0.099)
        knee = 1.099 * _BT709_BREAK ** 0.45 - 0.099
        return (knee, 1 / 4.5, 1 / 1.099, 0.099 / 1.099, 1 / 0.45, 1.0, 0.0)
    if curve == "power":
        return (0.0, 0.0, 1.0, 0.0, float(gamma) if inverse else 1 / float(gamma), 1.0, 0.0)
    if curve == "dcraw":
        g = dcraw_gamma_coefficients(gamma, toe_slope)
        if not inverse:
            return (g[3], g[1], 1.0, 0.0, g[0], 1 + g[4], -g[4])
        k = 1 / g[1] if g[1] else 0.0
        return (g[2], k, 1 / (1 + g[4]), g[4] / (1 + g[4]), 1 / g[0], 1.0, 0.0)
    raise unknown_name("gamma curve", curve, GAMMA_CURVES, "gamma")


def kernel_coefficients(curve: str, gamma: float = 2.2, toe_slope: float = 12.92, *, inverse: bool = False,
                        float32: bool = True) -> tuple[float, ...]:
    """Coefficients (t, k, u, v, q, w, z) of the piecewise kernel for ``curve``.

    ``y = a·k`` for ``a < t``, else ``(a·u + v)^q·w + z``. The break ``t`` is
    adjusted so the strict comparison reproduces the curve's own convention
    (sRGB's toe includes its break) in float64 or, with ``float32``, for
    float32 inputs.
    """
    params = _curve_params(curve, gamma, toe_slope, inverse)
    if curve == "srgb":  # IEC 61966-2-1 (and colour-science) keep the break on the linear side: x <= t
        params = (float(np.nextafter(params[0], np.inf)),) + params[1:]
    if float32:
        # compare float32 inputs against the float64 break exactly: a < t64 <=> a < ceil32(t64)
        t32 = np.float32(params[0])
        if float(t32) < params[0]:
            t32 = np.nextafter(t32, np.float32(np.inf))
        params = (float(t32),) + params[1:]
    return params


def _apply(x: Any, curve: str, gamma: float, toe_slope: float, clip: bool,
           out: np.ndarray | None, inverse: bool, where: str) -> np.ndarray:
    if not isinstance(curve, str) or curve not in GAMMA_CURVES:
        raise unknown_name("gamma curve", curve, GAMMA_CURVES, where)
    _check_gamma(gamma, where)
    _check_toe_slope(toe_slope, where)
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"{where}: expected a real numeric array, got dtype {arr.dtype}")
    dtype = np.float64 if arr.dtype == np.float64 else np.float32
    src = np.ascontiguousarray(arr, dtype=dtype)
    if out is None:
        out = np.empty(src.shape, dtype=dtype)
    elif not isinstance(out, np.ndarray) or out.shape != src.shape or out.dtype != dtype \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ParameterError(
            f"{where}: parameter 'out' must be a writeable C-contiguous {np.dtype(dtype).name} array of "
            f"shape {src.shape}, got {getattr(out, 'dtype', type(out))} {getattr(out, 'shape', '')}")
    if src.size == 0:
        return out
    flat_in = src.reshape(-1).view()
    flat_in.setflags(write=False)  # one kernel signature for frames (read-only) and plain arrays
    flat_out = out.reshape(-1)
    if curve == "linear":
        if not np.all(np.isfinite(flat_in)):
            raise InputError(f"{where}: input holds NaN or inf values; fix or mask them before this stage")
        if clip:
            np.clip(flat_in, 0.0, 1.0, out=flat_out)
        elif not np.shares_memory(flat_out, flat_in):
            np.copyto(flat_out, flat_in)
        return out
    params = kernel_coefficients(curve, gamma, toe_slope, inverse=inverse, float32=dtype != np.float64)
    kernel = piecewise_power_f64 if dtype == np.float64 else piecewise_power_f32
    with threads_for(flat_in.size):
        bad = kernel(flat_in, flat_out, *params, bool(clip))
    if bad:
        raise InputError(f"{where}: input holds {bad} NaN or inf values; fix or mask them before this stage")
    return out


def gamma_compress_reference(x: Any, curve: str = "srgb", *, gamma: float = 2.2, toe_slope: float = 12.92,
                             clip: bool = False) -> np.ndarray:
    """NumPy float64 twin of :func:`gamma_compress` (tables, tests; no Numba).

    Notes
    -----
    Any shape, float64 out; same curves, mirroring and clipping as the kernel.
    """
    if not isinstance(curve, str) or curve not in GAMMA_CURVES:
        raise unknown_name("gamma curve", curve, GAMMA_CURVES, "gamma_compress_reference")
    xi = np.asarray(x, dtype=np.float64)
    if clip:
        xi = np.clip(xi, 0.0, 1.0)
    if curve == "linear":
        return xi.copy()
    t, k, u, v, q, w, z = _curve_params(curve, gamma, toe_slope, False)
    a = np.abs(xi)
    below = a <= t if curve == "srgb" else a < t
    y = np.where(below, a * k, np.power(np.maximum(a * u + v, 0.0), q) * w + z)
    return np.copysign(y, xi)


def gamma_compress(x: Any, curve: str = "srgb", *, gamma: float = 2.2, toe_slope: float = 12.92,
                   clip: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Encode scene-linear values with a transfer function (OETF).

    Parameters
    ----------
    x : array of any shape; float64 stays float64, anything else → float32.
    curve : one of :data:`GAMMA_CURVES`.
    gamma : exponent of ``"power"`` and ``"dcraw"`` (encoding uses 1/gamma).
    toe_slope : linear toe slope of ``"dcraw"`` (0 = pure power).
    clip : clamp the input to [0, 1] first; otherwise negatives are mirrored
        and values above 1 follow the curve.
    out : optional C-contiguous output array of the result dtype (may be ``x``).

    Notes
    -----
    Any shape, linear values nominally [0, 1] → encoded values nominally
    [0, 1]. The float32 path uses a polynomial power (|error| < 1e-6 vs
    colour-science on [0, 1]); float64 uses the exact ``pow``. Non-finite
    input raises :class:`~ispkit.errors.InputError`.

    References
    ----------
    IEC 61966-2-1:1999; ITU-R BT.709-6; dcraw ``gamma_curve()``.
    """
    return _apply(x, curve, gamma, toe_slope, clip, out, False, "gamma_compress")


def gamma_expand(x: Any, curve: str = "srgb", *, gamma: float = 2.2, toe_slope: float = 12.92,
                 clip: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Decode encoded values back to scene-linear (the exact inverse of :func:`gamma_compress`).

    Notes
    -----
    Any shape, encoded values nominally [0, 1] → linear values. Same
    parameters, mirroring and precision as :func:`gamma_compress`.

    References
    ----------
    IEC 61966-2-1:1999; ITU-R BT.709-6; dcraw ``gamma_curve()`` (mode 1).
    """
    return _apply(x, curve, gamma, toe_slope, clip, out, True, "gamma_expand")


def _validate(stage: Stage, curve: Any, gamma: Any, toe_slope: Any, clip: Any) -> None:
    name = stage.type_name
    if not isinstance(curve, str) or curve not in GAMMA_CURVES:
        raise unknown_name("gamma curve", curve, GAMMA_CURVES, f"stage {name!r} parameter 'curve'")
    _check_gamma(gamma, f"stage {name!r}")
    _check_toe_slope(toe_slope, f"stage {name!r}")
    if not isinstance(clip, bool):
        raise ParameterError(f"stage {name!r}: parameter 'clip' must be a bool, got {clip!r}")


def _transfer_record(curve: str, gamma: float, toe_slope: float) -> dict[str, Any]:
    rec: dict[str, Any] = {"curve": curve}
    if curve in ("power", "dcraw"):
        rec["gamma"] = float(gamma)
    if curve == "dcraw":
        rec["toe_slope"] = float(toe_slope)
    return rec


@register_stage
@dataclass(frozen=True)
class Gamma(Stage):
    """Encode linear RGB for display with a transfer function.

    Parameters
    ----------
    curve : one of :data:`GAMMA_CURVES` (default ``"srgb"``).
    gamma : exponent for ``"power"`` / ``"dcraw"``.
    toe_slope : toe slope for ``"dcraw"`` (rawpy's default curve is
        ``curve="dcraw", gamma=2.222, toe_slope=4.5``).
    clip : clamp to [0, 1] before encoding.

    Notes
    -----
    LINEAR_RGB or CAMERA_RGB (H×W×3 float32) → DISPLAY_RGB. Records the
    encoding in ``meta.extra["transfer_function"]``.
    """

    type_name = "gamma"
    curve: str = "srgb"
    gamma: float = 2.2
    toe_slope: float = 12.92
    clip: bool = False

    def __post_init__(self) -> None:
        _validate(self, self.curve, self.gamma, self.toe_slope, self.clip)

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.LINEAR_RGB, Domain.CAMERA_RGB), out_domain=Domain.DISPLAY_RGB,
                         pointwise=True)

    def process(self, frame: Frame) -> Frame:
        out = gamma_compress(frame.data, self.curve, gamma=self.gamma, toe_slope=self.toe_slope,
                             clip=self.clip)
        extra = dict(frame.meta.extra)
        extra["transfer_function"] = _transfer_record(self.curve, self.gamma, self.toe_slope)
        return frame.replace(data=out, domain=Domain.DISPLAY_RGB, extra=extra)

    def inverse(self) -> "GammaExpand":
        """The decoding with the same curve (exact on the encoded range; with ``clip`` the clipped ends stay 0 / 1)."""
        return GammaExpand(curve=self.curve, gamma=self.gamma, toe_slope=self.toe_slope)


@register_stage
@dataclass(frozen=True)
class GammaExpand(Stage):
    """Decode display RGB back to linear RGB (inverse of :class:`Gamma`).

    Parameters
    ----------
    curve, gamma, toe_slope, clip : as :class:`Gamma`; give the same values
        the encoding used.

    Notes
    -----
    DISPLAY_RGB (H×W×3 float32) → LINEAR_RGB. Removes
    ``meta.extra["transfer_function"]``.
    """

    type_name = "gamma_expand"
    curve: str = "srgb"
    gamma: float = 2.2
    toe_slope: float = 12.92
    clip: bool = False

    def __post_init__(self) -> None:
        _validate(self, self.curve, self.gamma, self.toe_slope, self.clip)

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.DISPLAY_RGB,), out_domain=Domain.LINEAR_RGB, pointwise=True)

    def process(self, frame: Frame) -> Frame:
        out = gamma_expand(frame.data, self.curve, gamma=self.gamma, toe_slope=self.toe_slope,
                           clip=self.clip)
        extra = dict(frame.meta.extra)
        extra.pop("transfer_function", None)
        return frame.replace(data=out, domain=Domain.LINEAR_RGB, extra=extra)

    def inverse(self) -> Gamma:
        """The encoding with the same curve."""
        return Gamma(curve=self.curve, gamma=self.gamma, toe_slope=self.toe_slope)
