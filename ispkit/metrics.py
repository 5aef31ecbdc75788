"""Image-quality and colour-accuracy measures for evaluating a pipeline.

Fidelity: :func:`psnr`, :func:`cpsnr`, :func:`ssim`. Colour:
:func:`delta_e2000`, :func:`delta_e_summary`, :func:`angular_error`, and
:func:`colorchecker_delta_e`, which scores a rendered synthetic capture (see
:mod:`ispkit.io.synthetic`) against the ColorChecker under D65.

Every function takes NumPy arrays (a :class:`~ispkit.frame.Frame` is
accepted where an image is expected) and returns Python floats or float64
arrays. Only NumPy and colour-science are used.

References
----------
Wang, Z., Bovik, A. C., Sheikh, H. R., Simoncelli, E. P. (2004). Image
quality assessment: from error visibility to structural similarity.
*IEEE TIP* 13(4), 600–612.
Sharma, G., Wu, W., Dalal, E. N. (2005). The CIEDE2000 color-difference
formula: implementation notes, supplementary test data, and mathematical
observations. *Color Res. Appl.* 30(1), 21–30.
IEC 61966-2-1:1999, sRGB.
Hordley, S. D., Finlayson, G. D. (2006). Reevaluation of color constancy
algorithm performance. *JOSA A* 23(5), 1008–1020 (angular error).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from .io.synthetic import SyntheticCapture

__all__ = [
    "psnr",
    "cpsnr",
    "ssim",
    "srgb_to_lab",
    "delta_e2000",
    "delta_e_summary",
    "neutral_delta_e",
    "angular_error",
    "colorchecker_delta_e",
]

_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_SSIM_SIZE, _SSIM_SIGMA = 11, 1.5
# Neutral 8, 6.5, 5 and 3.5: the patches an exposure match uses (white may clip).
_EXPOSURE_PATCHES = (19, 20, 21, 22)


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def _array(x: Any, name: str, where: str) -> np.ndarray:
    data = getattr(x, "data", x) if hasattr(x, "domain") else x
    arr = np.asarray(data, dtype=np.float64)
    if arr.size == 0:
        raise InputError(f"{where}: {name} is empty (shape {arr.shape}); pass a non-empty image")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{where}: {name} holds NaN or inf; clean the input before measuring")
    return arr


def _pair(a: Any, b: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _array(a, "a", where), _array(b, "b", where)
    if x.shape != y.shape:
        raise InputError(f"{where}: images must have the same shape, got {x.shape} and {y.shape}")
    return x, y


def _check_border(border: object, where: str) -> int:
    if isinstance(border, (bool, np.bool_)) or not isinstance(border, (int, np.integer)) or border < 0:
        raise ParameterError(f"{where}: border must be an integer >= 0, got {border!r}")
    return int(border)


def _crop(x: np.ndarray, border: int, where: str) -> np.ndarray:
    if border == 0:
        return x
    if x.ndim < 2 or x.shape[0] <= 2 * border or x.shape[1] <= 2 * border:
        raise InputError(f"{where}: a border of {border} px leaves nothing of an image of shape {x.shape}")
    return x[border:-border, border:-border]


def _check_range(data_range: object, where: str) -> float:
    ok = isinstance(data_range, (int, float, np.number)) and not isinstance(data_range, (bool, np.bool_))
    if not ok or not math.isfinite(float(data_range)) or float(data_range) <= 0:  # type: ignore[arg-type]
        raise ParameterError(f"{where}: data_range must be a finite number > 0, got {data_range!r}")
    return float(data_range)  # type: ignore[arg-type]


def _psnr_of(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range ** 2 / mse)


def psnr(a: Any, b: Any, data_range: float = 1.0, border: int = 0) -> float:
    """Compute the peak signal-to-noise ratio ``10 log10(range² / MSE)`` in dB.

    Notes
    -----
    Any domain, equal shapes (H×W or H×W×C), any real dtype; ``border``
    pixels are dropped from each side of the two spatial axes first.
    Identical images give ``inf``.
    """
    x, y = _pair(a, b, "psnr")
    border = _check_border(border, "psnr")
    rng = _check_range(data_range, "psnr")
    return _psnr_of(_crop(x, border, "psnr"), _crop(y, border, "psnr"), rng)


def cpsnr(a: Any, b: Any, data_range: float = 1.0, border: int = 10) -> float:
    """Compute colour PSNR: one MSE over the R, G and B channels jointly, border excluded.

    Notes
    -----
    H×W×3 images; ``border`` (default 10 px, where demosaicing methods
    differ mostly by their padding) is dropped from every side.
    ``CPSNR = 10 log10(range² / (⅓ Σ_c MSE_c))``.

    References
    ----------
    Alleysson, D., Süsstrunk, S., Hérault, J. (2005). Linear demosaicing
    inspired by the human visual system. *IEEE TIP* 14(4), 439–449.
    """
    x, y = _pair(a, b, "cpsnr")
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"cpsnr: expected H×W×3 colour images, got shape {x.shape}")
    border = _check_border(border, "cpsnr")
    rng = _check_range(data_range, "cpsnr")
    return _psnr_of(_crop(x, border, "cpsnr"), _crop(y, border, "cpsnr"), rng)


def _gaussian_window() -> np.ndarray:
    k = np.arange(_SSIM_SIZE, dtype=np.float64) - (_SSIM_SIZE - 1) / 2.0
    g = np.exp(-(k ** 2) / (2.0 * _SSIM_SIGMA ** 2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D array with the 1-D window ``g`` on both axes."""
    n = g.size
    h = x.shape[0] - n + 1
    rows = g[0] * x[0:h]
    for k in range(1, n):
        rows += g[k] * x[k:k + h]
    w = x.shape[1] - n + 1
    out = g[0] * rows[:, 0:w]
    for k in range(1, n):
        out += g[k] * rows[:, k:k + w]
    return out


