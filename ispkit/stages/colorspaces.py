"""Named RGB working spaces, chromatic adaptation, CCT ↔ xy and the 3×3 matrix kernel.

The colorimetry on the render path is small literal tables and closed-form
code — the CIE illuminant chromaticities (:data:`ILLUMINANTS_XY`), the
spaces' primaries (:data:`COLOR_SPACE_PRIMARIES`), the Bradford cone matrix
(:data:`BRADFORD_MATRIX`) and Robertson's isotemperature lines
(:data:`ROBERTSON1968_ISOTEMPERATURE_LINES`) — written in colour-science's
operation order, so the results equal colour-science's to the last bit or
two (the tests check every table and function against it). Importing
colour-science costs ≈1 s, so it is imported only for the rarer methods
(the other chromatic adaptation transforms, Ohno, McCamy, Hernández-Andrés,
Krystek, Kang).

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
coordinates*, Color Res. Appl. 17(2), 142–144. CIE 15:2004 *Colorimetry*, 3rd ed.,
tables T.3 and T.8.1 (illuminant chromaticities). Wyszecki, G., Stiles, W. S. (2000),
*Color Science*, 2nd ed., table 1(3.11) (Robertson's isotemperature lines).
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
from ._kernels.scratch import recycled_empty

__all__ = [
    "COLOR_SPACES",
    "COLOR_SPACE_ALIASES",
    "CHROMATIC_ADAPTATION_METHODS",
    "XY_TO_CCT_METHODS",
    "CCT_TO_XY_METHODS",
    "ILLUMINANTS_XY",
    "COLOR_SPACE_PRIMARIES",
    "BRADFORD_MATRIX",
    "ROBERTSON1968_ISOTEMPERATURE_LINES",
    "ColorSpace",
    "illuminant_xy",
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

# --- literal colorimetric tables (each one tested equal to colour-science's) -----------------

ILLUMINANTS_XY: Mapping[str, tuple[float, float]] = MappingProxyType({
    "A": (0.44758, 0.40745),
    "B": (0.34842, 0.35161),
    "C": (0.31006, 0.31616),
    "D50": (0.3457, 0.3585),
    "D55": (0.33243, 0.34744),
    "D65": (0.3127, 0.3290),
    "D75": (0.29903, 0.31488),
    "E": (1.0 / 3.0, 1.0 / 3.0),
    "FL1": (0.3131, 0.3371),
    "FL2": (0.3721, 0.3751),
    "FL3": (0.4091, 0.3941),
    "FL4": (0.4402, 0.4031),
    "FL5": (0.3138, 0.3452),
    "FL6": (0.3779, 0.3882),
    "FL7": (0.3129, 0.3292),
    "FL8": (0.3458, 0.3586),
    "FL9": (0.3741, 0.3727),
    "FL10": (0.3458, 0.3588),
    "FL11": (0.3805, 0.3769),
    "FL12": (0.4370, 0.4042),
})
"""CIE 1931 2° xy of the CIE standard illuminants (CIE 15:2004 tables T.3 and T.8.1).

The values colour-science's ``CCS_ILLUMINANTS["CIE 1931 2 Degree Standard
Observer"]`` holds: D50 and D65 rounded to four digits as in the ICC, sRGB
and DNG usage, the others to five.
"""

COLOR_SPACE_PRIMARIES: Mapping[str, tuple[tuple[tuple[float, float], ...], str]] = MappingProxyType({
    "sRGB": (((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), "D65"),
    "Display P3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "D65"),
    "Adobe RGB (1998)": (((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), "D65"),
    "ProPhoto RGB": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), "D50"),
    "ITU-R BT.2020": (((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), "D65"),
})
"""RGB space → (xy of the R, G, B primaries, name of the white in :data:`ILLUMINANTS_XY`).

