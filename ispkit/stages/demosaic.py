"""Bayer demosaicing: RAW_MOSAIC (H×W) → CAMERA_RGB (H×W×3), and its inverse :func:`mosaic`.

Methods (:data:`DEMOSAIC_METHODS`): ``"bilinear"``, ``"malvar2004"``,
``"menon2007"`` (Numba kernels that reproduce colour-demosaicing, borders
included), ``"rcd2017"`` (Ratio Corrected Demosaicing, the default of
RawTherapee and darktable; Numba) and ``"opencv_bilinear"``, ``"opencv_ea"``, ``"opencv_vng"``
(OpenCV's integer implementations, with the conversions documented on each).

References
----------
Losson, O., Macaire, L., Yang, Y., "Comparison of color demosaicing
methods", Advances in Imaging and Electron Physics 162, 2010.

Malvar, H. S., He, L.-W., Cutler, R., "High-quality linear interpolation for
demosaicing of Bayer-patterned color images", ICASSP 2004.

Menon, D., Andriani, S., Calvagno, G., "Demosaicing With Directional
Filtering and a posteriori Decision", IEEE Trans. Image Processing 16(1),
2007.

Chang, E., Cheung, S., Pan, D. Y., "Color filter array recovery using a
threshold-based variable number of gradients", Proc. SPIE 3650, 1999 (the
VNG method OpenCV implements).

Sanz Rodríguez, L., "Ratio Corrected Demosaicing", release 2.2/2.3, 2017,
https://github.com/LuisSR/RCD-Demosaicing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from ..errors import InputError, ISPError, ParameterError, unknown_name
from ..frame import Domain, Frame, cfa_color_indices, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels import demosaic as _k
from ._kernels.scratch import recycled_empty
from .highlights import HIGHLIGHT_CLIP_LEVELS_KEY
from .near_clip import near_clip_repair

__all__ = ["DEMOSAIC_METHODS", "NEAR_CLIP_METHODS", "NEAR_CLIP_SATURATION", "demosaic", "mosaic",
           "near_clip_values", "Demosaic"]


# ---------------------------------------------------------------------------
# input checks shared by every method
def _check_mosaic(mosaic: object, where: str) -> np.ndarray:
    x = np.asarray(mosaic)
    if x.ndim != 2:
        raise InputError(f"{where}: expected an H×W Bayer mosaic, got an array of shape {x.shape}; "
                         "pass one colour plane (RAW_MOSAIC), not RGB or packed data")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) or x.dtype == bool):
        raise InputError(f"{where}: expected a real-valued mosaic, got dtype {x.dtype}")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"{where}: a Bayer mosaic needs at least 2×2 pixels, got {x.shape[0]}×{x.shape[1]}")
    return x


def _compute_array(x: np.ndarray, where: str, check: bool = True) -> np.ndarray:
    """The mosaic as a C-contiguous float32 (float64 stays float64) array, checked finite if ``check``."""
    dtype = np.float64 if x.dtype in (np.float64, np.longdouble) else np.float32
    xc = np.ascontiguousarray(x, dtype=dtype)
    if check and np.issubdtype(x.dtype, np.floating):
        # one fast reduction; the exact (slower) test only when the sum is not finite
        if not np.isfinite(np.sum(xc)) and not np.isfinite(xc).all():
            _raise_nonfinite(int(np.count_nonzero(~np.isfinite(xc))), where)
    return xc


def _raise_nonfinite(count: int, where: str) -> None:
    raise InputError(f"{where}: the mosaic holds {count} NaN or infinite value(s); "
                     "repair or mask them before demosaicing")


def _check_out(out: np.ndarray | None, shape: tuple[int, int], x: np.ndarray, where: str) -> np.ndarray:
    want = (shape[0], shape[1], 3)
    if out is None:
        return recycled_empty(want, np.float32)
    if not isinstance(out, np.ndarray) or out.shape != want or out.dtype != np.float32:
        got = f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ParameterError(f"{where}: out must be a float32 array of shape {want}, got a {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ParameterError(f"{where}: out must be C-contiguous and writeable")
    if np.may_share_memory(out, x):
        raise ParameterError(f"{where}: out must not share memory with the mosaic")
    return out


def _nbands(rows: int, min_rows: int) -> int:
    """Row bands for the parallel kernels: four per thread, each at least ``min_rows`` tall."""
    return int(max(1, min(4 * numba.get_num_threads(), rows // min_rows)))


def _run_kernel(kernel: Callable[..., int], *args: object) -> int:
    """Run a parallel kernel with bands handed out dynamically (one at a time).

    On a machine shared with other work a statically split loop waits for
    its slowest thread; ``set_parallel_chunksize`` is thread-local and is
    restored afterwards.
    """
    previous = numba.set_parallel_chunksize(1)
    try:
        return int(kernel(*args))
    finally:
        numba.set_parallel_chunksize(previous)


# ---------------------------------------------------------------------------
# the Numba methods
def demosaic_bilinear(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, out: np.ndarray | None = None
                      ) -> np.ndarray:
    """Demosaic by bilinear interpolation of each colour plane.

    Notes
    -----
    RAW_MOSAIC H×W (any real dtype, finite) → H×W×3 float32 RGB, same range
    as the input (not clipped). Computed in float32 (float64 for float64
    input). Equals colour-demosaicing's ``demosaicing_CFA_Bayer_bilinear``
    away from the one-pixel frame. Borders are mirrored (whole-sample
    symmetric), which keeps the Bayer parity: the frame equals
    colour-demosaicing run on the mosaic mirror-padded by 2 px, and a
    constant-colour mosaic demosaics exactly. (colour-demosaicing pads the
    masked planes half-sample symmetrically, which breaks the parity and
    over-weights the frame — a flat 0.4 grey comes back as 0.9 in the corner.)

    References
    ----------
    Losson, Macaire, Yang, "Comparison of color demosaicing methods",
    Advances in Imaging and Electron Physics 162, 2010.
    """
    where = "demosaic(method='bilinear')"
    x = _compute_array(_check_mosaic(mosaic, where), where, check=False)
    cfa = cfa_color_indices(check_cfa_pattern(cfa_pattern, where))
    res = _check_out(out, x.shape, x, where)
    bad = _run_kernel(_k.bilinear_kernel, x, cfa, _k.color_masks(cfa, x.shape[1]), _k.filter_constants(x.dtype),
                      res, _nbands(x.shape[0], 8))
    if bad:
        _raise_nonfinite(bad, where)
    return res


def demosaic_malvar2004(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, out: np.ndarray | None = None
                        ) -> np.ndarray:
    """Demosaic with Malvar, He and Cutler's gradient-corrected linear filters.

    Notes
    -----
    RAW_MOSAIC H×W (any real dtype, finite) → H×W×3 float32 RGB, not clipped
    (the 5×5 filters overshoot at edges). Computed in float32 (float64 for
    float64 input). Equals colour-demosaicing's
    ``demosaicing_CFA_Bayer_Malvar2004`` away from the two-pixel frame.
    Borders are mirrored (whole-sample symmetric, Bayer parity kept): the
    frame equals colour-demosaicing run on the mosaic mirror-padded by 2 px,
    and constant-colour mosaics demosaic exactly. (colour-demosaicing's
    ``mode="reflect"`` mixes colours at the frame.)

    References
    ----------
    Malvar, H. S., He, L.-W., Cutler, R., "High-quality linear interpolation
    for demosaicing of Bayer-patterned color images", ICASSP 2004.
    """
    where = "demosaic(method='malvar2004')"
    x = _compute_array(_check_mosaic(mosaic, where), where, check=False)
    cfa = cfa_color_indices(check_cfa_pattern(cfa_pattern, where))
    res = _check_out(out, x.shape, x, where)
    bad = _run_kernel(_k.malvar2004_kernel, x, cfa, _k.color_masks(cfa, x.shape[1]),
                      _k.filter_constants(x.dtype), res, _nbands(x.shape[0], 8))
    if bad:
        _raise_nonfinite(bad, where)
    return res


def demosaic_menon2007(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, refine: bool = True,
                       out: np.ndarray | None = None) -> np.ndarray:
    """Demosaic with Menon, Andriani and Calvagno's DDFAPD (directional filtering, a-posteriori decision).

    Green is interpolated horizontally and vertically, the direction with the
    smaller colour-difference gradient (5×5 classifier) is kept per pixel,
    red/blue follow from colour differences along that direction, and the
    optional refining step (``refine=True``) re-estimates all three planes
    from smoothed colour differences.

    Notes
    -----
    RAW_MOSAIC H×W (any real dtype, finite) → H×W×3 float32 RGB, not clipped.
    Equals colour-demosaicing's ``demosaicing_CFA_Bayer_Menon2007``
    (``mode="mirror"`` filtering, zero-padded classifier), borders included.
    Computed in float32 (float64 for float64 input), except the direction
    classifier (green estimates, gradients, decision), which always runs in
    float64 in colour-demosaicing's summation order: its decisions are
    discontinuous, and so agree bit for bit with colour-demosaicing's on the
    same mosaic instead of flipping on exact-arithmetic ties.

    References
    ----------
    Menon, D., Andriani, S., Calvagno, G., "Demosaicing With Directional
    Filtering and a posteriori Decision", IEEE Trans. Image Processing
    16(1):132–141, 2007.
    """
    where = "demosaic(method='menon2007')"
    if not isinstance(refine, (bool, np.bool_)):
        raise ParameterError(f"{where}: refine must be True or False, got {refine!r}")
    x = _compute_array(_check_mosaic(mosaic, where), where, check=False)
    cfa = cfa_color_indices(check_cfa_pattern(cfa_pattern, where))
    res = _check_out(out, x.shape, x, where)
    ws, wd, wm = _k.menon2007_workspace(_nbands(x.shape[0], 96), x.shape[1], x.dtype)
    bad = _run_kernel(_k.menon2007_kernel, x, cfa, _k.color_masks(cfa, x.shape[1], _k.MENON_PAD),
                      _k.filter_constants(x.dtype), _k.filter_constants(np.float64), bool(refine), res, ws, wd, wm)
    if bad:
        _raise_nonfinite(bad, where)
    return res


def demosaic_rcd2017(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, out: np.ndarray | None = None
                     ) -> np.ndarray:
    """Demosaic with Luis Sanz Rodríguez's Ratio Corrected Demosaicing (RCD).

    1. Vertical/horizontal discrimination: the share of vertical energy in
       the squared (1, -3, -1, 6, -1, -3, 1) high-pass response, summed over
       three pixels along each direction (floored at 1e-10).
    2. A 3×3 low-pass filter (1/4, 1/8, 1/16) at the red and blue sites.
    3. Green at red and blue sites: each cardinal neighbour scaled by the
       low-pass ratio ``1 + (lpf_c - lpf_n) / (eps + lpf_c + lpf_n)``, the
       two estimates along each axis weighted by the opposite gradient, the
       axes blended by the discrimination (its diagonal-neighbour mean when
       that is more decisive).
    4. Red at blue sites and blue at red sites from diagonal colour
       differences (P/Q discrimination built as in step 1 along the
       diagonals), then red and blue at green sites from cardinal colour
       differences blended by the V/H discrimination. ``eps`` = 1e-5.

    Notes
    -----
    RAW_MOSAIC H×W (any real dtype, finite) → H×W×3 float32 RGB, not clipped.
    Computed in float32 (float64 for float64 input). The epsilons assume the
    nominal [0, 1] range, as in RawTherapee and darktable (which scale the
    raw to [0, 1] and clamp it); here the input is neither scaled nor
    clamped — only the low-pass filter is floored at 0, which keeps the
    ratio correction within [0, 2] for slightly negative (noisy black)
    samples. Red and blue at green sites follow the original release
    (weight ``VH_Disc`` on the horizontal estimate, as for green).
    Borders are mirrored (whole-sample symmetric, Bayer parity kept), as
    for the other Numba methods, instead of the reference code's bilinear
    4-px frame; constant-colour mosaics demosaic exactly.

    References
    ----------
    Sanz Rodríguez, L., "Ratio Corrected Demosaicing", release 2.2 (2017),
    https://github.com/LuisSR/RCD-Demosaicing; the tiled versions in
    RawTherapee (``rtengine/rcd_demosaic.cc``) and darktable
    (``src/iop/demosaicing/rcd.c``).
    """
    where = "demosaic(method='rcd2017')"
    x = _compute_array(_check_mosaic(mosaic, where), where, check=False)
    cfa = cfa_color_indices(check_cfa_pattern(cfa_pattern, where))
    res = _check_out(out, x.shape, x, where)
    ntiles = -(-x.shape[0] // _k.RCD_TILE_ROWS)
    ws = _k.rcd2017_workspace(int(max(1, min(numba.get_num_threads(), ntiles))), x.shape[1], x.dtype)
    bad = _run_kernel(_k.rcd2017_kernel, x, cfa, _k.color_masks(cfa, x.shape[1], _k.RCD_PAD),
                      _k.rcd_constants(x.dtype), res, ws)
    if bad:
        _raise_nonfinite(bad, where)
    return res


# ---------------------------------------------------------------------------
# OpenCV
# OpenCV ≥ 5 names Bayer codes from the top-left 2×2 block (COLOR_BayerRGGB2RGB);
# the older two-letter names read the second row and column (RGGB == "BG").
_OPENCV_LEGACY = {"RGGB": "BG", "BGGR": "RG", "GRBG": "GB", "GBRG": "GR"}
_OPENCV_SUFFIX = {"opencv_bilinear": "", "opencv_ea": "_EA", "opencv_vng": "_VNG"}


def _opencv_code(cv2, pattern: str, method: str) -> int:
    suffix = _OPENCV_SUFFIX[method]
    code = getattr(cv2, f"COLOR_Bayer{pattern}2RGB{suffix}", None)
    if code is None:
        code = getattr(cv2, f"COLOR_Bayer{_OPENCV_LEGACY[pattern]}2RGB{suffix}")
    return int(code)


def _quantise(x: np.ndarray, bits: int, where: str) -> tuple[np.ndarray, float]:
    """Map the mosaic to uint8/uint16 for OpenCV; return the integers and the scale used."""
    top = (1 << bits) - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        lo, hi = int(x.min()), int(x.max())
        if lo >= 0 and hi <= top:
            return x.astype(dtype), 1.0
        if bits == 8:
            raise ParameterError(f"{where}: OpenCV's VNG demosaicing accepts 8-bit data only; this integer "
                                 f"mosaic spans [{lo}, {hi}], which uint8 cannot hold. Use 'opencv_ea' or "
                                 "'menon2007' for deeper data")
        xf = x.astype(np.float64)
    else:
        xf = _compute_array(x, where)
    lo, hi = float(xf.min()), float(xf.max())
    if bits == 8:
        for scale in (255.0, 1.0):
            q = xf * scale
            if lo >= 0.0 and hi * scale <= 255.0 + 1e-6 and np.all(np.abs(q - np.round(q)) <= 1e-3):
                return np.round(q).astype(np.uint8), scale
        raise ParameterError(
            f"{where}: OpenCV's VNG demosaicing accepts 8-bit data only, and this {x.dtype} mosaic (range "
            f"[{lo:.6g}, {hi:.6g}]) is not representable as uint8 (values k/255 in [0, 1], or integers "
            "0..255). Quantise it yourself, e.g. np.round(x * 255) / 255 (8-bit precision), or use "
            "'opencv_ea' / 'menon2007'")
    scale = top / max(1.0, hi)
    q = np.clip(xf, 0.0, None) * scale
    return np.rint(q).astype(dtype), scale


def _demosaic_opencv(mosaic: np.ndarray, cfa_pattern: str, method: str, out: np.ndarray | None) -> np.ndarray:
    where = f"demosaic(method={method!r})"
    x = _check_mosaic(mosaic, where)
    pattern = check_cfa_pattern(cfa_pattern, where)
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv is a declared dependency
        raise ISPError(f"{where} needs OpenCV (pip install opencv-python-headless)") from exc
    res = _check_out(out, x.shape, x, where)
    q, scale = _quantise(x, 8 if method == "opencv_vng" else 16, where)
    rgb = cv2.demosaicing(np.ascontiguousarray(q), _opencv_code(cv2, pattern, method))
    np.divide(rgb, np.float32(scale), out=res, dtype=np.float32, casting="unsafe")
    return res


def demosaic_opencv_bilinear(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, out: np.ndarray | None = None
                             ) -> np.ndarray:
    """Demosaic with OpenCV's bilinear Bayer conversion (``cv2.demosaicing``, 16-bit).

    Notes
    -----
    RAW_MOSAIC H×W → H×W×3 float32. OpenCV takes integers, so the mosaic is
    quantised to uint16: integer input within 0..65535 is passed unchanged;
    float input is clipped below at 0 and scaled by ``65535 / max(1, max(x))``
    (so [0, 1] data keeps 16-bit precision, brighter data keeps its range),
    and the result is scaled back. Borders follow OpenCV, not
    colour-demosaicing.

    References
    ----------
    OpenCV, ``cv::demosaicing`` with ``COLOR_Bayer…2RGB``; Losson, Macaire,
    Yang, "Comparison of color demosaicing methods", 2010.
    """
    return _demosaic_opencv(mosaic, cfa_pattern, "opencv_bilinear", out)


def demosaic_opencv_ea(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, out: np.ndarray | None = None
                       ) -> np.ndarray:
    """Demosaic with OpenCV's edge-aware Bayer conversion (``COLOR_Bayer…2RGB_EA``, 16-bit).

    Notes
    -----
    RAW_MOSAIC H×W → H×W×3 float32; quantised to uint16 and back exactly as
    in ``opencv_bilinear``.

    References
    ----------
    OpenCV, ``cv::demosaicing`` with ``COLOR_Bayer…2RGB_EA`` (edge-aware:
    interpolates green along the smaller of the horizontal and vertical
    gradients).
    """
    return _demosaic_opencv(mosaic, cfa_pattern, "opencv_ea", out)


def demosaic_opencv_vng(mosaic: np.ndarray, cfa_pattern: str = "RGGB", *, out: np.ndarray | None = None
                        ) -> np.ndarray:
    """Demosaic with OpenCV's variable-number-of-gradients method (``COLOR_Bayer…2RGB_VNG``, 8-bit only).

    Notes
    -----
    RAW_MOSAIC H×W → H×W×3 float32. OpenCV implements VNG for 8-bit data
    only, and this method never quantises silently: the mosaic must be
    representable as uint8 — integers 0..255 (passed as they are) or floats
    ``k/255`` in [0, 1] (scaled by 255 and back) — otherwise
    :class:`~ispkit.errors.ParameterError` says so.

    References
    ----------
    Chang, E., Cheung, S., Pan, D. Y., "Color filter array recovery using a
    threshold-based variable number of gradients", Proc. SPIE 3650, 1999.
    """
    return _demosaic_opencv(mosaic, cfa_pattern, "opencv_vng", out)


#: Demosaicing methods by name (author + year for the published algorithms).
DEMOSAIC_METHODS: dict[str, Callable[..., np.ndarray]] = {
    "bilinear": demosaic_bilinear,
    "malvar2004": demosaic_malvar2004,
    "menon2007": demosaic_menon2007,
    "rcd2017": demosaic_rcd2017,
    "opencv_bilinear": demosaic_opencv_bilinear,
    "opencv_ea": demosaic_opencv_ea,
    "opencv_vng": demosaic_opencv_vng,
}


def demosaic(mosaic: np.ndarray, cfa_pattern: str = "RGGB", method: str = "malvar2004", *,
             refine: bool = True, clip_level: float | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Interpolate the two missing colours at every pixel of a Bayer mosaic.

    Parameters
    ----------
    mosaic : H×W array, any real dtype, finite; H, W ≥ 2 (odd sizes work).
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG", read from the top-left pixel.
    method : a key of :data:`DEMOSAIC_METHODS`.
    refine : Menon (2007) only — run the refining step (default True).
    clip_level : clip-aware interpolation: samples above this level are
        limited to it before the missing colours are interpolated, and every
        pixel keeps its own recorded sample. Pass the lowest channel white
        point (every channel is still recorded below it): clipped regions
        then interpolate as the neutral they will be displayed as, instead
        of mixing channels clipped at different levels, which leaves
        cyan/yellow/magenta specks along clipped edges. None (default)
        interpolates the samples as they are.
    out : optional preallocated C-contiguous float32 H×W×3 array to fill.

    Returns
    -------
    H×W×3 float32 RGB (``out`` when given).

    Notes
    -----
    RAW_MOSAIC → CAMERA_RGB. Values are never rescaled or clipped (the Numba
    methods keep the input's range; see the OpenCV methods for their
    integer conversion). Computation is float32, float64 for float64 input.
    The Numba methods mirror the borders (Bayer parity kept).

    Raises
    ------
    UnknownNameError : unknown ``method`` or ``cfa_pattern`` (lists the valid ones).
    InputError : not 2-D, smaller than 2×2, not real, or not finite (the
        Numba kernels count non-finite values while they run, so a given
        ``out`` is overwritten with meaningless values before this is raised).
    ParameterError : bad ``out``; ``refine=False`` for a method other than
        menon2007; data ``opencv_vng`` cannot take.

    References
    ----------
    See each method's function in :data:`DEMOSAIC_METHODS`.
    """
    fn = DEMOSAIC_METHODS.get(method) if isinstance(method, str) else None
    if fn is None:
        raise unknown_name("demosaic method", method, DEMOSAIC_METHODS, "demosaic")
    if method != "menon2007" and refine is not True:
        raise ParameterError(f"demosaic: refine={refine!r} applies only to method 'menon2007', "
                             f"not {method!r}; leave it at its default")
    kwargs = {"refine": refine} if method == "menon2007" else {}
    if clip_level is None:
        return fn(mosaic, cfa_pattern, out=out, **kwargs)
    return _demosaic_clip_aware(fn, mosaic, cfa_pattern, _check_clip_level(clip_level), out, kwargs)