def ssim(a: Any, b: Any, data_range: float = 1.0) -> float:
    """Compute the mean structural similarity (Wang et al. 2004), averaged over channels.

    Notes
    -----
    H×W or H×W×C images of at least 11×11. An 11×11 Gaussian window
    (σ = 1.5), K1 = 0.01, K2 = 0.03, statistics over the window without
    the N/(N−1) correction, and the SSIM map averaged over the 'valid'
    region (no padding), as in the authors' ``ssim_index.m``. This equals
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=...)``. No down-sampling.

    References
    ----------
    Wang, Z., Bovik, A. C., Sheikh, H. R., Simoncelli, E. P. (2004). Image
    quality assessment: from error visibility to structural similarity.
    *IEEE TIP* 13(4), 600–612.
    """
    x, y = _pair(a, b, "ssim")
    rng = _check_range(data_range, "ssim")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    if x.ndim != 3 or x.shape[0] < _SSIM_SIZE or x.shape[1] < _SSIM_SIZE:
        raise InputError(
            f"ssim: expected H×W or H×W×C images of at least {_SSIM_SIZE}×{_SSIM_SIZE}, got shape {x.shape}")
    g = _gaussian_window()
    c1 = (_SSIM_K1 * rng) ** 2
    c2 = (_SSIM_K2 * rng) ** 2
    scores = []
    for ch in range(x.shape[2]):
        xc, yc = x[..., ch], y[..., ch]
        mx, my = _filter_valid(xc, g), _filter_valid(yc, g)
        mx2, my2, mxy = mx * mx, my * my, mx * my
        vx = _filter_valid(xc * xc, g) - mx2
        vy = _filter_valid(yc * yc, g) - my2
        cxy = _filter_valid(xc * yc, g) - mxy
        smap = ((2.0 * mxy + c1) * (2.0 * cxy + c2)) / ((mx2 + my2 + c1) * (vx + vy + c2))
        scores.append(float(smap.mean()))
    return float(np.mean(scores))