IEC 61966-2-1 (sRGB, = BT.709), SMPTE EG 432-1 (Display P3), Adobe RGB
(1998), ROMM RGB (ProPhoto), ITU-R BT.2020 — as colour-science's
``RGB_COLOURSPACES`` give them.
"""

BRADFORD_MATRIX: tuple[tuple[float, float, float], ...] = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)
"""The Bradford XYZ → sharpened cone-response matrix (Lam 1985; the linear form the DNG SDK and ICC use)."""

ROBERTSON1968_ISOTEMPERATURE_LINES: tuple[tuple[float, float, float, float], ...] = (
    (0, 0.18006, 0.26352, -0.24341),
    (10, 0.18066, 0.26589, -0.25479),
    (20, 0.18133, 0.26846, -0.26876),
    (30, 0.18208, 0.27119, -0.28539),
    (40, 0.18293, 0.27407, -0.30470),
    (50, 0.18388, 0.27709, -0.32675),
    (60, 0.18494, 0.28021, -0.35156),
    (70, 0.18611, 0.28342, -0.37915),
    (80, 0.18740, 0.28668, -0.40955),
    (90, 0.18880, 0.28997, -0.44278),
    (100, 0.19032, 0.29326, -0.47888),
    (125, 0.19462, 0.30141, -0.58204),
    (150, 0.19962, 0.30921, -0.70471),
    (175, 0.20525, 0.31647, -0.84901),
    (200, 0.21142, 0.32312, -1.0182),
    (225, 0.21807, 0.32909, -1.2168),
    (250, 0.22511, 0.33439, -1.4512),
    (275, 0.23247, 0.33904, -1.7298),
    (300, 0.24010, 0.34308, -2.0637),
    (325, 0.24792, 0.34655, -2.4681),  # Lindbloom's correction of u: 0.24702 → 0.24792
    (350, 0.25591, 0.34951, -2.9641),
    (375, 0.26400, 0.35200, -3.5814),
    (400, 0.27218, 0.35407, -4.3633),
    (425, 0.28039, 0.35577, -5.3762),
    (450, 0.28863, 0.35714, -6.7262),
    (475, 0.29685, 0.35823, -8.5955),
    (500, 0.30505, 0.35907, -11.324),
    (525, 0.31320, 0.35968, -15.628),
    (550, 0.32129, 0.36011, -23.325),
    (575, 0.32931, 0.36038, -40.770),
    (600, 0.33724, 0.36051, -116.45),
)
"""Robertson's 31 isotemperature lines: (mired, u, v, slope t) in CIE 1960 UCS.

Wyszecki & Stiles (2000) table 1(3.11) with Lindbloom's correction at 325
mired, as colour-science and the DNG SDK's ``dng_temperature`` use it.
"""

_BRADFORD = np.array(BRADFORD_MATRIX, dtype=np.float64)
_BRADFORD_INV = np.linalg.inv(_BRADFORD)
_ROB_R, _ROB_U, _ROB_V, _ROB_T = np.array(ROBERTSON1968_ISOTEMPERATURE_LINES, dtype=np.float64).T
_ROB_DU = 1.0 / np.hypot(1.0, _ROB_T)  # unit direction of each isotemperature line
_ROB_DV = _ROB_T / np.hypot(1.0, _ROB_T)


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


def illuminant_xy(name: str) -> tuple[float, float]:
    """Return the CIE 1931 2° xy of a CIE illuminant (``"A"``, ``"D65"``, ``"FL2"`` …).

    Notes
    -----
    The names of :data:`ILLUMINANTS_XY` come from the literal table; any
    other name is looked up in colour-science's ``CCS_ILLUMINANTS`` (which
    also holds ``"FL3.1"``, ``"LED-B1"``, ``"ISO 7589 Studio Tungsten"`` …).
    """
    if name in ILLUMINANTS_XY:
        return ILLUMINANTS_XY[name]
    table = _colour().CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]
    if name not in table:
        raise unknown_name("illuminant", name, list(table), "illuminant_xy")
    xy = table[name]
    return float(xy[0]), float(xy[1])


def _xy_to_xyz(xy: Any) -> np.ndarray:
    """CIE xy → XYZ with Y = 1, in colour-science's order of operations (``xy_to_XYZ``)."""
    a = np.asarray(xy, dtype=np.float64)
    x, y = a[..., 0], a[..., 1]
    y_inv = 1.0 / y
    return np.stack([x * y_inv, np.ones_like(x), (1.0 - (x + y)) * y_inv], axis=-1)


