"""Named RGB working spaces, chromatic adaptation, CCT ↔ xy and the 3×3 matrix kernel.

All colorimetry comes from colour-science (primaries, white points,
chromatic adaptation transforms, CCT methods); this module only names the
spaces the pipeline uses and packages the matrices.

Conventions
-----------
* Matrices act on column vectors: ``rgb = M @ xyz``. XYZ is relative, with
  the white of a space at Y = 1, so RGB (1, 1, 1) is that white.
* Each space's RGB ↔ XYZ matrices are *derived* from its primaries and white
  point (``colour.normalised_primary_matrix``), so they are exact inverses
  and (1, 1, 1) maps to the white point to machine precision. colour's own
  sRGB and ProPhoto objects carry the rounded matrices printed in their
  standards instead; the two differ by at most 3.7e-4 (sRGB XYZ→RGB).
* ``"XYZ"`` is CIE 1931 XYZ relative to D50 (x, y = 0.3457, 0.3585), the
  DNG profile connection space and the ICC PCS white.

References
----------
IEC 61966-2-1:1999 (sRGB); SMPTE EG 432-1 / Apple Display P3; Adobe RGB (1998)
Color Image Encoding 2005-05; ANSI/I3A IT10.7666:2003 (ROMM / ProPhoto RGB);
ITU-R BT.2020-2. Lam, K. M. (1985), *Metamerism and colour constancy*, PhD
thesis, University of Bradford (the Bradford transform). Robertson, A. R.
(1968), *Computation of correlated color temperature and distribution
temperature*, JOSA 58(11), 1528–1535. Ohno, Y. (2014), *Practical use and
calculation of CCT and Duv*, LEUKOS 10(1), 47–55. McCamy, C. S. (1992),
*Correlated color temperature as an explicit function of chromaticity
coordinates*, Color Res. Appl. 17(2), 142–144.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ._kernels.color import color_matrix_numpy, color_matrix_rows

__all__ = [
    "COLOR_SPACES",
    "COLOR_SPACE_ALIASES",
    "CHROMATIC_ADAPTATION_METHODS",
    "XY_TO_CCT_METHODS",
    "CCT_TO_XY_METHODS",
    "ColorSpace",
    "canonical_color_space",
    "get_color_space",
    "xyz_to_rgb_matrix",
    "rgb_to_xyz_matrix",
    "rgb_to_rgb_matrix",
    "chromatic_adaptation_matrix",
    "whitepoint_xyz",
    "xy_to_cct",
    "cct_to_xy",
    "apply_color_matrix",
    "apply_color_matrix_reference",
]


def _colour() -> Any:
    """Import colour-science lazily (≈1 s), silencing its optional-matplotlib notice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour  # noqa: PLC0415
    return colour


# canonical name → (colour.RGB_COLOURSPACES key or None for XYZ, lowercase aliases)
COLOR_SPACES: Mapping[str, tuple[str | None, tuple[str, ...]]] = MappingProxyType({
    "sRGB": ("sRGB", ("srgb", "rec709", "bt709", "linear_srgb")),
    "Display P3": ("Display P3", ("p3", "display_p3", "p3_d65")),
    "Adobe RGB (1998)": ("Adobe RGB (1998)", ("adobe_rgb", "adobergb", "adobe_rgb_1998")),
    "ProPhoto RGB": ("ProPhoto RGB", ("prophoto", "prophoto_rgb", "romm", "romm_rgb")),
    "ITU-R BT.2020": ("ITU-R BT.2020", ("rec2020", "bt2020", "rec_2020")),
    "XYZ": (None, ("xyz", "xyz_d50", "ciexyz")),
})
"""The working / output spaces: canonical name → (colour-science name, aliases)."""

COLOR_SPACE_ALIASES: Mapping[str, str] = MappingProxyType({
    **{name.lower(): name for name in COLOR_SPACES},
    **{alias: name for name, (_, aliases) in COLOR_SPACES.items() for alias in aliases},
})
"""Lower-case alias (and lower-cased canonical name) → canonical name."""

CHROMATIC_ADAPTATION_METHODS: Mapping[str, str] = MappingProxyType({
    "bradford": "Bradford",
    "cat02": "CAT02",
    "cat16": "CAT16",
    "von_kries": "Von Kries",
    "xyz_scaling": "XYZ Scaling",
    "sharp": "Sharp",
    "fairchild": "Fairchild",
    "cmccat97": "CMCCAT97",
    "cmccat2000": "CMCCAT2000",
    "bianco2010": "Bianco 2010",
})
"""Von Kries-type transforms by key → colour-science's name (keys are matched case-insensitively)."""

