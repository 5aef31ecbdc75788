"""Illuminant estimation and white balance (camera-native RGB).

Two stages:

* :class:`IlluminantEstimation` estimates the camera-native RGB of the scene
  illuminant (statistics-based methods, the camera's as-shot neutral, or a
  plug-in such as a neural estimator) and records it in
  ``meta.illuminant_rgb``; the pixels are left unchanged.
* :class:`WhiteBalance` chooses an illuminant (as-shot, upstream estimate,
  manual gains or CCT + tint, or any estimator) and applies the gains
  ``1 / illuminant`` per CFA position or per channel.

Estimators are looked up by name in :data:`ILLUMINANT_METHODS`; new ones are
added with :func:`register_illuminant_method` (``ispkit.neural`` registers
``"fc4"`` that way).

References
----------
G. Buchsbaum, "A spatial processor model for object colour perception",
J. Franklin Institute 310(1), 1980 (gray world).
E. H. Land, J. J. McCann, "Lightness and retinex theory", JOSA 61(1), 1971
(white patch / max-RGB).
G. D. Finlayson, E. Trezzi, "Shades of gray and colour constancy", Proc. IS&T
Color Imaging Conference, 2004.
J. van de Weijer, Th. Gevers, A. Gijsenij, "Edge-based color constancy",
IEEE Trans. Image Processing 16(9), 2007.
Y. Ohno, "Practical use and calculation of CCT and Duv", LEUKOS 10(1), 2014.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import Any, Callable

import numpy as np

from ..errors import InputError, MissingMetadataError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame, cfa_color_indices, cfa_position_of, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage
from ..pipeline.models import (add_model_record, announce_fallback, check_weights_param, model_record,
                               require_weights, resolve_weights)
from ._kernels import white_balance as _k
from ._kernels._parallel import readonly, threads_for
from ._sources import glow_mask
from ._kernels.scratch import recycled_empty

__all__ = [
    "ILLUMINANT_METHODS",
    "IlluminantMethod",
    "register_illuminant_method",
    "estimate_illuminant",
    "masked_bright_pixels",
    "masked_shades_of_gray",
    "illuminant_rgb_from_cct",
    "white_balance_gains",
    "apply_white_balance",
    "IlluminantEstimation",
    "WhiteBalance",
]

#: Illuminant sources that read metadata instead of pixels.
_METADATA_SOURCES = ("camera", "illuminant", "manual")
_NORMALIZE = ("green", "min")


@dataclass(frozen=True)
class IlluminantMethod:
    """An entry of :data:`ILLUMINANT_METHODS`.

    Attributes
    ----------
    fn : ``fn(image, cfa_pattern=None, **params) -> (3,)`` camera-native RGB
        of the illuminant (any positive scale).
    params : keyword names ``fn`` accepts. The stages pass the fields of the
        same name (``p``, ``percentile``, ``order``, ``sigma``,
        ``saturation``, ``weights``, ``device``) and ``white_point`` from the
        frame's metadata; other names keep ``fn``'s defaults.
    model : the registered model a learned estimator runs (its
        ``weights="auto"`` looks for ``<model>.pth``); None for classical ones.
    """

    fn: Callable[..., np.ndarray]
    params: tuple[str, ...] = ()
    model: str | None = None


#: name → :class:`IlluminantMethod`; filled below and by plug-ins.
ILLUMINANT_METHODS: dict[str, IlluminantMethod] = {}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _thresholds(white_point: Any, saturation: float) -> np.ndarray:
    wp = np.ones(3) if white_point is None else np.broadcast_to(
        np.asarray(white_point, dtype=np.float64).ravel(), (3,))
    if not np.all(np.isfinite(wp)) or np.any(wp <= 0):
        raise ParameterError(f"estimate_illuminant: white_point must be 3 positive finite values, got {wp.tolist()}")
    if not (np.isfinite(saturation) and saturation > 0):
        raise ParameterError(f"estimate_illuminant: saturation must be a positive fraction of the white point, got {saturation!r}")
    return np.ascontiguousarray(float(saturation) * wp, dtype=np.float64)


def _cfa_positions(cfa_pattern: str) -> np.ndarray:
    pos = cfa_position_of(cfa_pattern)
    return np.array([pos["R"], pos["Gr"], pos["Gb"], pos["B"]], dtype=np.int64)


def _even(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] - x.shape[0] % 2, x.shape[1] - x.shape[1] % 2
    return x[:h, :w]


def _as_image(image: Any, cfa_pattern: str | None, where: str) -> tuple[np.ndarray, str | None]:
    """Validate an H×W mosaic (with a CFA pattern) or an H×W×3 image."""
    x = np.asarray(image)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{where}: expected real pixel values, got dtype {x.dtype}")
    if x.ndim == 2:
        if cfa_pattern is None:
            raise ParameterError(
                f"{where}: a 2-D image is a Bayer mosaic and needs cfa_pattern "
                "('RGGB', 'BGGR', 'GRBG' or 'GBRG'); pass an H×W×3 array for RGB"
            )
        cfa_pattern = check_cfa_pattern(cfa_pattern, where)
        if x.shape[0] < 2 or x.shape[1] < 2:
            raise InputError(f"{where}: a mosaic needs at least one 2×2 block, got shape {x.shape}")
    elif x.ndim == 3 and x.shape[2] == 3:
        cfa_pattern = None
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"{where}: the image is empty (shape {x.shape})")
    else:
        raise InputError(f"{where}: expected an H×W mosaic or an H×W×3 image, got shape {x.shape}")
    x = readonly(np.ascontiguousarray(x, dtype=np.float32))
    if np.isnan(_k.finite_probe(x)):
        raise InputError(
            f"{where}: the image holds {int(np.count_nonzero(~np.isfinite(x)))} non-finite (NaN/inf) "
            "values; repair them first"
        )
    return x, cfa_pattern


def _reduce(x: np.ndarray, cfa_pattern: str | None, thr: np.ndarray, dark: float,
            p: float, mode: int) -> np.ndarray:
    if cfa_pattern is not None:
        return _k.minkowski_bayer(readonly(np.ascontiguousarray(_even(x))), _cfa_positions(cfa_pattern), thr, float(dark), float(p), mode)
    return _k.minkowski_rgb(readonly(x), np.zeros((0, 0), np.uint8), thr, float(dark), float(p), mode)


def _binned(x: np.ndarray, cfa_pattern: str | None, thr: np.ndarray,
            dark: float) -> tuple[np.ndarray, np.ndarray]:
    """Half-size RGB (or the RGB image itself) and its usable-pixel mask."""
    if cfa_pattern is not None:
        m = np.ascontiguousarray(_even(x))
        rgb = np.empty((m.shape[0] // 2, m.shape[1] // 2, 3), dtype=np.float32)
        mask = np.empty(rgb.shape[:2], dtype=np.uint8)
        _k.bin_bayer(readonly(m), _cfa_positions(cfa_pattern), thr, float(dark), rgb, mask)
        return rgb, mask
    rgb = readonly(x.astype(np.float32, copy=False))
    mask = np.empty(rgb.shape[:2], dtype=np.uint8)
    _k.valid_mask_rgb(rgb, thr.astype(np.float32), np.float32(dark), mask)
    return rgb, mask


def _no_pixels(method: str) -> InputError:
    return InputError(
        f"estimate_illuminant({method!r}): no usable pixels — every pixel is saturated "
        "(>= saturation × white_point) or black; lower `saturation`, check the white point, "
        "or choose method='camera'"
    )


def _check_p(p: float, method: str) -> float:
    p = float(p)
    if not (p >= 1.0):
        raise ParameterError(f"estimate_illuminant({method!r}): Minkowski p must be >= 1 (or inf), got {p!r}")
    return p


# ---------------------------------------------------------------------------
# built-in estimators
# ---------------------------------------------------------------------------

def _minkowski_estimate(image: np.ndarray, cfa_pattern: str | None, p: float, saturation: float,
                        white_point: Any, dark: float, method: str) -> np.ndarray:
    thr = _thresholds(white_point, saturation)
    if math.isinf(p):
        acc = _reduce(image, cfa_pattern, thr, dark, 1.0, 1)
        if acc[3] == 0:
            raise _no_pixels(method)
        return acc[:3].copy()
    acc = _reduce(image, cfa_pattern, thr, dark, p, 0)
    if acc[3] == 0:
        raise _no_pixels(method)
    mean = acc[:3] / acc[3]
    if p == 1.0:
        return mean
    return np.power(np.maximum(mean, 0.0), 1.0 / p)


def gray_world(image: np.ndarray, cfa_pattern: str | None = None, *, saturation: float = 0.98,
               white_point: Any = None, dark: float = 0.0) -> np.ndarray:
    """Estimate the illuminant as the mean colour of the usable pixels.

    References
    ----------
    G. Buchsbaum, J. Franklin Institute 310(1), 1980.
    """
    return _minkowski_estimate(image, cfa_pattern, 1.0, saturation, white_point, dark, "gray_world")


def shades_of_gray(image: np.ndarray, cfa_pattern: str | None = None, *, p: float = 6.0,
                   saturation: float = 0.98, white_point: Any = None, dark: float = 0.0) -> np.ndarray:
    """Estimate the illuminant as the Minkowski p-norm mean of each channel.

    Notes
    -----
    ``(mean(max(v, 0) ** p)) ** (1 / p)``; ``p = 1`` is gray world, ``p = inf`` max-RGB.

    References
    ----------
    G. D. Finlayson, E. Trezzi, "Shades of gray and colour constancy", CIC 2004.
    """
    p = _check_p(p, "shades_of_gray")
    return _minkowski_estimate(image, cfa_pattern, p, saturation, white_point, dark, "shades_of_gray")


def max_rgb(image: np.ndarray, cfa_pattern: str | None = None, *, saturation: float = 0.98,
            white_point: Any = None, dark: float = 0.0) -> np.ndarray:
    """Estimate the illuminant as the per-channel maximum of the unsaturated pixels.

    References
    ----------
    E. H. Land, J. J. McCann, "Lightness and retinex theory", JOSA 61(1), 1971.
    """
    return _minkowski_estimate(image, cfa_pattern, math.inf, saturation, white_point, dark, "max_rgb")


def white_patch(image: np.ndarray, cfa_pattern: str | None = None, *, percentile: float = 99.5,
                saturation: float = 0.98, white_point: Any = None, dark: float = 0.0) -> np.ndarray:
    """Estimate the illuminant as a high per-channel percentile (robust max-RGB).

    Notes
    -----
    The percentile (default 99.5) ignores isolated hot pixels that would
    decide a plain maximum.

    References
    ----------
    E. H. Land, J. J. McCann, JOSA 61(1), 1971; F. Ciurea, B. Funt, "Tuning
    retinex parameters", J. Electronic Imaging 13(1), 2004.
    """
    pct = float(percentile)
    if not (0.0 < pct <= 100.0):
        raise ParameterError(f"estimate_illuminant('white_patch'): percentile must be in (0, 100], got {percentile!r}")
    thr = _thresholds(white_point, saturation)
    rgb, mask = _binned(image, cfa_pattern, thr, dark)
    vals = rgb[mask.astype(bool)]
    if vals.shape[0] == 0:
        raise _no_pixels("white_patch")
    return np.percentile(vals, pct, axis=0).astype(np.float64)


def gray_edge(image: np.ndarray, cfa_pattern: str | None = None, *, order: int = 1, p: float = 6.0,
              sigma: float = 1.0, saturation: float = 0.98, white_point: Any = None,
              dark: float = 0.0) -> np.ndarray:
    """Estimate the illuminant as the Minkowski p-norm of Gaussian derivative magnitudes.

    Notes
    -----
    Order 1: ``sqrt(Ix² + Iy²)``; order 2: ``sqrt(Ixx² + 4·Ixy² + Iyy²)`` (the
    authors' reference code), per channel, with Gaussian derivatives of
    scale ``sigma`` (pixels of the half-size image for a mosaic). Pixels
    within the derivative filters' reach, ``ceil(3·sigma) + 1`` pixels, of a
    masked (saturated or black) pixel, and a border of ``ceil(sigma) + 1``,
    are left out: the edge of a clipped sky is an edge between clipped
    values, whose colour is that of the clip levels, not of the light (with a
    1-pixel margin such edges turned a render with a clipped sky cyan).

    References
    ----------
    J. van de Weijer, Th. Gevers, A. Gijsenij, "Edge-based color constancy",
    IEEE Trans. Image Processing 16(9), 2007.
    """
    from scipy import ndimage

    if order not in (1, 2) or isinstance(order, bool):
        raise ParameterError(f"estimate_illuminant('gray_edge'): order must be 1 or 2, got {order!r}")
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ParameterError(f"estimate_illuminant('gray_edge'): sigma must be > 0, got {sigma!r}")
    p = _check_p(p, "gray_edge")
    thr = _thresholds(white_point, saturation)
    rgb, mask = _binned(image, cfa_pattern, thr, dark)
    reach = int(math.ceil(3.0 * sigma)) + 1  # the Gaussian derivatives are truncated at 3 sigma
    usable = ~ndimage.binary_dilation(mask == 0, structure=np.ones((2 * reach + 1, 2 * reach + 1), bool))
    border = int(math.ceil(sigma)) + 1
    usable[:border] = False
    usable[-border:] = False
    usable[:, :border] = False
    usable[:, -border:] = False
    mag = np.empty(rgb.shape, dtype=np.float32)
    for c in range(3):
        plane = rgb[..., c]
        if order == 1:
            dx = ndimage.gaussian_filter(plane, sigma, order=(0, 1), mode="nearest", truncate=3.0)
            dy = ndimage.gaussian_filter(plane, sigma, order=(1, 0), mode="nearest", truncate=3.0)
            mag[..., c] = np.sqrt(dx * dx + dy * dy)
        else:
            dxx = ndimage.gaussian_filter(plane, sigma, order=(0, 2), mode="nearest", truncate=3.0)
            dyy = ndimage.gaussian_filter(plane, sigma, order=(2, 0), mode="nearest", truncate=3.0)
            dxy = ndimage.gaussian_filter(plane, sigma, order=(1, 1), mode="nearest", truncate=3.0)
            mag[..., c] = np.sqrt(dxx * dxx + 4.0 * dxy * dxy + dyy * dyy)
    inf3 = np.full(3, np.inf)
    mode = 1 if math.isinf(p) else 0
    acc = _k.minkowski_rgb(readonly(mag), usable.astype(np.uint8), inf3, -1.0, 1.0 if mode else p, mode)
    if acc[3] == 0:
        raise _no_pixels("gray_edge")
    if mode == 1:
        return acc[:3].copy()
    return np.power(acc[:3] / acc[3], 1.0 / p)


def masked_bright_pixels(image: np.ndarray, cfa_pattern: str | None = None, *, percentile: float = 99.0,
                         low_percentile: float = 90.0, saturation: float = 0.98, white_point: Any = None,
                         dark: float = 0.0, glow_radius: float = 0.01, glow_scale: float = 6.0,
                         min_ratio: float = 0.05) -> np.ndarray:
    """Estimate the illuminant from the bright surfaces that light sources do not reach.

    Parameters
    ----------
    image, cfa_pattern, saturation, white_point, dark : as :func:`gray_world`.
    percentile, low_percentile : the mean colour of the pixels between these
        percentiles of brightness (R + G + B) of the kept pixels is the
        estimate: the brightest surfaces, less the top few percent
        (unclipped lamps, neon, the rest of their glow).
    glow_radius, glow_scale : around each clipped region (a lamp core) a
        disc of radius ``glow_scale`` × the region's equivalent radius, and
        at least ``glow_radius`` × the longer image side, is left out: the
        coloured glow scales with the source.
    min_ratio : each channel of the estimate is raised to at least this
        fraction of the largest, bounding the gains when a channel has
        almost no signal (a lens-cap frame gives a grey estimate, not noise).

    Notes
    -----
    Night scenes hold small, very bright, strongly coloured sources (sodium,
    LED, neon) whose glow decides any statistic that weights bright pixels
    (max-RGB, shades of gray with large p, white patch) and tints gray world.
    Leaving out the clipped cores, a disc around them, and the brightest
    percent of what remains keeps the estimate on ambient-lit surfaces; the
    bright-pixel band (90th–99th percentile) is where surfaces are both
    well above the sensor noise and most often near-achromatic highlights.
    On the synthetic night scenes (6 EV under, lamps in frame) it is within
    about 1.5° of the true illuminant where gray world is 3° off.

    References
    ----------
    H. R. V. Joze, M. S. Drew, G. D. Finlayson, P. A. T. Rey, "The role of
    bright pixels in illumination estimation", CIC 2012; F. Ciurea, B. Funt,
    J. Electronic Imaging 13(1), 2004 (leaving out clipped pixels); NTIRE
    2022–2024 Night Photography Rendering reports (light sources in frame as
    the main failure of statistical estimators).
    """
    pct = float(percentile)
    if not (0.0 < pct <= 100.0):
        raise ParameterError(f"estimate_illuminant('masked_bright_pixels'): percentile must be in (0, 100], got {percentile!r}")
    if not (math.isfinite(glow_radius) and 0.0 <= glow_radius < 1.0 and math.isfinite(glow_scale) and glow_scale >= 0):
        raise ParameterError(f"estimate_illuminant('masked_bright_pixels'): glow_radius must be in [0, 1) and "
                             f"glow_scale >= 0, got {glow_radius!r}, {glow_scale!r}")
    thr = _thresholds(white_point, saturation)
    rgb, mask = _binned(image, cfa_pattern, thr, dark)
    saturated = glow_mask(np.any(rgb >= thr.astype(np.float32), axis=-1), glow_radius * max(rgb.shape[:2]),
                          glow_scale)
    keep = (mask != 0) & (saturated == 0)
    vals = rgb[keep]
    if vals.shape[0] == 0:
        raise _no_pixels("masked_bright_pixels")
    lo = float(low_percentile)
    if not (0.0 <= lo < pct):
        raise ParameterError(f"estimate_illuminant('masked_bright_pixels'): low_percentile must be in [0, percentile), got {low_percentile!r}")
    level = vals.sum(axis=1)
    a, b = np.percentile(level, [lo, pct])
    band = vals[(level >= a) & (level <= b)]
    vals = band if band.shape[0] else vals
    est = vals.astype(np.float64).mean(axis=0)
    top = float(est.max())
    if not top > 0:
        return np.ones(3)
    return np.maximum(est, float(min_ratio) * top)


def masked_shades_of_gray(image: np.ndarray, cfa_pattern: str | None = None, *, p: float = 6.0,
                          saturation: float = 0.98, white_point: Any = None, dark: float = 0.0,
                          glow_radius: float = 0.01, glow_scale: float = 6.0) -> np.ndarray:
    """Shades of gray over the pixels light sources do not reach (clipped cores and their glow left out).

    Parameters
    ----------
    image, cfa_pattern, p, saturation, white_point, dark : as :func:`shades_of_gray`.
    glow_radius, glow_scale : the disc left out around each clipped region,
        as in :func:`masked_bright_pixels`.

    Notes
    -----
    A refinement step after a first white balance (the NTIRE night cascade's
    Shades-of-Gray pass) sees lamps and neon as large, strongly coloured
    regions; their glow alone tilts a Minkowski mean by several ΔE. With the
    cores (at the white point after a clipping balance) and a disc around
    each removed, the mean is taken over ambient-lit surfaces.

    References
    ----------
    G. D. Finlayson, E. Trezzi, "Shades of gray and colour constancy", CIC 2004;
    F. Ciurea, B. Funt, J. Electronic Imaging 13(1), 2004 (leaving out clipped pixels).
    """
    p = _check_p(p, "masked_shades_of_gray")
    thr = _thresholds(white_point, saturation)
    rgb, mask = _binned(image, cfa_pattern, thr, dark)
    near_sources = glow_mask(np.any(rgb >= thr.astype(np.float32), axis=-1), glow_radius * max(rgb.shape[:2]),
                             glow_scale)
    vals = rgb[(mask != 0) & (near_sources == 0)].astype(np.float64)
    if vals.shape[0] == 0:
        raise _no_pixels("masked_shades_of_gray")
    if math.isinf(p):
        return vals.max(axis=0)
    return np.power(np.mean(np.power(np.maximum(vals, 0.0), p), axis=0), 1.0 / p)


_COMMON = ("saturation", "white_point", "dark")
ILLUMINANT_METHODS.update({
    "gray_world": IlluminantMethod(gray_world, _COMMON),
    "white_patch": IlluminantMethod(white_patch, ("percentile",) + _COMMON),
    "shades_of_gray": IlluminantMethod(shades_of_gray, ("p",) + _COMMON),
    "gray_edge": IlluminantMethod(gray_edge, ("order", "p", "sigma") + _COMMON),
    "max_rgb": IlluminantMethod(max_rgb, _COMMON),
    "masked_bright_pixels": IlluminantMethod(masked_bright_pixels, ("percentile",) + _COMMON),
    "masked_shades_of_gray": IlluminantMethod(masked_shades_of_gray, ("p",) + _COMMON),
})


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def register_illuminant_method(name: str, fn: Callable[..., np.ndarray], *,
                               params: tuple[str, ...] = (), model: str | None = None) -> None:
    """Add an illuminant estimator to :data:`ILLUMINANT_METHODS`.

    Parameters
    ----------
    name : lowercase key, e.g. ``"fc4"``; ``"camera"``, ``"illuminant"`` and
        ``"manual"`` are reserved.
    fn : ``fn(image, cfa_pattern=None, **params) -> (3,)`` camera-native
        RGB of the illuminant; ``image`` is an H×W mosaic (with
        ``cfa_pattern``) or an H×W×3 image, float32, black-subtracted and
        nominally [0, 1].
    params : which stage fields (``IlluminantEstimation`` /
        ``WhiteBalance``) are passed to ``fn`` as keywords, e.g.
        ``("weights", "device")``; ``"white_point"`` passes the frame's
        per-channel saturation.
    model : for a learned estimator, the model name whose weights
        ``weights="auto"`` resolves (see :mod:`ispkit.pipeline.models`).

    Raises
    ------
    ParameterError : bad name, reserved name, ``fn`` not callable, or the
        name already taken by a different function.
    """
    if not isinstance(name, str) or not name or name != name.lower() or not name.replace("_", "").isalnum():
        raise ParameterError(f"register_illuminant_method: name must be a lowercase identifier, got {name!r}")
    if name in _METADATA_SOURCES:
        raise ParameterError(f"register_illuminant_method: {name!r} is reserved for the metadata sources {_METADATA_SOURCES}")
    if not callable(fn):
        raise ParameterError(f"register_illuminant_method({name!r}): fn must be callable, got {type(fn).__name__}")
    if isinstance(params, str) or not all(isinstance(s, str) and s.isidentifier() for s in params):
        raise ParameterError(f"register_illuminant_method({name!r}): params must be a tuple of keyword names, got {params!r}")
    old = ILLUMINANT_METHODS.get(name)
    if old is not None and (getattr(old.fn, "__module__", None), getattr(old.fn, "__qualname__", None)) != (
            getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)):
        raise ParameterError(
            f"register_illuminant_method: {name!r} is already registered to "
            f"{getattr(old.fn, '__module__', '?')}.{getattr(old.fn, '__qualname__', '?')}"
        )
    ILLUMINANT_METHODS[name] = IlluminantMethod(fn, tuple(params), model=model)


def _check_method(name: str, where: str, sources: tuple[str, ...]) -> None:
    """Raise unless ``name`` is one of the metadata ``sources`` or a table entry."""
    if not (isinstance(name, str) and name in sources):
        _lookup(name, where, sources)


def _lookup(name: str, where: str, sources: tuple[str, ...] = ()) -> IlluminantMethod:
    """Return the table entry of ``name`` (the error also lists the metadata ``sources``)."""
    if not isinstance(name, str) or name not in ILLUMINANT_METHODS:
        from ..pipeline.registry import load_providers

        load_providers()  # plug-ins (e.g. the neural estimators) register on import
    if not isinstance(name, str) or name not in ILLUMINANT_METHODS:
        raise unknown_name("illuminant method", name, set(ILLUMINANT_METHODS) | set(sources), where)
    return ILLUMINANT_METHODS[name]


def _unit(vec: Any, what: str) -> np.ndarray:
    v = np.asarray(vec, dtype=np.float64).ravel()
    if v.shape != (3,):
        raise InputError(f"{what}: expected 3 RGB values, got shape {np.shape(vec)}")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise InputError(
            f"{what}: the illuminant must be 3 positive finite values, got {v.tolist()}; "
            "the image may lack signal in a channel — try another method or method='camera'"
        )
    return v / np.linalg.norm(v)


def estimate_illuminant(image: np.ndarray, method: str = "shades_of_gray", *,
                        cfa_pattern: str | None = None, **params: Any) -> np.ndarray:
    """Estimate the camera-native RGB of the scene illuminant (unit L2 norm).

    Parameters
    ----------
    image : H×W Bayer mosaic (with ``cfa_pattern``) or H×W×3 RGB, linear and
        black-subtracted (nominally [0, 1]).
    method : a key of :data:`ILLUMINANT_METHODS`: ``"gray_world"``,
        ``"white_patch"``, ``"shades_of_gray"``, ``"gray_edge"``,
        ``"max_rgb"`` or a registered plug-in.
    cfa_pattern : layout of a mosaic; a mosaic is read as 2×2 blocks
        ``(R, (Gr + Gb) / 2, B)``.
    **params : the method's parameters — ``p`` (Minkowski exponent, default
        6), ``percentile`` (default 99.5), ``order`` (1 or 2), ``sigma``
        (Gaussian scale), ``saturation`` (fraction of ``white_point`` at
        which a pixel counts as clipped, default 0.98), ``white_point``
        ((3,) per-channel saturation, default 1), ``dark`` (a pixel with
        every channel ``<= dark`` is left out, default 0).

    Returns
    -------
    (3,) float64 with unit L2 norm.

    Raises
    ------
    UnknownNameError, ParameterError, InputError.

    Notes
    -----
    RAW_MOSAIC H×W or CAMERA_RGB/LINEAR_RGB H×W×3, any real dtype, linear.

    References
    ----------
    See the module docstring.
    """
    where = f"estimate_illuminant({method!r})"
    entry = _lookup(method, "estimate_illuminant")
    bad = sorted(set(params) - set(entry.params))
    if bad:
        raise ParameterError(
            f"{where}: unknown parameter(s) {', '.join(map(repr, bad))}; "
            f"this method takes: {', '.join(entry.params) or '(none)'}"
        )
    with threads_for(np.size(image)):
        x, cfa = _as_image(image, cfa_pattern, where)
        est = entry.fn(x, cfa_pattern=cfa, **params)
    return _unit(est, where)


def illuminant_rgb_from_cct(cct: float, tint: float = 0.0, *, cam_to_xyz: Any) -> np.ndarray:
    """Return the camera-native RGB (unit norm) of a Planckian-locus white with a Duv offset.

    Parameters
    ----------
    cct : correlated colour temperature in kelvin (1000–25000).
    tint : Duv, the signed distance from the Planckian locus in CIE 1960 uv
        along its normal (positive = above the locus, towards green).
    cam_to_xyz : (3, 3) camera-native RGB → XYZ.

    Notes
    -----
    CCT, Duv → uv by Ohno (2013) in colour-science, → xy → XYZ (Y = 1) →
    camera RGB through ``inv(cam_to_xyz)``.

    References
    ----------
    Y. Ohno, "Practical use and calculation of CCT and Duv", LEUKOS 10(1), 2014.
    """
    import colour

    m = np.asarray(cam_to_xyz, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ParameterError(f"illuminant_rgb_from_cct: cam_to_xyz must be a finite 3×3 matrix, got shape {m.shape}")
    uv = colour.temperature.CCT_to_uv(np.array([float(cct), float(tint)]), method="Ohno 2013")
    xyz = colour.xy_to_XYZ(colour.UCS_uv_to_xy(uv))
    try:
        cam = np.linalg.solve(m, xyz)
    except np.linalg.LinAlgError:
        raise ParameterError("illuminant_rgb_from_cct: cam_to_xyz is singular") from None
    return _unit(cam, f"illuminant_rgb_from_cct({cct}, {tint})")


def white_balance_gains(illuminant_rgb: Any, normalize: str = "green") -> np.ndarray:
    """Return the RGB gains ``1 / illuminant`` scaled so green is 1 or the smallest is 1.

    Parameters
    ----------
    illuminant_rgb : (3,) positive camera-native RGB of the scene white.
    normalize : ``"green"`` (g_G = 1) or ``"min"`` (smallest gain = 1:
        LibRaw/dcraw, and the DNG convention — the camera neutral with its
        largest component at 1 maps to the white, so exposure does not depend
        on the illuminant; the ``default`` preset uses it).

    Notes
    -----
    Gains (3,) float64, all > 0.
    """
    if normalize not in _NORMALIZE:
        raise unknown_name("gain normalisation", normalize, _NORMALIZE, "white_balance_gains")
    e = _unit(illuminant_rgb, "white_balance_gains")
    g = 1.0 / e
    return g / (g[1] if normalize == "green" else g.min())


def apply_white_balance(image: np.ndarray, gains: Any, *, cfa_pattern: str | None = None,
                        clip: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Multiply each CFA position (mosaic) or channel (image) by its RGB gain.

    Parameters
    ----------
    image : H×W mosaic (with ``cfa_pattern``), H×W×3 RGB, or H×W×4
        RAW_PACKED (R, Gr, Gb, B).
    gains : (3,) RGB multipliers.
    clip : clip the result to [0, 1] after the gains (LibRaw clips at the
        white level after scaling).
    out : optional float32 output of the same shape.

    Returns
    -------
    float32 array of the input's shape.

    Notes
    -----
    Any layout, float32, linear; one fused Numba pass.
    """
    x = np.ascontiguousarray(np.asarray(image), dtype=np.float32)
    g = np.asarray(gains, dtype=np.float64).ravel()
    if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ParameterError(f"apply_white_balance: gains must be 3 positive finite values, got {np.ravel(gains).tolist()}")
    if x.ndim == 2:
        if cfa_pattern is None:
            raise ParameterError("apply_white_balance: a 2-D mosaic needs cfa_pattern")
        ci = cfa_color_indices(cfa_pattern)
        cols = np.arange(x.shape[1]) % 2
        rows = np.stack([g[ci[0, cols]], g[ci[1, cols]]]).astype(np.float32)
        x2 = x
    elif x.ndim == 3 and x.shape[2] in (3, 4):
        vec = g if x.shape[2] == 3 else g[[0, 1, 1, 2]]
        rows = np.tile(vec.astype(np.float32), x.shape[1])[None, :]
        x2 = x.reshape(x.shape[0], -1)
    else:
        raise InputError(f"apply_white_balance: expected H×W, H×W×3 or H×W×4, got shape {x.shape}")
    if x.size == 0:
        raise InputError(f"apply_white_balance: the image is empty (shape {x.shape})")
    if out is None:
        out = recycled_empty(x.shape, np.float32)
    elif out.shape != x.shape or out.dtype != np.float32:
        raise ParameterError(f"apply_white_balance: out must be float32 {x.shape}, got {out.dtype} {out.shape}")
    with threads_for(x.size):
        probe = _k.apply_row_gains(readonly(x2), np.ascontiguousarray(rows), np.float32(0.0), np.float32(1.0),
                                   bool(clip), out.reshape(x2.shape))
    if np.isnan(probe).any():
        raise InputError(
            f"apply_white_balance: the image holds {int(np.count_nonzero(~np.isfinite(x)))} "
            "non-finite (NaN/inf) values; repair them first"
        )
    return out


