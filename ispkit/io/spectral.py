"""Spectral data on one wavelength grid: reflectances, observers, camera sensitivities and illuminants.

The helpers :mod:`ispkit.io.synthetic` (the physically simulated capture)
and :mod:`ispkit.profile` (camera profiles from spectral data) share. Every
spectrum is resampled linearly onto :data:`WAVELENGTHS` (400–700 nm, 5 nm):

* :func:`spectral_data` — the 24 ColorChecker reflectances ("ColorChecker N
  Ohta"), the training reflectances (ColorChecker, RAW-to-ACES 190-patch set,
  CIE 1995 TCS, NIST CQS 9.0, PMC) and the CIE 1931 2° colour-matching functions;
* :func:`camera_sensitivities` — measured camera spectral sensitivities
  (``colour.MSDS_CAMERA_SENSITIVITIES``);
* :func:`resolve_illuminant` / :func:`illuminant_spd` — a named illuminant
  of :data:`NAMED_ILLUMINANTS` or a correlated colour temperature (CIE
  daylight from 4000 K, a Planckian radiator below);
* :func:`standard_illuminant_spd` — any of colour-science's illuminants
  (CIE F1–F12, the CIE LED series …) on the grid;
* :func:`bradford_matrix` and :func:`fit_white_preserving_matrix` — the von
  Kries / Bradford adaptation and the white-preserving least-squares 3×3.

All arrays are float64; cached arrays are read-only.

References
----------
CIE 015:2018 *Colorimetry*, 4th ed. (illuminants A, D series, F series, LED
series; the 1931 2° observer). Ohta, N. ColorChecker spectral reflectances and
Darrodi, M. M. et al. (2015), *JOSA A* 32(3) (NPL camera sensitivities), both as
distributed by colour-science. Lam, K. M. (1985). Metamerism and colour
constancy (the Bradford transform), PhD thesis, University of Bradford.
"""

from __future__ import annotations

import functools
import warnings
from types import ModuleType
from typing import Any, Mapping, Union

import numpy as np

from ..errors import ParameterError, unknown_name

__all__ = [
    "WAVELENGTHS",
    "NAMED_ILLUMINANTS",
    "import_colour",
    "resample",
    "spectral_data",
    "camera_sensitivities",
    "resolve_illuminant",
    "illuminant_spd",
    "standard_illuminant_spd",
    "bradford_matrix",
    "fit_white_preserving_matrix",
]

#: Wavelength grid (nm) every spectrum is sampled on.
WAVELENGTHS = np.arange(400.0, 700.0 + 2.5, 5.0)
WAVELENGTHS.setflags(write=False)

#: Named scene illuminants: name → (colour-science key, EXIF LightSource code, nominal CCT in K).
NAMED_ILLUMINANTS: dict[str, tuple[str, int, float]] = {
    "D50": ("D50", 23, 5003.0),
    "D55": ("D55", 20, 5503.0),
    "D65": ("D65", 21, 6504.0),
    "D75": ("D75", 22, 7504.0),
    "A": ("A", 17, 2856.0),
    "F2": ("FL2", 14, 4230.0),   # cool white fluorescent
    "F7": ("FL7", 12, 6500.0),   # daylight fluorescent (broadband D65 simulator)
    "F11": ("FL11", 14, 4000.0),  # narrow-band TL84-like
    "LED": ("LED-B3", 23, 4103.0),  # CIE 015:2018 phosphor-converted blue LED (EXIF has no LED code)
}

# EXIF LightSource codes of broadband sources and the colour temperature the
# DNG SDK assigns them; a CCT illuminant gets the code nearest in mired.
_EXIF_BROADBAND_CCT = {17: 2856.0, 24: 3200.0, 23: 5003.0, 20: 5503.0, 21: 6504.0, 22: 7504.0}

_COLORCHECKER = "ColorChecker N Ohta"
_CMFS = "CIE 1931 2 Degree Standard Observer"