def _normalised_primary_matrix(primaries: Any, white_xy: Any) -> np.ndarray:
    """RGB → XYZ matrix from the xy of the primaries and of the white (SMPTE RP 177).

    Written as colour-science's ``normalised_primary_matrix``: the columns are
    the primaries' XYZ (Y scaled so that (1, 1, 1) maps to the white, Y = 1).
    """
    p = np.reshape(np.asarray(primaries, dtype=np.float64), (3, 2))
    z = (1.0 - p[:, 0] - p[:, 1])[:, None]
    prim = np.transpose(np.hstack([p, z]))
    coefficients = np.dot(np.linalg.inv(prim), _xy_to_xyz(white_xy))
    return np.dot(prim, np.diagflat(coefficients))


@functools.lru_cache(maxsize=None)
def _build_color_space(name: str) -> ColorSpace:
    if COLOR_SPACES[name][0] is None:  # XYZ relative to D50
        return ColorSpace(name, _readonly(ILLUMINANTS_XY["D50"]), "D50", _readonly(np.eye(3)),
                          _readonly(np.eye(3)))
    primaries, white_name = COLOR_SPACE_PRIMARIES[name]
    white = ILLUMINANTS_XY[white_name]
    npm = _normalised_primary_matrix(primaries, white)
    return ColorSpace(name, _readonly(white), white_name, _readonly(npm), _readonly(np.linalg.inv(npm)))


def get_color_space(name: str) -> ColorSpace:
    """Return the :class:`ColorSpace` named ``name`` (canonical name or alias)."""
    return _build_color_space(canonical_color_space(name, "get_color_space"))


def xyz_to_rgb_matrix(space: str) -> np.ndarray:
    """Return the (3, 3) matrix taking XYZ (white at Y = 1) to linear RGB of ``space``.

    Notes
    -----
    Derived from the primaries and white point (:data:`COLOR_SPACE_PRIMARIES`)
    as colour-science's ``normalised_primary_matrix`` derives them, so
    ``xyz_to_rgb_matrix(s) @ whitepoint_xyz(s) == (1, 1, 1)`` to 1e-15.
    """
    return get_color_space(space).xyz_to_rgb.copy()


def rgb_to_xyz_matrix(space: str) -> np.ndarray:
    """Return the (3, 3) matrix taking linear RGB of ``space`` to XYZ (white at Y = 1)."""
    return get_color_space(space).rgb_to_xyz.copy()