# ---------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------

def _frame_white_point(meta: CaptureMetadata) -> np.ndarray:
    if meta.white_point is not None:
        return np.asarray(meta.white_point, dtype=np.float64)
    return np.full(3, float(meta.white_level))


def _frame_image(frame: Frame) -> tuple[np.ndarray, str | None]:
    d = frame.data
    if frame.domain is Domain.RAW_MOSAIC:
        return d, frame.meta.cfa_pattern
    if frame.domain is Domain.RAW_PACKED:
        rgb = np.empty(d.shape[:2] + (3,), dtype=np.float32)
        rgb[..., 0] = d[..., 0]
        np.add(d[..., 1], d[..., 2], out=rgb[..., 1])
        rgb[..., 1] *= np.float32(0.5)
        rgb[..., 2] = d[..., 3]
        return rgb, None
    return d, None


_ESTIMATOR_FIELDS = ("p", "percentile", "order", "sigma", "saturation", "weights", "device", "random_weights")


def _check_estimator_fields(stage: Any) -> None:
    name = stage.type_name

    def bad(field: str, value: Any, want: str) -> ParameterError:
        return ParameterError(f"stage {name!r}: parameter {field} must be {want}, got {value!r}")

    for field in ("p", "percentile", "sigma", "saturation"):
        v = getattr(stage, field)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(field, v, "a number")
    if not (stage.p >= 1.0):
        raise bad("p", stage.p, ">= 1 (Minkowski exponent; inf = max)")
    if not (0.0 < stage.percentile <= 100.0):
        raise bad("percentile", stage.percentile, "in (0, 100]")
    if isinstance(stage.order, bool) or stage.order not in (1, 2):
        raise bad("order", stage.order, "1 or 2")
    if not (math.isfinite(stage.sigma) and stage.sigma > 0):
        raise bad("sigma", stage.sigma, "a finite number > 0")
    if not (math.isfinite(stage.saturation) and stage.saturation > 0):
        raise bad("saturation", stage.saturation, "a finite fraction > 0 of the white point")
    if stage.weights is not None and not isinstance(stage.weights, str):
        raise bad("weights", stage.weights, "a path / model name string or None")
    check_weights_param(stage.weights, f"stage {name!r}")  # an explicit path must exist when the stage is built
    if not isinstance(stage.random_weights, bool):
        raise bad("random_weights", stage.random_weights, "True or False")
    if not isinstance(stage.device, str) or not stage.device:
        raise bad("device", stage.device, "a device string such as 'auto', 'cpu' or 'cuda'")