def import_colour() -> ModuleType:
    """Import colour-science quietly (it warns about optional matplotlib) and return the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def resample(wavelengths: Any, values: Any, *, zero_outside: bool) -> np.ndarray:
    """Linearly resample spectral ``values`` (n,) or (n, k) given at ``wavelengths`` onto :data:`WAVELENGTHS`.

    Parameters
    ----------
    wavelengths : (n,) increasing wavelengths in nm.
    values : (n,) or (n, k) samples.
    zero_outside : 0 beyond the given range (sensitivities, observers);
        otherwise the end samples are held (reflectances, lights).

    Returns
    -------
    (61,) or (61, k) float64.
    """
    values = np.asarray(values, dtype=np.float64)
    wl = np.asarray(wavelengths, dtype=np.float64)
    fill = {"left": 0.0, "right": 0.0} if zero_outside else {}
    if values.ndim == 1:
        return np.interp(WAVELENGTHS, wl, values, **fill)
    return np.stack([np.interp(WAVELENGTHS, wl, values[:, k], **fill)
                     for k in range(values.shape[1])], axis=1)


def _sd_values(sd: Any) -> np.ndarray:
    return resample(sd.wavelengths, sd.values, zero_outside=False)


@functools.lru_cache(maxsize=1)
def spectral_data() -> Mapping[str, Any]:
    """Return the reflectances and colour-matching functions on :data:`WAVELENGTHS` (cached, read-only).

    Returns
    -------
    dict with ``"chart"`` (24, 61) ColorChecker N Ohta reflectances,
    ``"training"`` (N, 61) every training reflectance clipped at 0 (the
    chart first, then RAW-to-ACES, CIE 1995 TCS, NIST CQS 9.0, PMC; the
    RAW-to-ACES set is skipped if a trimmed colour-science lacks its file),
    ``"cmfs"`` (61, 3) CIE 1931 2° x̄ȳz̄ (0 outside their range) and
    ``"names"`` the 24 patch names.

    References
    ----------
    colour-science ``SDS_COLOURCHECKERS``, ``read_training_data_rawtoaces_v1``,
    ``SDS_TCS``, ``SDS_VS``, ``MSDS_CMFS``.
    """
    colour = import_colour()
    from colour.quality.datasets import SDS_TCS, SDS_VS

    cc = colour.SDS_COLOURCHECKERS[_COLORCHECKER]
    chart = np.stack([_sd_values(sd) for sd in cc.values()])
    names = tuple(cc.keys())
    training = [chart]
    try:
        ricd = colour.characterisation.read_training_data_rawtoaces_v1()
        training.append(resample(ricd.wavelengths, ricd.values, zero_outside=False).T)
    except (OSError, ValueError, KeyError):  # the data file may be missing from a trimmed install
        pass
    for group in (SDS_TCS.get("CIE 1995", {}), SDS_VS.get("NIST CQS 9.0", {}),
                  colour.SDS_COLOURCHECKERS.get("PMC", {})):
        if group:
            training.append(np.stack([_sd_values(sd) for sd in group.values()]))
    cmfs = colour.MSDS_CMFS[_CMFS]
    out: dict[str, Any] = {
        "chart": chart,
        "training": np.clip(np.concatenate(training), 0.0, None),
        "cmfs": resample(cmfs.wavelengths, cmfs.values, zero_outside=True),
    }
    for v in out.values():
        v.setflags(write=False)
    out["names"] = names
    return out


def camera_sensitivities(camera: str) -> np.ndarray:
    """Return the (61, 3) RGB spectral sensitivities of a camera of ``colour.MSDS_CAMERA_SENSITIVITIES``.

    Raises :class:`~ispkit.errors.UnknownNameError` listing the cameras for an unknown name.
    """
    colour = import_colour()
    msds = colour.MSDS_CAMERA_SENSITIVITIES
    if camera not in msds:
        raise unknown_name("camera", camera, list(msds.keys()), "camera_sensitivities")
    cs = msds[camera]
    return resample(cs.wavelengths, cs.values, zero_outside=True)


def resolve_illuminant(illuminant: Union[str, float]) -> tuple[str, float | None]:
    """Return a hashable key for an illuminant: ``(NAME, None)`` for a name of :data:`NAMED_ILLUMINANTS`, ``("cct", K)`` for a temperature.

    Raises :class:`~ispkit.errors.ParameterError` for a CCT outside [1000, 25000] K
    and :class:`~ispkit.errors.UnknownNameError` for an unknown name.
    """
    if isinstance(illuminant, str):
        key = illuminant.upper()
        if key not in NAMED_ILLUMINANTS:
            raise unknown_name("illuminant", illuminant, NAMED_ILLUMINANTS, "resolve_illuminant")
        return key, None
    if isinstance(illuminant, (bool, np.bool_)) or not isinstance(illuminant, (int, float, np.number)):
        raise ParameterError(
            f"illuminant must be a name ({', '.join(NAMED_ILLUMINANTS)}) "
            f"or a correlated colour temperature in kelvin, got {illuminant!r}")
    cct = float(illuminant)
    if not (1000.0 <= cct <= 25000.0):
        raise ParameterError(f"illuminant CCT must lie in [1000, 25000] K, got {cct!r}")
    return "cct", cct


def illuminant_spd(key: str, cct: float | None) -> tuple[np.ndarray, str, int, float]:
    """Return (spectral power (61,), display name, EXIF LightSource code, CCT K) of a :func:`resolve_illuminant` key.

    Notes
    -----
    A temperature of 4000 K and above is a CIE daylight (D series at that
    CCT), below it a Planckian radiator; its power is scaled to a maximum of
    1 and its EXIF code is the broadband source nearest in mired. Named
    illuminants keep colour-science's scale.
    """
    colour = import_colour()
    if cct is None:
        ckey, exif, nominal = NAMED_ILLUMINANTS[key]
        return _sd_values(colour.SDS_ILLUMINANTS[ckey]), key, exif, nominal
    if cct >= 4000.0:
        xy = colour.temperature.CCT_to_xy_CIE_D(cct)
        sd = colour.sd_CIE_illuminant_D_series(xy)
    else:
        sd = colour.sd_blackbody(cct, colour.SpectralShape(400, 700, 5))
    spd = _sd_values(sd)
    exif = min(_EXIF_BROADBAND_CCT, key=lambda c: abs(1e6 / _EXIF_BROADBAND_CCT[c] - 1e6 / cct))
    return spd / spd.max(), f"{cct:.0f}K", exif, cct


def standard_illuminant_spd(name: str) -> np.ndarray:
    """Return the (61,) spectral power of any colour-science illuminant (``"FL3"``, ``"LED-B1"`` …), maximum 1.

    Raises :class:`~ispkit.errors.UnknownNameError` listing the names for an unknown one.
    """
    colour = import_colour()
    if name not in colour.SDS_ILLUMINANTS:
        raise unknown_name("illuminant", name, list(colour.SDS_ILLUMINANTS.keys()), "standard_illuminant_spd")
    spd = _sd_values(colour.SDS_ILLUMINANTS[name])
    return spd / spd.max()


def bradford_matrix(xyz_src: Any, xyz_dst: Any) -> np.ndarray:
    """Return the (3, 3) Bradford (von Kries in the Bradford cone space) adaptation from one white's XYZ to another's."""
    colour = import_colour()
    return np.asarray(colour.adaptation.matrix_chromatic_adaptation_VonKries(
        np.asarray(xyz_src, np.float64), np.asarray(xyz_dst, np.float64), transform="Bradford"), dtype=np.float64)


def fit_white_preserving_matrix(cam: Any, xyz: Any, cam_white: Any, xyz_white: Any) -> np.ndarray:
    """Return the least-squares 3×3 ``M`` with ``xyz ≈ cam @ M.T`` and ``M @ cam_white == xyz_white`` exactly.

    Notes
    -----
    (N, 3) float64 in; the unconstrained least-squares solution corrected
    along ``(camᵀcam)⁻¹ cam_white`` (Lagrange multiplier), per output row.
    """
    cam, xyz = np.asarray(cam, np.float64), np.asarray(xyz, np.float64)
    cam_white, xyz_white = np.asarray(cam_white, np.float64), np.asarray(xyz_white, np.float64)
    gram_inv = np.linalg.inv(cam.T @ cam)
    x0 = gram_inv @ (cam.T @ xyz)              # unconstrained M.T
    gw = gram_inv @ cam_white
    residual = xyz_white - cam_white @ x0      # (3,) constraint violation per output
    xt = x0 + np.outer(gw, residual) / (cam_white @ gw)
    return xt.T