def _srgb_array(x: Any, name: str, where: str) -> np.ndarray:
    arr = _array(x, name, where)
    if arr.shape[-1] != 3:
        raise InputError(f"{where}: {name} must end in 3 sRGB channels, got shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


def srgb_to_lab(srgb: Any) -> np.ndarray:
    """Convert display (encoded) sRGB in [0, 1] to CIE Lab with the D65 white.

    Notes
    -----
    (..., 3) any real dtype in (clipped to [0, 1] as a display would) →
    (..., 3) float64 Lab, L* in [0, 100]. Decoding with the sRGB EOTF, the
    IEC 61966-2-1 matrix to XYZ, and CIE 1976 L*a*b* with the D65 white
    (x, y = 0.3127, 0.3290), via colour-science.

    References
    ----------
    IEC 61966-2-1:1999; CIE 15:2004 Colorimetry.
    """
    colour = _colour()
    rgb = _srgb_array(srgb, "srgb", "srgb_to_lab")
    return np.asarray(colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb)), dtype=np.float64)


def delta_e2000(srgb_a: Any, srgb_b: Any) -> np.ndarray:
    """Compute the CIEDE2000 colour difference between two display-sRGB colours or images.

    Notes
    -----
    (..., 3) display sRGB in [0, 1] (clipped) → (...) float64 ΔE00,
    via :func:`srgb_to_lab` and ``colour.delta_E(..., method="CIE 2000")``.

    References
    ----------
    Sharma, Wu, Dalal (2005), *Color Res. Appl.* 30(1), 21–30.
    """
    colour = _colour()
    a = _srgb_array(srgb_a, "srgb_a", "delta_e2000")
    b = _srgb_array(srgb_b, "srgb_b", "delta_e2000")
    if a.shape != b.shape:
        raise InputError(f"delta_e2000: inputs must have the same shape, got {a.shape} and {b.shape}")
    return np.asarray(colour.delta_E(srgb_to_lab(a), srgb_to_lab(b), method="CIE 2000"), dtype=np.float64)


def delta_e_summary(a: Any, b: Any, border: int = 0) -> dict[str, float]:
    """Summarise per-pixel CIEDE2000 between two display-sRGB images.

    Returns
    -------
    dict with ``mean``, ``median``, ``p95``, ``p99`` and ``max`` (floats).

    Notes
    -----
    H×W×3 display sRGB in [0, 1]; ``border`` pixels dropped from every side.
    """
    x, y = _pair(a, b, "delta_e_summary")
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"delta_e_summary: expected H×W×3 display-sRGB images, got shape {x.shape}")
    border = _check_border(border, "delta_e_summary")
    de = delta_e2000(_crop(x, border, "delta_e_summary"), _crop(y, border, "delta_e_summary")).ravel()
    p50, p95, p99 = np.percentile(de, [50.0, 95.0, 99.0])
    return {"mean": float(de.mean()), "median": float(p50), "p95": float(p95),
            "p99": float(p99), "max": float(de.max())}


def neutral_delta_e(srgb: Any) -> np.ndarray:
    """Compute the CIEDE2000 of display-sRGB colours from the neutral grey of the same lightness.

    Notes
    -----
    (..., 3) display sRGB in [0, 1] (clipped) → (...) float64: ΔE00 between
    each colour's Lab and (L*, 0, 0). Used to score how far light sources or
    grey patches drift from neutral (a cast, magenta or orange highlights).

    References
    ----------
    Sharma, Wu, Dalal (2005), *Color Res. Appl.* 30(1), 21–30.
    """
    colour = _colour()
    lab = srgb_to_lab(_srgb_array(srgb, "srgb", "neutral_delta_e"))
    grey = lab.copy()
    grey[..., 1:] = 0.0
    return np.asarray(colour.delta_E(lab, grey, method="CIE 2000"), dtype=np.float64)