def _check_clip_level(clip_level: object) -> float:
    try:
        level = float(clip_level)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        level = float("nan")
    if not (np.isfinite(level) and level > 0):
        raise ParameterError(f"demosaic: clip_level must be a positive finite number (the lowest channel "
                             f"white point), got {clip_level!r}")
    return level


def _demosaic_clip_aware(fn: Callable[..., np.ndarray], mosaic: np.ndarray, cfa_pattern: str, level: float,
                         out: np.ndarray | None, kwargs: dict) -> np.ndarray:
    """Interpolate from samples limited to ``level``; put each pixel's own sample back."""
    where = "demosaic(clip_level=...)"
    x = _check_mosaic(mosaic, where)
    cfa = cfa_color_indices(check_cfa_pattern(cfa_pattern, where))
    dtype = np.float64 if x.dtype in (np.float64, np.longdouble) else np.float32
    limited = np.minimum(x, dtype(level), dtype=dtype)  # NaN stays NaN: the kernel reports it
    res = fn(limited, cfa_pattern, out=out, **kwargs)
    for dy in (0, 1):
        for dx in (0, 1):
            res[dy::2, dx::2, cfa[dy, dx]] = x[dy::2, dx::2]
    return res


#: Fraction of ``meta.white_point`` from which ``Demosaic(near_clip=...)`` takes a photosite as
#: clipped when no highlight reconstruction recorded its levels.
NEAR_CLIP_SATURATION = 0.99
#: Methods :class:`Demosaic` can run next to clipped highlights (``near_clip``), with the
#: reach of their stencils in pixels (a window this much larger gives the full-frame values).
NEAR_CLIP_METHODS: dict[str, int] = {"rcd2017": _k.RCD_PAD}