XY_TO_CCT_METHODS = frozenset({"robertson1968", "ohno2013", "mccamy1992", "hernandez1999"})
"""xy → CCT methods. ``"robertson1968"`` is the one the DNG SDK uses (dng_temperature)."""

CCT_TO_XY_METHODS = frozenset({"robertson1968", "ohno2013", "krystek1985", "kang2002"})
"""CCT → xy methods (on the Planckian locus, Duv = 0; ``"kang2002"`` is a polynomial fit to it)."""


@dataclass(frozen=True, eq=False)
class ColorSpace:
    """A named linear RGB space with its white and exact RGB ↔ XYZ matrices.

    Attributes
    ----------
    name : canonical name (a key of :data:`COLOR_SPACES`).
    whitepoint : (2,) CIE 1931 xy of the white.
    whitepoint_name : "D65" or "D50".
    rgb_to_xyz, xyz_to_rgb : (3, 3) float64, exact inverses, white at Y = 1.
    """

    name: str
    whitepoint: np.ndarray
    whitepoint_name: str
    rgb_to_xyz: np.ndarray
    xyz_to_rgb: np.ndarray


def _chromatic_adaptation_key(method: str) -> str:
    key = str(method).strip().lower().replace(" ", "_").replace("-", "_")
    if key not in CHROMATIC_ADAPTATION_METHODS:
        # also accept colour-science's own spelling ("Von Kries", "XYZ Scaling", "Bianco 2010")
        by_colour = {v.lower(): k for k, v in CHROMATIC_ADAPTATION_METHODS.items()}
        key = by_colour.get(str(method).strip().lower(), key)
    if key not in CHROMATIC_ADAPTATION_METHODS:
        raise unknown_name("chromatic adaptation method", method, CHROMATIC_ADAPTATION_METHODS,
                           "chromatic_adaptation_matrix")
    return key


def canonical_color_space(name: object, where: str = "") -> str:
    """Return the canonical name of a colour space given its name or alias.

    Raises :class:`~ispkit.errors.UnknownNameError` listing the valid names.
    """
    if isinstance(name, str):
        if name in COLOR_SPACES:
            return name
        key = name.strip().lower()
        if key in COLOR_SPACE_ALIASES:
            return COLOR_SPACE_ALIASES[key]
    valid = list(COLOR_SPACES) + [a for _, aliases in COLOR_SPACES.values() for a in aliases]
    raise unknown_name("color space", name, valid, where)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=None)
def _build_color_space(name: str) -> ColorSpace:
    colour = _colour()
    colour_name, _ = COLOR_SPACES[name]
    if colour_name is None:  # XYZ relative to D50
        xy = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
        return ColorSpace(name, _readonly(xy), "D50", _readonly(np.eye(3)), _readonly(np.eye(3)))
    cs = colour.RGB_COLOURSPACES[colour_name]
    npm = np.asarray(colour.normalised_primary_matrix(cs.primaries, cs.whitepoint), dtype=np.float64)
    return ColorSpace(name, _readonly(cs.whitepoint), str(cs.whitepoint_name), _readonly(npm),
                      _readonly(np.linalg.inv(npm)))


def get_color_space(name: str) -> ColorSpace:
    """Return the :class:`ColorSpace` named ``name`` (canonical name or alias)."""
    return _build_color_space(canonical_color_space(name, "get_color_space"))


def xyz_to_rgb_matrix(space: str) -> np.ndarray:
    """Return the (3, 3) matrix taking XYZ (white at Y = 1) to linear RGB of ``space``.

    Notes
    -----
    Derived from the primaries and white point given by colour-science, so
    ``xyz_to_rgb_matrix(s) @ whitepoint_xyz(s) == (1, 1, 1)`` to 1e-15.
    """
    return get_color_space(space).xyz_to_rgb.copy()


def rgb_to_xyz_matrix(space: str) -> np.ndarray:
    """Return the (3, 3) matrix taking linear RGB of ``space`` to XYZ (white at Y = 1)."""
    return get_color_space(space).rgb_to_xyz.copy()


def whitepoint_xyz(space: str) -> np.ndarray:
    """Return the XYZ (Y = 1) of the white of ``space``."""
    colour = _colour()
    return np.asarray(colour.xy_to_XYZ(get_color_space(space).whitepoint), dtype=np.float64)