def _run_estimator(stage: Any, frame: Frame) -> np.ndarray:
    entry = _lookup(stage.method, f"stage {stage.type_name!r}")
    kwargs: dict[str, Any] = {}
    for key in entry.params:
        if key == "white_point":
            kwargs[key] = _frame_white_point(frame.meta)
        elif key in _ESTIMATOR_FIELDS:
            kwargs[key] = getattr(stage, key)
    image, cfa = _frame_image(frame)
    return estimate_illuminant(image, stage.method, cfa_pattern=cfa, **kwargs)


def _camera_illuminant(meta: CaptureMetadata, stage: str) -> np.ndarray:
    from .color_matrix import as_shot_neutral  # 1 / wb_gains, or a DNG's AsShotWhiteXY

    neutral = as_shot_neutral(meta)
    if neutral is None:
        raise MissingMetadataError(
            f"stage {stage!r} with method='camera' needs the as-shot white balance "
            f"(meta.wb_gains), which this frame (source: {meta.source or 'in-memory'}) does not carry; "
            f"choose an estimator instead, e.g. method='gray_world' or 'shades_of_gray' "
            f"(valid: {', '.join(sorted(ILLUMINANT_METHODS))})"
        )
    return _unit(neutral, f"stage {stage!r}: the as-shot neutral (1 / meta.wb_gains)")