def near_clip_values(x: np.ndarray, cfa_pattern: str, clip_levels: np.ndarray, rows: np.ndarray,
                     cols: np.ndarray, method: str = "rcd2017", radius: int = 4, clip_level: float | None = None,
                     **read: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``method``'s values within ``radius`` px of every edge highlight photosite of mosaic ``x``
    (see :func:`ispkit.stages.near_clip.near_clip_repair`, which also takes the ``read`` keywords:
    ``black``, ``scale``, ``lo``, ``hi``, ``patches``; ``rows``/``cols`` list the photosites at or
    above ``clip_levels``; ``clip_level`` as for :func:`demosaic`).

    Returns (ys, xs, rgb (N, 3) float32).
    """
    if method not in NEAR_CLIP_METHODS:
        raise unknown_name("near-clip demosaic method", method, NEAR_CLIP_METHODS, "near_clip_values")
    return near_clip_repair(x, cfa_pattern, clip_levels, rows, cols,
                            lambda win: demosaic(win, cfa_pattern, method, clip_level=clip_level),
                            NEAR_CLIP_METHODS[method], radius, **read)  # type: ignore[arg-type]


def mosaic(rgb: np.ndarray, cfa_pattern: str = "RGGB") -> np.ndarray:
    """Sample an RGB image into a Bayer mosaic (the inverse of :func:`demosaic`).

    Notes
    -----
    H×W×3 (any real dtype, finite) → RAW_MOSAIC H×W float32: each pixel keeps
    the one channel its CFA filter passes, values unchanged.
    """
    where = "mosaic"
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"{where}: expected an H×W×3 RGB image, got an array of shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating) or a.dtype == bool):
        raise InputError(f"{where}: expected a real-valued image, got dtype {a.dtype}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{where}: the image is empty ({a.shape})")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise InputError(f"{where}: the image holds NaN or infinite values")
    cfa = cfa_color_indices(check_cfa_pattern(cfa_pattern, where))
    res = np.empty(a.shape[:2], dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            res[dy::2, dx::2] = a[dy::2, dx::2, cfa[dy, dx]]
    return res


# ---------------------------------------------------------------------------
@register_stage
@dataclass(frozen=True)
class Demosaic(Stage):
    """Interpolate a Bayer mosaic to camera RGB.

    Parameters
    ----------
    method : a key of :data:`DEMOSAIC_METHODS` (default ``"malvar2004"``).
    clip : clip the result to [0, 1] (linear filters overshoot at edges);
        default False keeps the values.
    clip_aware : interpolate the missing colours from samples limited to the
        lowest channel white point (``min(meta.white_point)``; every pixel
        keeps its own sample) — see ``clip_level`` of :func:`demosaic`.
        Removes the coloured specks clipped highlights leave along their
        edges, matching the neutral the ``clip`` highlight method displays
        them as. No effect when the frame carries no white point.
    near_clip : None, or a method of :data:`NEAR_CLIP_METHODS` (``"rcd2017"``)
        that replaces ``method``'s values within ``near_clip_radius`` px of
        every highlight photosite that borders darker ones — where Malvar's
        gradient correction overshoots into cyan, yellow and magenta specks
        (:mod:`ispkit.stages.near_clip`). A photosite is a highlight from
        ``near_clip_level`` × the clip level highlight reconstruction recorded
        (``meta.extra["highlight_clip_levels"]``), else × 0.99 ×
        ``meta.white_point`` (1 when absent). Only tiles near highlights are
        re-demosaiced.
    near_clip_radius : 1 … 16 pixels (default 6: Malvar's stencil reaches 2,
        but the bright unclipped glow around a clipped spot overshoots too;
        on the Blackmagic DNG 4 px leaves 44 specks, 6 px as few as RCD).
    near_clip_level : fraction of the clip level, in (0, 1] (default 1: the
        clipped photosites). Lower values also repair bright unclipped
        edges, where fewer specks form, at a cost that grows with the
        highlights' outline (0.5 re-demosaics ~20 % of a bright, textured frame).

    Notes
    -----
    RAW_MOSAIC H×W float32 (needs ``meta.cfa_pattern``) → CAMERA_RGB H×W×3
    float32.
    """

    type_name = "demosaic"
    method: str = "malvar2004"
    clip: bool = False
    clip_aware: bool = False
    near_clip: str | None = None
    near_clip_radius: int = 6
    near_clip_level: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in DEMOSAIC_METHODS:
            raise unknown_name("demosaic method", self.method, DEMOSAIC_METHODS,
                               "stage 'demosaic' parameter 'method'")
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ParameterError(f"stage 'demosaic' parameter 'clip' must be True or False, got {self.clip!r}")
        if not isinstance(self.clip_aware, (bool, np.bool_)):
            raise ParameterError("stage 'demosaic' parameter 'clip_aware' must be True or False, "
                                 f"got {self.clip_aware!r}")
        if self.near_clip is not None and self.near_clip not in NEAR_CLIP_METHODS:
            raise unknown_name("near-clip demosaic method", self.near_clip, NEAR_CLIP_METHODS,
                               "stage 'demosaic' parameter 'near_clip' (or leave it unset)")
        r = self.near_clip_radius
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)) or not 1 <= r <= 16:
            raise ParameterError(f"stage 'demosaic' parameter 'near_clip_radius' must be an integer from 1 to 16 "
                                 f"(pixels), got {r!r}")
        v = self.near_clip_level
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not 0.0 < float(v) <= 1.0:
            raise ParameterError(f"stage 'demosaic' parameter 'near_clip_level' must be a fraction of the clip "
                                 f"level in (0, 1], got {v!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.CAMERA_RGB,
                         requires=("cfa_pattern",))

    def process(self, frame: Frame) -> Frame:
        wp = frame.meta.white_point
        level = float(np.min(wp)) if self.clip_aware and wp is not None else None
        rgb = demosaic(frame.data, frame.meta.cfa_pattern, self.method, clip_level=level)
        if self.near_clip is not None and self.near_clip != self.method:
            self._repair_near_clip(frame, level, rgb)
        if self.clip:
            np.clip(rgb, 0.0, 1.0, out=rgb)
        return frame.replace(data=rgb, domain=Domain.CAMERA_RGB)

    def highlight_levels(self, meta) -> np.ndarray:
        """The (3,) levels from which a photosite counts as a highlight for ``near_clip``."""
        rec = meta.extra.get(HIGHLIGHT_CLIP_LEVELS_KEY)
        if rec is not None:
            clip = np.asarray(rec, dtype=np.float64).reshape(3)
        else:  # within 1 % of saturation: a raw sample at the white level may round either side of it
            wp = np.ones(3) if meta.white_point is None else np.asarray(meta.white_point, np.float64).reshape(3)
            clip = NEAR_CLIP_SATURATION * wp
        return clip * float(self.near_clip_level)

    def _repair_near_clip(self, frame: Frame, level: float | None, rgb: np.ndarray) -> None:
        x = _compute_array(_check_mosaic(frame.data, "stage 'demosaic'"), "stage 'demosaic'", check=False)
        cfa = frame.meta.cfa_pattern
        levels = self.highlight_levels(frame.meta)
        level_map = np.tile(levels[cfa_color_indices(cfa)].astype(x.dtype),
                            ((x.shape[0] + 1) // 2, (x.shape[1] + 1) // 2))[:x.shape[0], :x.shape[1]]
        rows, cols = np.nonzero(x >= level_map)
        if rows.size == 0:
            return
        ys, xs, vals = near_clip_values(x, cfa, levels, rows, cols, self.near_clip, self.near_clip_radius,
                                        clip_level=level)
        rgb[ys, xs] = vals

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.Mosaic`: the ispkit methods keep each pixel's own sample, so it is exact.

        (OpenCV's methods rewrite a 1-pixel border and round to 16 bits inside.)
        """
        from .inverses import Mosaic

        return Mosaic()