def _check_xy(xy: Any, name: str, where: str) -> np.ndarray:
    a = np.asarray(xy, dtype=np.float64)
    if a.shape != (2,) or not np.all(np.isfinite(a)) or a[1] <= 0:
        raise ParameterError(f"{where}: {name} must be a finite xy chromaticity (2,) with y > 0, got {xy!r}")
    return a


def chromatic_adaptation_matrix(src_xy: Any, dst_xy: Any, method: str = "bradford") -> np.ndarray:
    """Return the (3, 3) von Kries-type matrix adapting XYZ from white ``src_xy`` to ``dst_xy``.

    Parameters
    ----------
    src_xy, dst_xy : (2,) CIE 1931 xy of the source and destination whites.
    method : a key of :data:`CHROMATIC_ADAPTATION_METHODS` (case-insensitive,
        colour-science spellings such as ``"Bradford"`` or ``"Von Kries"`` work too).

    Notes
    -----
    Acts on XYZ column vectors; maps ``xy_to_XYZ(src_xy)`` (Y = 1) exactly to
    ``xy_to_XYZ(dst_xy)``. Computed by colour-science's
    ``matrix_chromatic_adaptation_VonKries``.

    References
    ----------
    Lam (1985) for Bradford; CIE 159:2004 for CAT02; Li et al. (2017) for CAT16.
    """
    key = _chromatic_adaptation_key(method)
    src = _check_xy(src_xy, "src_xy", "chromatic_adaptation_matrix")
    dst = _check_xy(dst_xy, "dst_xy", "chromatic_adaptation_matrix")
    colour = _colour()
    m = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(src), colour.xy_to_XYZ(dst), transform=CHROMATIC_ADAPTATION_METHODS[key])
    return np.asarray(m, dtype=np.float64)


def rgb_to_rgb_matrix(src: str, dst: str, cat: str | None = "bradford") -> np.ndarray:
    """Return the (3, 3) matrix converting linear RGB of space ``src`` to space ``dst``.

    Parameters
    ----------
    src, dst : colour space names or aliases (see :data:`COLOR_SPACES`).
    cat : chromatic adaptation between the two whites (a key of
        :data:`CHROMATIC_ADAPTATION_METHODS`), or None for none.

    Notes
    -----
    ``xyz_to_rgb(dst) · CAT(white_src → white_dst) · rgb_to_xyz(src)``: the
    white (1, 1, 1) of ``src`` maps to (1, 1, 1) of ``dst`` when ``cat`` is set.
    """
    s = get_color_space(src)
    d = get_color_space(dst)
    m = s.rgb_to_xyz
    if cat is not None and not np.array_equal(s.whitepoint, d.whitepoint):
        m = chromatic_adaptation_matrix(s.whitepoint, d.whitepoint, cat) @ m
    return d.xyz_to_rgb @ m


def _check_method(method: str, valid: frozenset, where: str) -> str:
    key = str(method).strip().lower()
    if key not in valid:
        raise unknown_name("CCT method", method, valid, where)
    return key


def xy_to_cct(xy: Any, method: str = "robertson1968") -> Any:
    """Return the correlated colour temperature (K) of CIE 1931 chromaticities ``xy``.

    Parameters
    ----------
    xy : (..., 2) chromaticities.
    method : a key of :data:`XY_TO_CCT_METHODS`. The default ``"robertson1968"``
        (isotemperature lines in CIE 1960 uv, Wyszecki & Stiles table 1(3.11),
        Lindbloom's 325 mired correction) is the method of the DNG SDK's
        ``dng_temperature``, which the DNG colour interpolation depends on.

    Notes
    -----
    Returns a float for one xy, else an array of shape ``xy.shape[:-1]``.
    """
    key = _check_method(method, XY_TO_CCT_METHODS, "xy_to_cct")
    a = np.asarray(xy, dtype=np.float64)
    if a.shape[-1:] != (2,) or not np.all(np.isfinite(a)):
        raise ParameterError(f"xy_to_cct: expected finite (..., 2) chromaticities, got {xy!r}")
    colour = _colour()
    if key == "robertson1968":
        t = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(a))[..., 0]
    elif key == "ohno2013":
        t = colour.temperature.uv_to_CCT_Ohno2013(colour.xy_to_UCS_uv(a))[..., 0]
    elif key == "mccamy1992":
        t = colour.temperature.xy_to_CCT_McCamy1992(a)
    else:
        t = colour.temperature.xy_to_CCT_Hernandez1999(a)
    t = np.asarray(t, dtype=np.float64)
    return float(t) if t.ndim == 0 else t