def angular_error(est_rgb: Any, true_rgb: Any) -> Any:
    """Compute the angle in degrees between estimated and true RGB vectors (e.g. illuminants).

    Notes
    -----
    (3,) → float, (..., 3) → (...) float64 array; inputs broadcast against
    each other. Computed as ``atan2(|a × b|, a · b)``, accurate for tiny
    angles. Zero vectors raise :class:`~ispkit.errors.InputError`.

    References
    ----------
    Hordley, Finlayson (2006), *JOSA A* 23(5), 1008–1020.
    """
    a = _array(est_rgb, "est_rgb", "angular_error")
    b = _array(true_rgb, "true_rgb", "angular_error")
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise InputError(f"angular_error: expected (..., 3) RGB vectors, got shapes {a.shape} and {b.shape}")
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise InputError(f"angular_error: shapes {a.shape} and {b.shape} do not broadcast") from None
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    if np.any(na == 0) or np.any(nb == 0):
        raise InputError("angular_error: a zero RGB vector has no direction; pass non-zero vectors")
    a, b = a / na[..., None], b / nb[..., None]
    ang = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1)))
    return float(ang) if ang.ndim == 0 else ang


def _scaled_boxes(capture: "SyntheticCapture", shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    ch, cw = capture.frame.data.shape[:2]
    sy, sx = shape[0] / ch, shape[1] / cw
    boxes = []
    for y0, y1, x0, x1 in capture.patch_boxes:
        b = (math.ceil(y0 * sy), math.floor(y1 * sy), math.ceil(x0 * sx), math.floor(x1 * sx))
        if b[1] <= b[0] or b[3] <= b[2]:
            raise InputError(
                f"colorchecker_delta_e: an image of shape {shape} is too small to hold the chart "
                f"patches of a {ch}×{cw} capture; render at a larger size")
        boxes.append(b)
    return boxes


def colorchecker_delta_e(display_srgb_image: Any, capture: "SyntheticCapture", *,
                         match_exposure: bool = False) -> np.ndarray:
    """Score a rendered synthetic capture: CIEDE2000 of each ColorChecker patch against the truth.

    Parameters
    ----------
    display_srgb_image : H×W×3 display sRGB in [0, 1] (array or DISPLAY_RGB
        Frame) rendered from ``capture.frame``. An image of another size
        (e.g. a half-size render) has the patch boxes scaled to it.
    capture : the :class:`~ispkit.io.synthetic.SyntheticCapture` it was rendered from.
    match_exposure : first scale the decoded linear image by the one factor
        that best matches the luminance of neutral 8 … 3.5 to the reference,
        so only colour and tone-shape errors remain (exposure-corrected ΔE).

    Returns
    -------
    (24,) float64 ΔE00, chart order (row-major from "dark skin").

    Notes
    -----
    Patch colours are the mean of the encoded values inside
    ``capture.patch_boxes``; they are compared with ``capture.reference_lab``
    (the chart under D65 as a perfect sRGB render shows it).

    References
    ----------
    Sharma, Wu, Dalal (2005); McCamy, Marcus, Davidson (1976).
    """
    colour = _colour()
    img = _array(display_srgb_image, "display_srgb_image", "colorchecker_delta_e")
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"colorchecker_delta_e: expected an H×W×3 display-sRGB image, got shape {img.shape}")
    img = np.clip(img, 0.0, 1.0)
    means = np.array([img[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
                      for y0, y1, x0, x1 in _scaled_boxes(capture, img.shape)])
    xyz = np.asarray(colour.sRGB_to_XYZ(means), dtype=np.float64)
    if match_exposure:
        ref_xyz = np.asarray(colour.Lab_to_XYZ(capture.reference_lab), dtype=np.float64)
        ym = xyz[list(_EXPOSURE_PATCHES), 1]
        yr = ref_xyz[list(_EXPOSURE_PATCHES), 1]
        denom = float(ym @ ym)
        if denom <= 0.0:
            raise InputError("colorchecker_delta_e: the neutral patches are black; cannot match exposure")
        xyz = xyz * float(ym @ yr) / denom
    lab = colour.XYZ_to_Lab(xyz)
    return np.asarray(colour.delta_E(lab, capture.reference_lab, method="CIE 2000"), dtype=np.float64)