def whitepoint_xyz(space: str) -> np.ndarray:
    """Return the XYZ (Y = 1) of the white of ``space``."""
    return _xy_to_xyz(get_color_space(space).whitepoint)


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
    ``xy_to_XYZ(dst_xy)``: ``inv(M) · diag(M·dst / M·src) · M`` with the
    transform's cone matrix M, written as colour-science's
    ``matrix_chromatic_adaptation_VonKries``. Bradford uses the literal
    :data:`BRADFORD_MATRIX`; the other transforms come from colour-science.

    References
    ----------
    Lam (1985) for Bradford; CIE 159:2004 for CAT02; Li et al. (2017) for CAT16.
    """
    key = _chromatic_adaptation_key(method)
    src = _check_xy(src_xy, "src_xy", "chromatic_adaptation_matrix")
    dst = _check_xy(dst_xy, "dst_xy", "chromatic_adaptation_matrix")
    if key == "bradford":
        m, m_inv = _BRADFORD, _BRADFORD_INV
    else:
        m = np.asarray(_colour().adaptation.CHROMATIC_ADAPTATION_TRANSFORMS[CHROMATIC_ADAPTATION_METHODS[key]],
                       dtype=np.float64)
        m_inv = np.linalg.inv(m)
    cone_src = np.matmul(m, _xy_to_xyz(src)[:, None])[:, 0]
    cone_dst = np.matmul(m, _xy_to_xyz(dst)[:, None])[:, 0]
    return np.matmul(np.matmul(m_inv, np.diag(cone_dst / cone_src)), m)


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


def _xy_to_uv(xy: np.ndarray) -> np.ndarray:
    """CIE 1931 xy → CIE 1960 UCS uv (colour-science's ``xy_to_UCS_uv``)."""
    x, y = xy[..., 0], xy[..., 1]
    d = 12.0 * y - 2.0 * x + 3.0
    return np.stack([4.0 * x / d, 6.0 * y / d], axis=-1)


def _uv_to_xy(uv: np.ndarray) -> np.ndarray:
    """CIE 1960 UCS uv → CIE 1931 xy (colour-science's ``UCS_uv_to_xy``)."""
    u, v = uv[..., 0], uv[..., 1]
    d = 2.0 * u - 8.0 * v + 4.0
    return np.stack([3.0 * u / d, 2.0 * v / d], axis=-1)


def _uv_to_cct_robertson1968(uv: np.ndarray) -> np.ndarray:
    """CCT (K) of CIE 1960 uv by Robertson (1968), flattened to (N,).

    Finds the first isotemperature line the point lies on the warm side of
    and interpolates the mired linearly in the signed distances to the two
    neighbouring lines — the steps of colour-science's
    ``uv_to_CCT_Robertson1968`` (which this equals to the last bit).
    """
    uv = uv.reshape(-1, 2)
    u, v = uv[:, :1], uv[:, 1:]
    dt = -(u - _ROB_U[1:]) * _ROB_DV[1:] + (v - _ROB_V[1:]) * _ROB_DU[1:]
    crossed = dt <= 0
    last = len(_ROB_R) - 1
    i = np.where(np.any(crossed, axis=1), np.argmax(crossed, axis=1) + 1, last)
    rows = np.arange(len(i))
    dt_current = -np.minimum(dt[rows, i - 1], 0.0)
    dt_previous = dt[rows, i - 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(i > 1, dt_current / (dt_previous + dt_current), 0.0)
    return 1.0e6 / (_ROB_R[i - 1] * f + _ROB_R[i] * (1 - f))


def _cct_to_uv_robertson1968(cct: np.ndarray) -> np.ndarray:
    """CIE 1960 uv on the Planckian locus (Duv = 0) at ``cct`` K by Robertson (1968).

    Interpolates the uv of the two isotemperature lines around 1e6 / cct
    linearly in mired (colour-science's ``CCT_to_uv_Robertson1968``); returns
    shape ``cct.shape + (2,)``.
    """
    r = 1.0e6 / cct.reshape(-1)
    below = r[:, None] < _ROB_R[1:]
    i = np.where(np.any(below, axis=1), np.argmax(below, axis=1), len(_ROB_R) - 2)
    f = (_ROB_R[i + 1] - r) / (_ROB_R[i + 1] - _ROB_R[i])
    u = _ROB_U[i] * f + _ROB_U[i + 1] * (1 - f)
    v = _ROB_V[i] * f + _ROB_V[i + 1] * (1 - f)
    return np.stack([u, v], axis=-1).reshape(cct.shape + (2,))


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
    if key == "robertson1968":
        t = _uv_to_cct_robertson1968(_xy_to_uv(a))
        return float(t[0]) if a.ndim == 1 else t.reshape(a.shape[:-1])
    colour = _colour()
    if key == "ohno2013":
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
    if key == "robertson1968":
        return _uv_to_xy(_cct_to_uv_robertson1968(t))
    colour = _colour()
    if key == "kang2002":
        return np.asarray(colour.temperature.CCT_to_xy_Kang2002(t), dtype=np.float64)
    if key == "krystek1985":
        uv = colour.temperature.CCT_to_uv_Krystek1985(t)
    else:
        uv = colour.temperature.CCT_to_uv_Ohno2013(np.stack([t, np.zeros_like(t)], axis=-1))
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
        out = recycled_empty(x.shape, np.float32)
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