def cct_to_xy(cct: Any, method: str = "robertson1968") -> np.ndarray:
    """Return the CIE 1931 xy on the Planckian locus (Duv = 0) at ``cct`` kelvin.

    Parameters
    ----------
    cct : scalar or array of temperatures in K.
    method : a key of :data:`CCT_TO_XY_METHODS`; ``"robertson1968"`` inverts
        :func:`xy_to_cct` with the same isotemperature table.

    Notes
    -----
    Returns shape ``np.shape(cct) + (2,)``.
    """
    key = _check_method(method, CCT_TO_XY_METHODS, "cct_to_xy")
    t = np.asarray(cct, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ParameterError(f"cct_to_xy: temperatures must be finite and positive, got {cct!r}")
    colour = _colour()
    if key == "kang2002":
        return np.asarray(colour.temperature.CCT_to_xy_Kang2002(t), dtype=np.float64)
    if key == "krystek1985":
        uv = colour.temperature.CCT_to_uv_Krystek1985(t)
    else:
        t_duv = np.stack([t, np.zeros_like(t)], axis=-1)
        if key == "robertson1968":
            uv = colour.temperature.CCT_to_uv_Robertson1968(t_duv)
        else:
            uv = colour.temperature.CCT_to_uv_Ohno2013(t_duv)
    return np.asarray(colour.UCS_uv_to_xy(uv), dtype=np.float64)


def _readonly_c(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, read-only view (copy if strided): one Numba signature per kernel."""
    v = np.ascontiguousarray(x).view()
    v.flags.writeable = False
    return v


def _check_matrix(matrix: Any, where: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ParameterError(f"{where}: matrix must be a finite 3×3 array, got shape {np.shape(matrix)}")
    return m


def _check_image(image: Any, where: str) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"{where}: expected an H×W×3 image, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"{where}: expected a float image (scene-linear), got dtype {x.dtype}")
    return x


def apply_color_matrix(image: np.ndarray, matrix: Any, *, out: np.ndarray | None = None,
                       clip: bool = False) -> np.ndarray:
    """Apply a 3×3 matrix to every pixel: ``out[y, x] = matrix @ image[y, x]``.

    Parameters
    ----------
    image : H×W×3 float image (converted to float32 if it is float64).
    matrix : (3, 3) acting on column RGB vectors.
    out : optional C-contiguous H×W×3 float32 buffer; may be ``image`` itself.
    clip : clip the result to [0, 1].

    Notes
    -----
    CAMERA_RGB / LINEAR_RGB, H×W×3 float32 in and out, any range. Numba kernel
    parallel over rows, float32 arithmetic (agrees with the float64 NumPy
    reference :func:`apply_color_matrix_reference` to ~1e-7 relative).
    Non-finite input raises :class:`~ispkit.errors.InputError`.
    """
    m = _check_matrix(matrix, "apply_color_matrix")
    x = _check_image(image, "apply_color_matrix")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if out is None:
        out = np.empty(x.shape, dtype=np.float32)
    elif (not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != np.float32
          or not out.flags.writeable or not out.flags.c_contiguous):
        raise ParameterError(
            f"apply_color_matrix: out must be a writable C-contiguous float32 array of shape {x.shape}, "
            f"got {getattr(out, 'dtype', type(out))} {getattr(out, 'shape', '')}"
        )
    if x.size == 0:
        return out
    bad = color_matrix_rows(_readonly_c(x), m.astype(np.float32), out, bool(clip))
    if bad:
        raise InputError("apply_color_matrix: the image holds NaN or infinite values; "
                         "fix the upstream stage or replace them (np.nan_to_num) first")
    return out


def apply_color_matrix_reference(image: np.ndarray, matrix: Any, *, clip: bool = False) -> np.ndarray:
    """Apply a 3×3 matrix to every pixel with NumPy (reference for :func:`apply_color_matrix`).

    Notes
    -----
    H×W×3 in, float32 out, computed in float64.
    """
    m = _check_matrix(matrix, "apply_color_matrix_reference")
    x = _check_image(image, "apply_color_matrix_reference")
    return color_matrix_numpy(x, m, clip)