def _has_camera_white(meta: CaptureMetadata) -> bool:
    return meta.wb_gains is not None or (meta.extra.get("dng") or {}).get("as_shot_white_xy") is not None


@register_stage
@dataclass(frozen=True)
class IlluminantEstimation(Stage):
    """Estimate the scene illuminant and record it in ``meta.illuminant_rgb``.

    Parameters
    ----------
    method : ``"camera"`` (as-shot neutral, ``1 / meta.wb_gains``) or a key
        of :data:`ILLUMINANT_METHODS` (``"gray_world"``, ``"white_patch"``,
        ``"shades_of_gray"``, ``"gray_edge"``, ``"max_rgb"``, plug-ins such
        as ``"fc4"``).
    p, percentile, order, sigma, saturation : estimator parameters (see
        :func:`estimate_illuminant`).
    weights, device : for plug-in (neural) estimators: a checkpoint path
        (checked when the stage is built) or ``"auto"``; a learned method
        without weights refuses to run (MissingWeightsError).
    fallback : with ``method="camera"``, the estimator used when the frame
        carries no as-shot white balance (recorded in
        ``meta.extra["illuminant_source"]``); with a learned method and
        ``weights="auto"``, the classical estimator used when no weights file
        is found in ``$ISPKIT_WEIGHTS`` (announced once with a
        FallbackWarning and recorded in ``meta.extra["models"]``); None
        raises instead.
    random_weights : let a learned method run on random initial weights
        when it has none (warned once, recorded in ``meta.extra["models"]``).

    Notes
    -----
    RAW_MOSAIC / RAW_PACKED / CAMERA_RGB / LINEAR_RGB in, pixels unchanged;
    ``illuminant_rgb`` is (3,) camera-native RGB with unit norm.
    """

    type_name = "illuminant_estimation"
    method: str = "shades_of_gray"
    p: float = 6.0
    percentile: float = 99.5
    order: int = 1
    sigma: float = 1.0
    saturation: float = 0.98
    weights: str | None = None
    device: str = "auto"
    fallback: str | None = None
    random_weights: bool = False

    def __post_init__(self) -> None:
        _check_method(self.method, f"stage {self.type_name!r}", ("camera",))
        _check_estimator_fields(self)
        if self.fallback is not None:
            if self.method != "camera" and ILLUMINANT_METHODS[self.method].model is None:
                raise ParameterError(f"stage {self.type_name!r}: fallback only applies with method='camera' "
                                     f"(used when the frame has no as-shot white balance) or a learned method "
                                     f"such as 'fc4' (used when its weights are not found), got method={self.method!r}")
            _check_method(self.fallback, f"stage {self.type_name!r} parameter 'fallback'", ())
            if ILLUMINANT_METHODS[self.fallback].model is not None:
                raise ParameterError(f"stage {self.type_name!r}: parameter fallback must be a classical estimator "
                                     f"(e.g. 'masked_bright_pixels'), got the learned method {self.fallback!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.RAW_PACKED, Domain.CAMERA_RGB, Domain.LINEAR_RGB),
                         provides=("illuminant_rgb",))

    @property
    def learned_model(self) -> str | None:
        """The model a learned ``method`` runs (None for classical methods): without weights it refuses."""
        entry = ILLUMINANT_METHODS.get(self.method)
        return entry.model if entry is not None else None

    def process(self, frame: Frame) -> Frame:
        model = ILLUMINANT_METHODS[self.method].model if self.method != "camera" else None
        if model is not None:
            return self._learned(frame, model)
        if self.method == "camera" and self.fallback is not None and not _has_camera_white(frame.meta):
            illum = _run_estimator(_replace(self, method=self.fallback, fallback=None), frame)
            extra = dict(frame.meta.extra)
            extra["illuminant_source"] = self.fallback
            return frame.replace(illuminant_rgb=illum, extra=extra)
        if self.method == "camera":
            illum = _camera_illuminant(frame.meta, self.type_name)
        else:
            illum = _run_estimator(self, frame)
        return frame.replace(illuminant_rgb=illum)

    def _learned(self, frame: Frame, model: str) -> Frame:
        """Run the learned estimator (weights resolved) or, when 'auto' finds none, the fallback; record it."""
        where = f"stage {self.type_name!r}"
        path, missing = resolve_weights(model, self.weights, where)
        if missing is None or self.fallback is None:
            hint = f"{missing}; or set fallback (e.g. 'masked_bright_pixels')" if missing else None
            rand = require_weights(model, path, random_weights=self.random_weights, where=where, reason=hint)
            illum = _run_estimator(_replace(self, weights=path, fallback=None), frame)
            record = model_record(self.type_name, model, path, random_weights=rand)
        else:
            text = f"{self.fallback} ({missing})"
            announce_fallback(self.type_name, model, text)
            illum = _run_estimator(_replace(self, method=self.fallback, fallback=None, weights=None), frame)
            record = model_record(self.type_name, model, None, text)
        return frame.replace(illuminant_rgb=illum, extra=add_model_record(frame.meta.extra, record))


def _scale_noise_profile(profile: tuple[tuple[float, float], ...] | None,
                         gains: np.ndarray) -> tuple[tuple[float, float], ...] | None:
    """Noise profile after per-channel gains: var(g·x) = g·scale·(g·x) + g²·offset."""
    if profile is None:
        return None
    if len(profile) == 1:
        profile = profile * 3
    if len(profile) == 3:
        gs = gains
    elif len(profile) == 4:
        gs = gains[[0, 1, 1, 2]]
    else:
        return profile
    return tuple((float(a * g), float(b * g * g)) for (a, b), g in zip(profile, gs))


@register_stage
@dataclass(frozen=True)
class WhiteBalance(Stage):
    """Choose the scene illuminant and apply the white-balance gains ``1 / illuminant``.

    Parameters
    ----------
    method : where the illuminant comes from — ``"camera"`` (as-shot,
        ``1 / meta.wb_gains``), ``"illuminant"`` (``meta.illuminant_rgb`` from
        an upstream :class:`IlluminantEstimation`), ``"manual"`` (``gains``, or
        ``cct`` + ``tint`` through ``meta.cam_to_xyz``), or any key of
        :data:`ILLUMINANT_METHODS`.
    gains : (R, G, B) multipliers for ``method="manual"`` (re-normalised by
        ``normalize``).
    cct, tint : kelvin and Duv for ``method="manual"`` (see
        :func:`illuminant_rgb_from_cct`).
    p, percentile, order, sigma, saturation, weights, device : estimator
        parameters (see :func:`estimate_illuminant`).
    normalize : ``"green"`` (G gain 1) or ``"min"`` (smallest gain 1, LibRaw).
    clip : clip the result to [0, 1] after the gains (LibRaw behaviour).
    refine : the frame is already white-balanced by an earlier stage: the
        estimate is a residual correction (e.g. Shades-of-Gray after an FC4
        balance, as the Deep-FlexISP cascade does), and the recorded
        ``illuminant_rgb`` is the product of both, so the colour matrix
        still sees the scene's camera-native white.
    random_weights : let a learned estimator run on random initial weights
        when it has none (warned once); without it, it refuses to run.

    Notes
    -----
    RAW_MOSAIC (gain per CFA position), RAW_PACKED, CAMERA_RGB or
    LINEAR_RGB, float32, linear. Provides ``illuminant_rgb`` (the camera-native
    illuminant used, unit norm — in the working space's RGB when run on
    LINEAR_RGB) and ``white_point`` (previous white point × gains, limited to
    1 with ``clip``); scales ``noise_profile`` by the gains. Expects
    black-subtracted data (run :class:`BlackLevel` first).

    References
    ----------
    Adobe, *DNG Specification* 1.6, "AsShotNeutral"; D. Coffin, dcraw.c
    ``scale_colors``.
    """

    type_name = "white_balance"
    method: str = "camera"
    gains: tuple[float, float, float] | None = None
    cct: float | None = None
    tint: float = 0.0
    p: float = 6.0
    percentile: float = 99.5
    order: int = 1
    sigma: float = 1.0
    saturation: float = 0.98
    weights: str | None = None
    device: str = "auto"
    normalize: str = "green"
    clip: bool = False
    refine: bool = False
    random_weights: bool = False

    def __post_init__(self) -> None:
        name = self.type_name
        _check_method(self.method, f"stage {name!r}", _METADATA_SOURCES)
        _check_estimator_fields(self)
        if self.normalize not in _NORMALIZE:
            raise unknown_name("gain normalisation", self.normalize, _NORMALIZE, f"stage {name!r}")
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ParameterError(f"stage {name!r}: parameter clip must be True or False, got {self.clip!r}")
        if not isinstance(self.refine, (bool, np.bool_)):
            raise ParameterError(f"stage {name!r}: parameter refine must be True or False, got {self.refine!r}")
        if isinstance(self.tint, bool) or not isinstance(self.tint, (int, float)) or not (abs(self.tint) <= 0.05):
            raise ParameterError(f"stage {name!r}: parameter tint (Duv) must be a number in [-0.05, 0.05], got {self.tint!r}")
        if self.method != "manual":
            if self.gains is not None or self.cct is not None:
                raise ParameterError(
                    f"stage {name!r}: gains / cct only apply with method='manual', got method={self.method!r}"
                )
            return
        if (self.gains is None) == (self.cct is None):
            raise ParameterError(
                f"stage {name!r}: method='manual' needs exactly one of gains=(R, G, B) or cct=<kelvin>, "
                f"got gains={self.gains!r}, cct={self.cct!r}"
            )
        if self.gains is not None:
            try:
                g = tuple(float(v) for v in self.gains)
            except (TypeError, ValueError):
                g = ()
            if len(g) != 3 or not all(math.isfinite(v) and v > 0 for v in g) or isinstance(self.gains, str):
                raise ParameterError(f"stage {name!r}: parameter gains must be 3 positive numbers (R, G, B), got {self.gains!r}")
            object.__setattr__(self, "gains", g)
        else:
            if isinstance(self.cct, bool) or not isinstance(self.cct, (int, float)) or not (1000.0 <= self.cct <= 25000.0):
                raise ParameterError(f"stage {name!r}: parameter cct must be kelvin in [1000, 25000], got {self.cct!r}")

    @property
    def spec(self) -> StageSpec:
        requires: tuple[str, ...] = ()
        if self.method == "illuminant":
            requires = ("illuminant_rgb",)
        elif self.method == "manual" and self.cct is not None:
            requires = ("cam_to_xyz",)
        # with an estimator the gains depend on the whole image, so the stage is not pointwise
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.RAW_PACKED, Domain.CAMERA_RGB, Domain.LINEAR_RGB),
                         requires=requires, provides=("illuminant_rgb", "white_point"),
                         pointwise=self.method in _METADATA_SOURCES)

    def illuminant_for(self, frame: Frame) -> np.ndarray:
        """Return the camera-native illuminant (unit norm) this stage would use on ``frame``."""
        m = frame.meta
        where = f"stage {self.type_name!r}"
        if self.method == "camera":
            return _camera_illuminant(m, self.type_name)
        if self.method == "illuminant":
            return _unit(m.require("illuminant_rgb", self.type_name), f"{where}: meta.illuminant_rgb")
        if self.method == "manual":
            if self.gains is not None:
                return _unit(1.0 / np.asarray(self.gains, dtype=np.float64), f"{where}: 1 / gains")
            return illuminant_rgb_from_cct(float(self.cct), float(self.tint),  # type: ignore[arg-type]
                                           cam_to_xyz=m.require("cam_to_xyz", self.type_name))
        model = ILLUMINANT_METHODS[self.method].model
        if model is not None:  # a learned estimator: refuse here, naming this stage, when it has no weights
            path, missing = resolve_weights(model, self.weights, where)
            require_weights(model, path, random_weights=self.random_weights, where=where, reason=missing)
        return _run_estimator(self, frame)

    @property
    def learned_model(self) -> str | None:
        """The model a learned ``method`` runs (None for classical methods): without weights it refuses."""
        entry = ILLUMINANT_METHODS.get(self.method)
        return entry.model if entry is not None else None

    def process(self, frame: Frame) -> Frame:
        illum = self.illuminant_for(frame)
        gains = white_balance_gains(illum, self.normalize)
        m = frame.meta
        out = apply_white_balance(frame.data, gains, cfa_pattern=m.cfa_pattern, clip=self.clip)
        wp = _frame_white_point(m) * gains
        if self.clip:
            wp = np.minimum(wp, 1.0)
        if self.refine and m.illuminant_rgb is not None:
            illum = _unit(np.asarray(m.illuminant_rgb, dtype=np.float64) * illum,
                          f"stage {self.type_name!r}: meta.illuminant_rgb × the refinement")
        return frame.replace(data=out, illuminant_rgb=illum, white_point=wp,
                             noise_profile=_scale_noise_profile(m.noise_profile, gains))

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseWhiteBalance`: divides by the gains of the recorded illuminant.

        Raises NotInvertibleError with ``refine=True`` (the recorded illuminant is then
        the product of two balances, not the gains this stage applied).
        """
        from ..errors import NotInvertibleError

        if self.refine:
            raise NotInvertibleError(
                f"stage {self.type_name!r} with refine=True records the product of two balances in "
                "meta.illuminant_rgb, not the gains it applied; invert the pipeline without the refinement")
        from .inverses import InverseWhiteBalance

        return InverseWhiteBalance(method="camera" if self.method == "camera" else "illuminant",
                                   normalize=self.normalize)
