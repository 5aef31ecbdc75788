"""Camera RGB → XYZ → a named working space: DNG dual-illuminant colour and the ColorMatrix stage.

The DNG part follows the DNG 1.6 specification, chapter 6 "Mapping Camera
Color Space to CIE XYZ Space", and the reference implementation in the Adobe
DNG SDK (``dng_color_spec``): the white's chromaticity is found from the
camera neutral by fixed-point iteration, the ColorMatrix / CameraCalibration
/ ForwardMatrix pairs are interpolated linearly in inverse CCT between the two
calibration illuminants (with DNG 1.6's third calibration, the three sets by
the triple-illuminant weights), and the result maps camera-native RGB to XYZ
relative to D50 (the DNG profile connection space).

Matrix conventions: column vectors, ``xyz = M @ rgb``. "Camera-native" is the
RAW space after black level (the space of ``AsShotNeutral``);
"white-balanced" camera RGB is ``diag(g) · native`` with ``g ∝ 1 / illuminant``.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.6.0.0 (2020), chapter 6,
"Mapping Camera Color Space to CIE XYZ Space" (Camera Calibration Matrices,
Translating White Balance xy Coordinates to Camera Neutral Coordinates and
back, Camera to XYZ (D50) Transform), and tags ColorMatrix1/2,
CameraCalibration1/2, AnalogBalance, ForwardMatrix1/2, CalibrationIlluminant1/2.
Adobe DNG SDK 1.6, ``dng_color_spec.cpp`` and ``dng_camera_profile.cpp``
(NormalizeColorMatrix, NormalizeForwardMatrix, IlluminantToTemperature,
FindXYZtoCamera_Triple), ``dng_xy_coord.cpp`` (``dng_illuminant_data``,
CalculateTripleIlluminantWeights) and ``dng_temperature.cpp``.
CIPA DC-008 (Exif 2.32), tag LightSource (0x9208).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ..errors import DomainError, InputError, MissingMetadataError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from ..pipeline.profiles import read_camera_profile
from .colorspaces import (
    apply_color_matrix,
    canonical_color_space,
    chromatic_adaptation_matrix,
    get_color_space,
    illuminant_xy,
    ROBERTSON1968_ISOTEMPERATURE_LINES,
    rgb_to_rgb_matrix,
    xy_to_cct,
    _chromatic_adaptation_key,
    _colour,
)

__all__ = [
    "ColorimetryWarning",
    "EXIF_LIGHT_SOURCES",
    "COLOR_SOURCES",
    "light_source_cct",
    "LIGHT_SOURCE_XY",
    "light_source_xy",
    "illuminant_data_xy",
    "dng_temperature_tint",
    "triple_illuminant_weights",
    "DNGProfile",
    "DNGColorSolution",
    "dng_color_solution",
    "dng_camera_to_xyz",
    "scene_illuminant_rgb",
    "as_shot_neutral",
    "dng_neutral_from_xy",
    "resolve_color_source",
    "camera_to_working_matrix",
    "ColorMatrix",
    "ColorConvert",
    "CameraProfile",
    "apply_camera_profile",
]


class ColorimetryWarning(UserWarning):
    """The output is not colorimetric (e.g. a camera without any colour matrix)."""


# Exif LightSource code → (name, CIE illuminant (ILLUMINANTS_XY key) whose CCT stands for it, or a
# nominal CCT in K). Fluorescent classes use the middle of the Exif CCT range.
EXIF_LIGHT_SOURCES: Mapping[int, tuple[str, str | float]] = MappingProxyType({
    1: ("Daylight", "D55"),
    2: ("Fluorescent", (3900.0 + 4500.0) / 2),
    3: ("Tungsten (incandescent light)", "A"),
    4: ("Flash", "D55"),
    9: ("Fine weather", "D55"),
    10: ("Cloudy weather", "D65"),
    11: ("Shade", "D75"),
    12: ("Daylight fluorescent (D 5700 - 7100K)", (5700.0 + 7100.0) / 2),
    13: ("Day white fluorescent (N 4600 - 5400K)", (4600.0 + 5400.0) / 2),
    14: ("Cool white fluorescent (W 3900 - 4500K)", (3900.0 + 4500.0) / 2),
    15: ("White fluorescent (WW 3200 - 3700K)", (3200.0 + 3700.0) / 2),
    16: ("Warm white fluorescent (L 2600 - 3250K)", (2600.0 + 3250.0) / 2),
    17: ("Standard light A", "A"),
    18: ("Standard light B", "B"),
    19: ("Standard light C", "C"),
    20: ("D55", "D55"),
    21: ("D65", "D65"),
    22: ("D75", "D75"),
    23: ("D50", "D50"),
    24: ("ISO studio tungsten", 3200.0),
})
"""Exif LightSource codes with a known colour temperature (0 unknown and 255 other are absent)."""

COLOR_SOURCES = frozenset({"auto", "dng", "cam_to_xyz", "libraw", "none"})
"""Where :func:`camera_to_working_matrix` takes the camera's colour from."""

_PCS = "D50"  # the DNG profile connection space white


@functools.lru_cache(maxsize=None)
def light_source_cct(code: int | None) -> float | None:
    """Return the correlated colour temperature (K) of an Exif LightSource code, or None.

    Notes
    -----
    CIE illuminants (A, B, C, D50, D55, D65, D75) get the Robertson (1968) CCT
    of their chromaticity (:data:`~ispkit.stages.colorspaces.ILLUMINANTS_XY`)
    — the same method that measures the white during DNG interpolation, so a
    white exactly at a calibration illuminant gets that illuminant's matrix
    alone: A 2855.6 K, D50 5000.7 K, D55 5501.1 K, D65 6503.7 K, D75 7504.8 K.
    (The DNG SDK rounds these to
    2850, 5000, 5500, 6500, 7500 K; the interpolation weights differ by < 1e-3.)
    Weather / flash codes use the nearest D illuminant, fluorescent classes
    the middle of their Exif range, ISO studio tungsten 3200 K. Unknown (0),
    other (255) and undefined codes give None.
    """
    if code is None:
        return None
    entry = EXIF_LIGHT_SOURCES.get(int(code))
    if entry is None:
        return None
    ref = entry[1]
    if isinstance(ref, str):
        return float(xy_to_cct(illuminant_xy(ref)))
    return float(ref)


#: White chromaticity the DNG SDK gives each Exif LightSource code for the triple-illuminant weights
#: (``dng_illuminant_data``): the CIE illuminants at the SDK's rounded xy, the fluorescent classes at the
#: CIE F lamp standing for them (F1, F8, F9, F2, F3, F4), ISO studio tungsten at 3200 K on the locus.
#: Codes not listed (0 unknown and undefined ones) get D50; 255 (other) needs IlluminantData.
LIGHT_SOURCE_XY: Mapping[int, tuple[float, float]] = MappingProxyType({
    17: (0.4476, 0.4074), 3: (0.4476, 0.4074),
    18: (0.348483, 0.351747), 19: (0.310061, 0.316150),
    23: (0.3457, 0.3585),
    20: (0.3324, 0.3474), 1: (0.3324, 0.3474), 9: (0.3324, 0.3474), 4: (0.3324, 0.3474),
    21: (0.3127, 0.3290), 10: (0.3127, 0.3290),
    22: (0.2990, 0.3149), 11: (0.2990, 0.3149),
    12: (0.31310, 0.33727), 13: (0.34588, 0.35875), 14: (0.37417, 0.37281),
    2: (0.37208, 0.37529), 15: (0.40910, 0.39430), 16: (0.44018, 0.40329),
})

_TINT_SCALE = -3000.0  # DNG SDK dng_temperature: uv distance → "tint"
_ROB = np.array(ROBERTSON1968_ISOTEMPERATURE_LINES, dtype=np.float64)


def dng_temperature_tint(white_xy: Any) -> tuple[float, float]:
    """Return (temperature K, tint) of a white chromaticity as the DNG SDK's ``dng_temperature`` does.

    Notes
    -----
    Robertson (1968) isotemperature lines in CIE 1960 uv: the temperature is
    interpolated in mired between the two lines around the point (the same
    value as :func:`~ispkit.stages.colorspaces.xy_to_cct`), the tint is the
    signed uv distance from the locus along the interpolated line direction
    times −3000 (positive = magenta, below the locus).

    References
    ----------
    Robertson, A. R. (1968). Computation of correlated color temperature and
    distribution temperature. *JOSA* 58(11), 1528–1535. Adobe DNG SDK 1.6,
    ``dng_temperature::Set_xy_coord``.
    """
    x, y = (float(v) for v in np.asarray(white_xy, dtype=np.float64).ravel()[:2])
    den = 1.5 - x + 6.0 * y
    u, v = 2.0 * x / den, 3.0 * y / den
    r, tu, tv, tt = _ROB.T
    last_dt = last_du = last_dv = 0.0
    for i in range(1, len(r)):
        length = np.hypot(1.0, tt[i])
        du, dv = 1.0 / length, tt[i] / length
        dt = -(u - tu[i]) * dv + (v - tv[i]) * du
        if dt <= 0.0 or i == len(r) - 1:
            dt = -min(dt, 0.0)
            f = 0.0 if i == 1 else dt / (last_dt + dt)
            temperature = 1.0e6 / (r[i - 1] * f + r[i] * (1.0 - f))
            uu = u - (tu[i - 1] * f + tu[i] * (1.0 - f))
            vv = v - (tv[i - 1] * f + tv[i] * (1.0 - f))
            du, dv = du * (1.0 - f) + last_du * f, dv * (1.0 - f) + last_dv * f
            length = np.hypot(du, dv)
            return float(temperature), float((uu * du + vv * dv) / length * _TINT_SCALE)
        last_dt, last_du, last_dv = dt, du, dv
    raise InputError(f"dng_temperature_tint: no isotemperature line found for xy {white_xy!r}")  # pragma: no cover


def illuminant_data_xy(data: Mapping[str, Any]) -> np.ndarray:
    """Return the white chromaticity of a DNG 1.6 IlluminantData record.

    Parameters
    ----------
    data : ``{"xy": (x, y)}`` or ``{"spectrum": values, "min_lambda": nm,
        "spacing": nm}`` — the two forms of the IlluminantData1/2/3 tags as
        :func:`ispkit.io.dng.read_dng_tags` returns them.

    Notes
    -----
    A spectrum is a piecewise-linear function of wavelength, held constant
    beyond its first and last sample; X, Y, Z are summed against the CIE 1931
    2° observer at 1 nm from 360 to 830 nm and each divided by the sum of its
    observer column, as the DNG SDK does (so an equal-energy spectrum gives
    xy ≈ (1/3, 1/3)).

    References
    ----------
    Adobe, DNG Specification 1.6, IlluminantData1/2/3 (52533–52535); Adobe
    DNG SDK 1.6, ``dng_illuminant_data::CalculateSpectrumXY``.
    """
    if "xy" in data:
        xy = np.asarray(data["xy"], dtype=np.float64).ravel()
        if xy.shape != (2,) or not np.all((xy > 0) & (xy < 1)) or xy.sum() >= 1:
            raise ParameterError(f"IlluminantData: xy must be a chromaticity (0 < x, y; x + y < 1), got {data['xy']!r}")
        return xy
    try:
        values = np.asarray(data["spectrum"], dtype=np.float64).ravel()
        start, step = float(data["min_lambda"]), float(data["spacing"])
    except (KeyError, TypeError, ValueError):
        raise ParameterError("IlluminantData: expected {'xy': (x, y)} or {'spectrum': values, 'min_lambda': nm, "
                             f"'spacing': nm}}, got keys {sorted(data)!r}") from None
    if values.size < 2 or start <= 0 or step <= 0 or not np.all(np.isfinite(values)):
        raise ParameterError(f"IlluminantData: a spectrum needs ≥ 2 finite samples and positive min_lambda / "
                             f"spacing, got {values.size} samples, min_lambda={start}, spacing={step}")
    cmfs = _cmfs_1nm()
    lam = np.arange(360.0, 831.0)
    light = np.interp(lam, start + step * np.arange(values.size), values)
    xyz = (light @ cmfs) / cmfs.sum(axis=0)
    if np.any(xyz <= 0):
        raise ParameterError("IlluminantData: the spectrum gives a non-positive XYZ; it is not a light")
    return xyz[:2] / xyz.sum()


@functools.lru_cache(maxsize=1)
def _cmfs_1nm() -> np.ndarray:
    cmfs = _colour().MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    lam = np.arange(360.0, 831.0)
    return np.stack([np.interp(lam, cmfs.wavelengths, cmfs.values[:, k]) for k in range(3)], axis=1)


def light_source_xy(code: int | None, illuminant_data: Mapping[str, Any] | None = None) -> np.ndarray:
    """Return the white xy of a calibration illuminant: its IlluminantData for code 255, else :data:`LIGHT_SOURCE_XY`.

    Notes
    -----
    ISO studio tungsten (24) is 3200 K on the Planckian locus; unknown codes
    give D50, as the DNG SDK does. Code 255 (other) without IlluminantData
    raises :class:`~ispkit.errors.MissingMetadataError`.
    """
    if code is not None and int(code) == 255:
        if illuminant_data is None:
            raise MissingMetadataError("calibration illuminant 255 (other) needs its IlluminantData tag "
                                       "(DNG 1.6: the light's xy or spectrum)")
        return illuminant_data_xy(illuminant_data)
    if code is not None and int(code) == 24:
        from .colorspaces import cct_to_xy

        return np.asarray(cct_to_xy(3200.0), dtype=np.float64)
    return np.array(LIGHT_SOURCE_XY.get(int(code) if code is not None else 0, (0.3457, 0.3585)))


def _smooth_step(x: float) -> float:
    return x * x * (3.0 - 2.0 * x)


def triple_illuminant_weights(white_xy: Any, light_xy1: Any, light_xy2: Any, light_xy3: Any) -> tuple[float, float, float]:
    """Return the DNG 1.6 weights of three calibration illuminants for a scene white.

    Notes
    -----
    Each chromaticity goes to the point (``min(1500 / T, 1)``, ``tint / 200``)
    with (T, tint) from :func:`dng_temperature_tint`; the weight of light k
    is the inverse squared distance ``1 / (d_k² + 1e-8)``, normalised to sum
    1, smoothed with ``w²(3 − 2w)``, mapped so 0.02 → 0 and 1 → 1 (clipped to
    [0, 1]) and normalised again (the third as ``max(1 − w1 − w2, 0)``).
    A white at a calibration illuminant gets that set alone.

    References
    ----------
    Adobe, DNG Specification 1.6, chapter 6 (three calibration illuminants);
    Adobe DNG SDK 1.6, ``CalculateTripleIlluminantWeights`` (``dng_xy_coord.cpp``).
    """
    def point(xy: Any) -> np.ndarray:
        t, tint = dng_temperature_tint(xy)
        return np.array([min(1500.0 / t, 1.0), tint / 200.0])

    p = point(white_xy)
    w = np.array([1.0 / (float(np.sum((p - point(q)) ** 2)) + 1e-8) for q in (light_xy1, light_xy2, light_xy3)])
    w = w / w.sum()
    w = np.array([_smooth_step(float(v)) for v in w])
    w = np.clip((w - 0.02) / (1.0 - 0.02), 0.0, 1.0)
    w1, w2 = w[:2] / w.sum()
    return float(w1), float(w2), float(max(1.0 - w1 - w2, 0.0))


def _xyz_to_xy(xyz: np.ndarray) -> np.ndarray:
    s = float(np.sum(xyz))
    if not np.isfinite(s) or s <= 0 or xyz[1] <= 0:
        raise InputError(
            f"the camera neutral maps to XYZ {np.round(xyz, 6).tolist()}, which is not a colour; "
            "check meta.illuminant_rgb / wb_gains (positive camera-native RGB of the scene white)"
        )
    return np.array([xyz[0] / s, xyz[1] / s])


def _xy_to_xyz(xy: np.ndarray) -> np.ndarray:
    return np.array([xy[0] / xy[1], 1.0, (1.0 - xy[0] - xy[1]) / xy[1]])


def _normalize_color_matrix(cm: np.ndarray) -> np.ndarray:
    # dng_camera_profile::NormalizeColorMatrix: the PCS white should give a camera maximum of 1
    coord = cm @ _xy_to_xyz(np.array(illuminant_xy(_PCS)))
    top = float(coord.max())
    if top > 0.0 and (top < 0.99 or top > 1.01):
        cm = cm / top
    return cm


def _normalize_forward_matrix(fm: np.ndarray) -> np.ndarray:
    # dng_camera_profile::NormalizeForwardMatrix: camera (1, 1, 1) maps exactly to the D50 white
    xyz = fm @ np.ones(3)
    return np.diag(_xy_to_xyz(np.array(illuminant_xy(_PCS))) / xyz) @ fm


def _as_matrix(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    m = np.asarray(value, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ParameterError(f"DNGProfile.{name}: expected a finite 3×3 matrix, got shape {np.shape(value)}")
    return m


@dataclass(frozen=True, eq=False)
class DNGProfile:
    """The DNG colour tags of one camera, ready for dual- or triple-illuminant interpolation.

    Attributes
    ----------
    color_matrix1, color_matrix2, color_matrix3 : XYZ → reference camera (3, 3); 2 and 3 optional.
    cct1, cct2 : CCT (K) of the calibration illuminants 1 and 2 (None when unknown).
    camera_calibration1/2/3 : reference → individual camera (identity when absent).
    analog_balance : (3,) AnalogBalance (ones when absent).
    forward_matrix1/2/3 : white-balanced camera → XYZ D50 (optional).
    light_xy1, light_xy2, light_xy3 : white chromaticities of the three
        calibration illuminants (:func:`light_source_xy`), used only by the
        triple-illuminant weights.

    Notes
    -----
    ColorMatrices are scaled as the DNG SDK does (so the D50 white gives a
    camera maximum of 1 when it is off by more than 1 %), ForwardMatrices so
    that camera (1, 1, 1) maps exactly to the D50 white (Y = 1). With a third
    ColorMatrix (DNG 1.6) on top of a valid dual pair the three sets are mixed
    by :func:`triple_illuminant_weights`; ForwardMatrices are then used only
    when all three are present (the spec requires all or none).
    """

    color_matrix1: np.ndarray
    color_matrix2: np.ndarray | None = None
    cct1: float | None = None
    cct2: float | None = None
    camera_calibration1: np.ndarray | None = None
    camera_calibration2: np.ndarray | None = None
    analog_balance: np.ndarray | None = None
    forward_matrix1: np.ndarray | None = None
    forward_matrix2: np.ndarray | None = None
    color_matrix3: np.ndarray | None = None
    camera_calibration3: np.ndarray | None = None
    forward_matrix3: np.ndarray | None = None
    light_xy1: Any = None
    light_xy2: Any = None
    light_xy3: Any = None

    def __post_init__(self) -> None:
        for name in ("color_matrix1", "color_matrix2", "camera_calibration1", "camera_calibration2",
                     "forward_matrix1", "forward_matrix2", "color_matrix3", "camera_calibration3",
                     "forward_matrix3"):
            object.__setattr__(self, name, _as_matrix(getattr(self, name), name))
        if self.color_matrix1 is None:
            raise MissingMetadataError("DNGProfile needs color_matrix1 (the DNG ColorMatrix1 tag)")
        ab = np.ones(3) if self.analog_balance is None else np.asarray(self.analog_balance, np.float64)
        if ab.shape != (3,) or not np.all(np.isfinite(ab)) or np.any(ab <= 0):
            raise ParameterError(f"DNGProfile.analog_balance: expected 3 positive gains, got {self.analog_balance!r}")
        object.__setattr__(self, "analog_balance", ab)
        for name in ("cct1", "cct2"):
            v = getattr(self, name)
            if v is not None and (not np.isfinite(v) or v <= 0):
                v = None
            object.__setattr__(self, name, None if v is None else float(v))
        for name in ("light_xy1", "light_xy2", "light_xy3"):
            v = getattr(self, name)
            if v is not None:
                xy = np.asarray(v, dtype=np.float64).ravel()
                if xy.shape != (2,) or not np.all((xy > 0) & (xy < 1)) or xy.sum() >= 1:
                    raise ParameterError(f"DNGProfile.{name}: expected a white chromaticity (x, y), got {v!r}")
                object.__setattr__(self, name, xy)
        if self.color_matrix3 is not None and self.light_xy3 is None:
            raise MissingMetadataError("DNGProfile: color_matrix3 needs light_xy3 (CalibrationIlluminant3 / IlluminantData3)")

    @classmethod
    def from_metadata(cls, meta: CaptureMetadata) -> "DNGProfile":
        """Build the profile from ``meta.color_matrix1/2``, the DNG 1.6 third set in ``meta.extra["dng"]`` and the other tags.

        Notes
        -----
        The third calibration (``color_matrix3``, ``calibration_illuminant3``,
        ``camera_calibration3``, ``forward_matrix3``) and ``illuminant_data1/2/3``
        are read from ``meta.extra["dng"]``, where :func:`ispkit.io.read_raw`
        stores them. A calibration illuminant 255 (other) takes its CCT and xy
        from its IlluminantData.
        """
        dng = meta.extra.get("dng") or {}
        data = [dng.get(f"illuminant_data{k}") for k in (1, 2, 3)]
        cm1, cm2 = meta.color_matrix1, meta.color_matrix2
        cc1, cc2 = meta.camera_calibration1, meta.camera_calibration2
        fm1, fm2 = meta.forward_matrix1, meta.forward_matrix2
        ill1, ill2 = meta.calibration_illuminant1, meta.calibration_illuminant2
        third = {}
        if dng.get("color_matrix3") is not None and dng.get("calibration_illuminant3") is not None:
            third = dict(color_matrix3=dng["color_matrix3"], camera_calibration3=dng.get("camera_calibration3"),
                         forward_matrix3=dng.get("forward_matrix3"),
                         light_xy3=light_source_xy(dng["calibration_illuminant3"], data[2]))
        if cm1 is None and cm2 is not None:  # only the second set: use it as the single one
            cm1, cm2, cc1, cc2, fm1, fm2, ill1, ill2 = cm2, None, cc2, None, fm2, None, ill2, None
            data = [data[1], None, None]
            third = {}
        if cm1 is None:
            meta.require("color_matrix1", "color_matrix")
        lights = [(None, None) if ill is None else _calibration_light(ill, d) for ill, d in ((ill1, data[0]), (ill2, data[1]))]
        return cls(color_matrix1=cm1, color_matrix2=cm2, cct1=lights[0][0], cct2=lights[1][0],
                   camera_calibration1=cc1, camera_calibration2=cc2, analog_balance=meta.analog_balance,
                   forward_matrix1=fm1, forward_matrix2=fm2, light_xy1=lights[0][1], light_xy2=lights[1][1],
                   **third)

    @property
    def dual(self) -> bool:
        """Whether two or more calibrations are interpolated (both matrices, two distinct known CCTs)."""
        return (self.color_matrix2 is not None and self.cct1 is not None and self.cct2 is not None
                and self.cct1 != self.cct2)

    @property
    def triple(self) -> bool:
        """Whether three calibrations are interpolated (DNG 1.6: a third ColorMatrix on top of a dual pair)."""
        return self.dual and self.color_matrix3 is not None

    def weights(self, white_xy: Any) -> tuple[float, float, float]:
        """Return the weights (w1, w2, w3) of the calibration sets at a white chromaticity.

        Triple: :func:`triple_illuminant_weights`; dual: (g, 1 − g, 0) with g
        linear in inverse CCT (:meth:`weight`); single: (1, 0, 0).
        """
        if self.triple:
            xy1 = self.light_xy1 if self.light_xy1 is not None else _cct_xy(self.cct1)
            xy2 = self.light_xy2 if self.light_xy2 is not None else _cct_xy(self.cct2)
            return triple_illuminant_weights(white_xy, xy1, xy2, self.light_xy3)
        if not self.dual:
            return 1.0, 0.0, 0.0
        g = self.weight(float(xy_to_cct(np.asarray(white_xy, dtype=np.float64))))
        return g, 1.0 - g, 0.0

    def weight(self, cct: float) -> float:
        """Weight of calibration 1 at ``cct``: linear in 1/CCT, clipped to [0, 1]."""
        if not self.dual:
            return 1.0
        g = (1.0 / cct - 1.0 / self.cct2) / (1.0 / self.cct1 - 1.0 / self.cct2)
        return float(min(max(g, 0.0), 1.0))

    def _mix(self, a: np.ndarray | None, b: np.ndarray | None, g: float) -> np.ndarray | None:
        if a is None:
            return b
        if b is None or g >= 1.0:
            return a
        return g * a + (1.0 - g) * b

    def interpolated(self, white_xy: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float, float]:
        """Return (XYZ→camera = AB·CC·CM, AB·CC, FM or None, CCT, weight of set 1) for a white xy."""
        xy = np.asarray(white_xy, dtype=np.float64)
        cct = float(xy_to_cct(xy)) if self.dual else float("nan")
        if self.triple:
            return self._interpolated_triple(xy, cct)
        g = self.weight(cct)
        cm1 = _normalize_color_matrix(self.color_matrix1)
        fm1 = None if self.forward_matrix1 is None else _normalize_forward_matrix(self.forward_matrix1)
        cc1 = self.camera_calibration1
        if self.dual:
            cm2 = _normalize_color_matrix(self.color_matrix2)
            fm2 = None if self.forward_matrix2 is None else _normalize_forward_matrix(self.forward_matrix2)
            cm = self._mix(cm1, cm2, g)
            fm = self._mix(fm1, fm2, g)
            eye = np.eye(3)
            cc2 = self.camera_calibration2
            cc = self._mix(eye if cc1 is None else cc1, eye if cc2 is None else cc2, g)
        else:
            cm, fm, cc = cm1, fm1, cc1
        cc = np.eye(3) if cc is None else cc
        abcc = np.diag(self.analog_balance) @ cc
        return abcc @ cm, abcc, fm, cct, g

    def _interpolated_triple(self, xy: np.ndarray, cct: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float, float]:
        w = self.weights(xy)
        cms = [_normalize_color_matrix(m) for m in (self.color_matrix1, self.color_matrix2, self.color_matrix3)]
        cm = sum(wk * m for wk, m in zip(w, cms))
        eye = np.eye(3)
        ccs = [eye if m is None else m for m in (self.camera_calibration1, self.camera_calibration2,
                                                 self.camera_calibration3)]
        cc = sum(wk * m for wk, m in zip(w, ccs))
        fms = (self.forward_matrix1, self.forward_matrix2, self.forward_matrix3)
        fm = None
        if all(m is not None for m in fms):
            fm = sum(wk * _normalize_forward_matrix(m) for wk, m in zip(w, fms))
        abcc = np.diag(self.analog_balance) @ cc
        return abcc @ cm, abcc, fm, cct, w[0]

    def neutral_to_xy(self, camera_neutral: Any, *, max_iterations: int = 30,
                      tolerance: float = 1e-12) -> tuple[np.ndarray, int]:
        """Return (white xy, iterations) of a camera-native neutral, iterating as the DNG spec says.

        Notes
        -----
        Start at D50; repeat ``xy ← xy(inverse(XYZtoCamera(xy)) · neutral)``
        until |Δx| + |Δy| < ``tolerance``; if it has not converged after
        ``max_iterations`` passes, return the mean of the last two (the SDK's
        answer to a two-value oscillation). One pass when not dual.
        """
        n = np.asarray(camera_neutral, dtype=np.float64)
        last = np.array(illuminant_xy(_PCS))
        for it in range(1, max_iterations + 1):
            xyz_to_cam = self.interpolated(last)[0]
            nxt = _xyz_to_xy(np.linalg.solve(xyz_to_cam, n))
            if not self.dual or abs(nxt[0] - last[0]) + abs(nxt[1] - last[1]) < tolerance:
                return nxt, it
            if it == max_iterations:
                return (last + nxt) / 2.0, it
            last = nxt
        return last, max_iterations


@dataclass(frozen=True, eq=False)
class DNGColorSolution:
    """What :func:`dng_color_solution` found for one camera neutral.

    Attributes
    ----------
    white_xy : (2,) chromaticity of the scene white.
    cct : its Robertson (1968) CCT in K (NaN for a single-illuminant profile).
    weight : interpolation weight of calibration 1 (1.0 when single).
    iterations : passes of the neutral → xy iteration.
    camera_neutral : (3,) the camera-native white, scaled to a maximum of 1.
    xyz_to_camera : (3, 3) interpolated AB·CC·CM.
    camera_to_xyz_d50 : (3, 3) camera-native → XYZ (D50); maps ``camera_neutral`` to the D50 white (Y = 1).
    forward_matrix_used : whether the ForwardMatrix path was taken.
    weights : (w1, w2, w3) of the calibration sets (DNG 1.6 triple
        interpolation; (g, 1 − g, 0) for dual, (1, 0, 0) for single).
    """

    white_xy: np.ndarray
    cct: float
    weight: float
    iterations: int
    camera_neutral: np.ndarray
    xyz_to_camera: np.ndarray
    camera_to_xyz_d50: np.ndarray
    forward_matrix_used: bool
    weights: tuple[float, float, float] = (1.0, 0.0, 0.0)


def _cct_xy(cct: float | None) -> np.ndarray:
    from .colorspaces import cct_to_xy

    return np.asarray(cct_to_xy(5000.0 if cct is None else cct), dtype=np.float64)


def _calibration_light(code: int, data: Mapping[str, Any] | None) -> tuple[float | None, np.ndarray | None]:
    """(CCT, xy) of a calibration illuminant; code 255 takes both from its IlluminantData."""
    if int(code) == 255:
        if data is None:
            return None, None
        xy = illuminant_data_xy(data)
        return float(xy_to_cct(xy)), xy
    cct = light_source_cct(code)
    return cct, (light_source_xy(code) if cct is not None else None)


def dng_neutral_from_xy(meta: CaptureMetadata | DNGProfile, white_xy: Any) -> np.ndarray:
    """Return the camera-native neutral (maximum 1) of a white chromaticity.

    Notes
    -----
    DNG 1.6 ch. 6, "Translating White Balance xy Coordinates to Camera Neutral
    Coordinates": ``CameraNeutral = XYZtoCamera(xy) · XYZ(xy)`` with
    ``XYZtoCamera = AB·CC·CM`` interpolated at the CCT of ``xy``; scaled to a
    maximum of 1. The inverse of :meth:`DNGProfile.neutral_to_xy`.

    References
    ----------
    Adobe, DNG Specification 1.6, chapter 6, and tag AsShotWhiteXY (50729).
    """
    profile = meta if isinstance(meta, DNGProfile) else DNGProfile.from_metadata(meta)
    xy = np.asarray(white_xy, dtype=np.float64).ravel()
    if xy.shape != (2,) or not np.all(np.isfinite(xy)) or np.any(xy <= 0) or xy.sum() >= 1.0:
        raise ParameterError(f"dng_neutral_from_xy: expected a white chromaticity (x, y > 0, x + y < 1), got {white_xy!r}")
    neutral = profile.interpolated(xy)[0] @ _xy_to_xyz(xy)
    if not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        raise InputError(
            f"dng_neutral_from_xy: the DNG ColorMatrix maps the white xy {xy.tolist()} to the camera "
            f"values {neutral.tolist()}, which are not a positive neutral; check the colour tags")
    return neutral / neutral.max()


def as_shot_neutral(meta: CaptureMetadata) -> np.ndarray | None:
    """Return the as-shot camera-native neutral, or None when the frame has none.

    ``1 / meta.wb_gains`` (the DNG AsShotNeutral or the camera's multipliers);
    else, for a DNG that gives its white balance as AsShotWhiteXY
    (``meta.extra["dng"]["as_shot_white_xy"]``), the neutral of that xy
    through the DNG colour tags (:func:`dng_neutral_from_xy`).
    """
    if meta.wb_gains is not None:
        gains = np.asarray(meta.wb_gains, dtype=np.float64)
        if np.any(gains <= 0) or not np.all(np.isfinite(gains)):
            raise ParameterError(f"meta.wb_gains must be positive, got {gains.tolist()}")
        return 1.0 / gains
    xy = (meta.extra.get("dng") or {}).get("as_shot_white_xy")
    if xy is not None and (meta.color_matrix1 is not None or meta.color_matrix2 is not None):
        return dng_neutral_from_xy(meta, xy)
    return None


def scene_illuminant_rgb(meta: CaptureMetadata, illuminant_rgb: Any = None) -> np.ndarray:
    """Return the camera-native RGB of the scene white (any scale).

    ``illuminant_rgb`` if given, else ``meta.illuminant_rgb``, else the
    as-shot neutral (:func:`as_shot_neutral`), else (1, 1, 1).
    """
    if illuminant_rgb is not None:
        ill = np.asarray(illuminant_rgb, dtype=np.float64)
    elif meta.illuminant_rgb is not None:
        ill = np.asarray(meta.illuminant_rgb, dtype=np.float64)
    else:
        shot = as_shot_neutral(meta)
        ill = np.ones(3) if shot is None else shot
    if ill.shape != (3,) or not np.all(np.isfinite(ill)) or np.any(ill <= 0):
        raise ParameterError(
            f"the scene illuminant must be 3 positive camera-native values, got {np.asarray(ill).tolist()}"
        )
    return ill


def dng_color_solution(meta: CaptureMetadata | DNGProfile, illuminant_rgb: Any = None,
                       *, cat: str = "bradford") -> DNGColorSolution:
    """Solve the DNG camera → XYZ (D50) mapping for a scene white.

    Parameters
    ----------
    meta : frame metadata carrying the DNG colour tags (or a :class:`DNGProfile`).
    illuminant_rgb : camera-native RGB of the white (default: see :func:`scene_illuminant_rgb`).
    cat : adaptation from the white to D50 on the ColorMatrix path
        (the DNG SDK uses Bradford).

    Notes
    -----
    With ForwardMatrices (spec 6, "Camera to XYZ (D50) Transform")::

        ReferenceNeutral = inverse(AB·CC) · CameraNeutral
        D = inverse(diag(ReferenceNeutral))
        CameraToXYZ_D50 = FM · D · inverse(AB·CC)

    Without: ``CameraToXYZ_D50 = CAT(white → D50) · inverse(AB·CC·CM)``, scaled
    so that the camera neutral (maximum 1) maps to Y = 1, as the SDK does.

    References
    ----------
    DNG Specification 1.6, chapter 6; Adobe DNG SDK ``dng_color_spec::SetWhiteXY``.
    """
    profile = meta if isinstance(meta, DNGProfile) else DNGProfile.from_metadata(meta)
    if isinstance(meta, DNGProfile):
        neutral = np.asarray(illuminant_rgb if illuminant_rgb is not None else np.ones(3), np.float64)
        if neutral.shape != (3,) or not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
            raise ParameterError(f"dng_color_solution: the neutral must be 3 positive values, got {neutral!r}")
    else:
        neutral = scene_illuminant_rgb(meta, illuminant_rgb)
    neutral = neutral / neutral.max()
    white_xy, iterations = profile.neutral_to_xy(neutral)
    xyz_to_cam, abcc, fm, cct, g = profile.interpolated(white_xy)
    if not profile.dual:
        cct = float(xy_to_cct(white_xy))
    if fm is not None:
        reference = np.linalg.solve(abcc, neutral)
        cam_to_xyz = fm @ np.diag(1.0 / reference) @ np.linalg.inv(abcc)
    else:
        adapt = chromatic_adaptation_matrix(white_xy, illuminant_xy(_PCS), cat)
        cam_to_xyz = adapt @ np.linalg.inv(xyz_to_cam)
        cam_to_xyz = cam_to_xyz / float((cam_to_xyz @ neutral)[1])
    return DNGColorSolution(white_xy=white_xy, cct=cct, weight=g, iterations=iterations,
                            camera_neutral=neutral, xyz_to_camera=xyz_to_cam,
                            camera_to_xyz_d50=cam_to_xyz, forward_matrix_used=fm is not None,
                            weights=profile.weights(white_xy))


def dng_camera_to_xyz(meta: CaptureMetadata | DNGProfile, illuminant_rgb: Any = None) -> np.ndarray:
    """Return the (3, 3) camera-native → XYZ (D50) matrix of the DNG colour model.

    Notes
    -----
    The scene white (``illuminant_rgb`` scaled to a maximum of 1) maps to the
    D50 white with Y = 1. See :func:`dng_color_solution` for the details and
    the found white xy / CCT.

    References
    ----------
    Adobe, DNG Specification 1.6, chapter 6 "Mapping Camera Color Space to CIE XYZ Space".
    """
    return dng_color_solution(meta, illuminant_rgb).camera_to_xyz_d50


def resolve_color_source(meta: CaptureMetadata, source: str = "auto") -> str | None:
    """Return the colour source to use for ``meta`` (None when ``"auto"`` finds nothing).

    ``"auto"`` prefers the DNG tags, then ``cam_to_xyz``, then LibRaw's ``cam_to_srgb``.
    An explicit source whose metadata is missing raises
    :class:`~ispkit.errors.MissingMetadataError`.
    """
    if source not in COLOR_SOURCES:
        raise unknown_name("color source", source, COLOR_SOURCES, "camera_to_working_matrix")
    has_dng = meta.color_matrix1 is not None or meta.color_matrix2 is not None
    if source == "auto":
        if has_dng:
            return "dng"
        if meta.cam_to_xyz is not None:
            return "cam_to_xyz"
        if meta.cam_to_srgb is not None:
            return "libraw"
        return None
    if source == "dng" and not has_dng:
        meta.require("color_matrix1", "color_matrix")
    if source == "cam_to_xyz":
        meta.require("cam_to_xyz", "color_matrix")
    if source == "libraw":
        meta.require("cam_to_srgb", "color_matrix")
    return source


def _native_to_space(cam_to_xyz: np.ndarray, illuminant: np.ndarray, space: str, cat: str) -> np.ndarray:
    """``RGB_from_XYZ · CAT(white → space white) · cam_to_xyz · diag(illuminant / Y_white)``."""
    white = cam_to_xyz @ illuminant
    if not np.isfinite(white[1]) or white[1] <= 0:
        raise InputError(
            f"the camera matrix maps the scene white {illuminant.tolist()} to XYZ {white.tolist()} "
            "(Y must be positive); check the illuminant / white-balance metadata"
        )
    scaled = illuminant / white[1]
    cs = get_color_space(space)
    adapt = chromatic_adaptation_matrix(_xyz_to_xy(white), cs.whitepoint, cat)
    return cs.xyz_to_rgb @ adapt @ cam_to_xyz @ np.diag(scaled)


def camera_to_working_matrix(meta: CaptureMetadata, output_space: str = "sRGB", source: str = "auto",
                             *, cat: str = "bradford") -> np.ndarray:
    """Return the (3, 3) matrix from white-balanced camera RGB to linear ``output_space``.

    Parameters
    ----------
    meta : frame metadata (the white is ``meta.illuminant_rgb``, else
        ``1 / meta.wb_gains``, else (1, 1, 1); see :func:`scene_illuminant_rgb`).
    output_space : a name or alias from :data:`~ispkit.stages.colorspaces.COLOR_SPACES`.
    source : ``"dng"`` (dual-illuminant DNG tags), ``"cam_to_xyz"`` (``meta.cam_to_xyz``,
        camera-native → XYZ under the scene illuminant), ``"libraw"`` (``meta.cam_to_srgb``,
        LibRaw's ``rgb_cam``: already white-balanced camera → linear sRGB), ``"auto"``
        (dng > cam_to_xyz > libraw) or ``"none"`` (identity: camera RGB).
    cat : chromatic adaptation from the scene white to the space white.

    Notes
    -----
    ``M = RGB_from_XYZ(space) · CAT(white → space white) · cam_to_xyz_native ·
    diag(illuminant)`` with the illuminant scaled so that the white has Y = 1:
    white-balanced (1, 1, 1) maps to the space's white (1, 1, 1) to ~1e-15
    (for ``"XYZ"``: to the D50 white, Y = 1). For ``"dng"`` the white is
    already at D50 after :func:`dng_camera_to_xyz`, so the adaptation is
    D50 → space white.
    Raises :class:`~ispkit.errors.MissingMetadataError` when the chosen (or,
    for ``"auto"``, every) source is missing.
    """
    space = canonical_color_space(output_space, "camera_to_working_matrix")
    cat = _chromatic_adaptation_key(cat)
    resolved = resolve_color_source(meta, source)
    if resolved is None:
        raise MissingMetadataError(
            f"camera_to_working_matrix: {meta.source or 'this frame'} carries no colour matrix "
            "(neither DNG color_matrix1/2, cam_to_xyz nor cam_to_srgb); pass an explicit ccm "
            "or use source='none' to keep camera RGB"
        )
    if resolved == "none":
        return np.eye(3)
    if resolved == "libraw":
        return rgb_to_rgb_matrix("sRGB", space, cat) @ np.asarray(meta.cam_to_srgb, dtype=np.float64)
    illuminant = scene_illuminant_rgb(meta)
    if resolved == "dng":
        cam_to_xyz = dng_color_solution(meta, illuminant, cat=cat).camera_to_xyz_d50
    else:
        cam_to_xyz = np.asarray(meta.cam_to_xyz, dtype=np.float64)
    return _native_to_space(cam_to_xyz, illuminant, space, cat)


def _check_space_param(stage: str, param: str, value: object) -> str:
    return canonical_color_space(value, f"{stage}.{param}")


def _check_ccm(value: Any) -> tuple[tuple[float, float, float], ...] | None:
    if value is None:
        return None
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        m = np.zeros(0)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ParameterError(
            f"ColorMatrix.ccm: expected a 3×3 matrix as three tuples of three finite numbers, got {value!r}"
        )
    return tuple(tuple(float(v) for v in row) for row in m)  # type: ignore[return-value]


@register_stage
@dataclass(frozen=True)
class ColorMatrix(Stage):
    """Convert white-balanced camera RGB to a linear working space.

    Parameters
    ----------
    output_space : name or alias of the target space (``"sRGB"``, ``"prophoto"``, ``"xyz"`` …).
    source : where the camera colour comes from: ``"auto"`` | ``"dng"`` |
        ``"cam_to_xyz"`` | ``"libraw"`` | ``"none"`` (see :func:`camera_to_working_matrix`).
    ccm : optional explicit 3×3 (three tuples of three) from white-balanced
        camera RGB to ``output_space``; overrides ``source``.
    clip : clip the result to [0, 1].
    profile : optional camera profile file (``.dcp``, e.g. written by
        ``ispkit profile``) used in place of the raw file's own DNG colour
        tags: its ColorMatrices find the white, its ForwardMatrices map the
        camera to XYZ and its ProfileHueSatMap (when it has one) is applied
        here, in linear ProPhoto RGB, as the DNG SDK does right after the
        matrix. Cannot be combined with ``ccm``.

    Notes
    -----
    CAMERA_RGB → LINEAR_RGB, H×W×3 float32, scene-linear. Sets
    ``meta.color_space`` to the canonical space name, or ``"camera"`` for
    ``source="none"``. With ``source="auto"`` and no matrix at all the frame
    stays in camera RGB (``color_space="camera"``) and a
    :class:`ColorimetryWarning` names the file.

    With ``profile`` the output metadata carries the profile's tags
    (:func:`apply_camera_profile`) and ``extra["hue_sat_map_applied"]``, so a
    later :class:`~ispkit.stages.dng_render.HueSatMap` stage does not apply
    the table twice. A profile's BaselineExposureOffset acts in the exposure
    stage, before this one: for profiles that carry one (or a LookTable /
    ToneCurve) put a :class:`CameraProfile` stage first instead.
    """

    type_name = "color_matrix"
    output_space: str = "sRGB"
    source: str = "auto"
    ccm: tuple[tuple[float, float, float], ...] | None = None
    clip: bool = False
    profile: str | None = None

    def __post_init__(self) -> None:
        _check_space_param("ColorMatrix", "output_space", self.output_space)
        if self.source not in COLOR_SOURCES:
            raise unknown_name("color source", self.source, COLOR_SOURCES, "ColorMatrix.source")
        object.__setattr__(self, "ccm", _check_ccm(self.ccm))
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ParameterError(f"ColorMatrix.clip: expected a bool, got {self.clip!r}")
        if self.profile is not None:
            if not isinstance(self.profile, str) or not self.profile:
                raise ParameterError(f"ColorMatrix.profile: expected the path of a camera profile (.dcp) or None, "
                                     f"got {self.profile!r}")
            if self.ccm is not None or self.source not in ("auto", "dng"):
                raise ParameterError("ColorMatrix.profile: a camera profile replaces the DNG colour tags; it cannot be "
                                     f"combined with ccm or source={self.source!r} (use source='auto' or 'dng')")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.CAMERA_RGB,), out_domain=Domain.LINEAR_RGB,
                         provides=("color_space",), pointwise=True)

    def matrix_for(self, meta: CaptureMetadata) -> tuple[np.ndarray, str]:
        """Return (3×3 matrix, resulting color_space) for a frame's metadata, warning on fallback."""
        space = canonical_color_space(self.output_space, "ColorMatrix.output_space")
        if self.ccm is not None:
            return np.asarray(self.ccm, dtype=np.float64), space
        resolved = resolve_color_source(meta, self.source)
        if resolved is None:
            warnings.warn(
                f"ColorMatrix: {meta.source or 'the in-memory frame'} has no colour matrix (no DNG "
                "ColorMatrix, cam_to_xyz or cam_to_srgb); the output is camera RGB, not colorimetric "
                f"{space} (color_space='camera'). Pass ccm=... for a calibrated render.",
                ColorimetryWarning, stacklevel=3,
            )
            return np.eye(3), "camera"
        if resolved == "none":
            return np.eye(3), "camera"
        return camera_to_working_matrix(meta, space, resolved), space

    def process(self, frame: Frame) -> Frame:
        if self.profile is not None:
            return self._process_with_profile(frame)
        matrix, space = self.matrix_for(frame.meta)
        out = apply_color_matrix(frame.data, matrix, clip=self.clip)
        return frame.replace(data=out, domain=Domain.LINEAR_RGB, color_space=space)

    def _process_with_profile(self, frame: Frame) -> Frame:
        from .dng_render import _map_in_prophoto, hue_sat_map_for  # dng_render imports this module
        from .exposure import exposure_gain_ev

        fields = apply_camera_profile(frame.meta, _load_profile(self.profile, "ColorMatrix.profile"))
        meta = frame.meta.replace(**fields)
        matrix, space = self.matrix_for(meta)
        out = frame.replace(data=apply_color_matrix(frame.data, matrix), domain=Domain.LINEAR_RGB,
                            color_space=space, **fields)
        found = hue_sat_map_for(out.meta)
        if found is not None:
            out = _map_in_prophoto(out, *found, lookup_scale=2.0 ** -exposure_gain_ev(out.meta), stage=self.type_name)
            extra = dict(out.meta.extra)
            extra["hue_sat_map_applied"] = True
            out = out.replace(extra=extra)
        if self.clip:
            out = out.replace(data=np.clip(out.data, 0.0, 1.0))
        return out

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseColorMatrix` (the same matrix, inverted; singular ones raise).

        Raises NotInvertibleError with a camera ``profile`` (its HueSatMap is a 3-D table).
        """
        from ..errors import NotInvertibleError

        if self.profile is not None:
            raise NotInvertibleError(
                f"stage {self.type_name!r} with profile={self.profile!r} applies the profile's HueSatMap, "
                "a 3-D lookup table without an inverse; invert a pipeline without the profile")
        from .inverses import InverseColorMatrix

        return InverseColorMatrix(output_space=self.output_space, source=self.source, ccm=self.ccm)


@register_stage
@dataclass(frozen=True)
class ColorConvert(Stage):
    """Convert linear RGB from ``meta.color_space`` to another named space.

    Parameters
    ----------
    output_space : name or alias of the target space.
    cat : chromatic adaptation between the whites (a key of
        :data:`~ispkit.stages.colorspaces.CHROMATIC_ADAPTATION_METHODS`).
    clip : clip the result to [0, 1].

    Notes
    -----
    LINEAR_RGB → LINEAR_RGB, H×W×3 float32. The frame's ``meta.color_space``
    must name a space (not ``"camera"``); a frame without one raises
    :class:`~ispkit.errors.MissingMetadataError`.
    """

    type_name = "color_convert"
    output_space: str = "sRGB"
    cat: str = "bradford"
    clip: bool = False

    def __post_init__(self) -> None:
        _check_space_param("ColorConvert", "output_space", self.output_space)
        try:
            _chromatic_adaptation_key(self.cat)
        except ParameterError as exc:
            raise ParameterError(f"ColorConvert.cat: {exc}") from None
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ParameterError(f"ColorConvert.clip: expected a bool, got {self.clip!r}")

    @property
    def spec(self) -> StageSpec:
        # meta.color_space is checked when the frame arrives, not declared in ``requires``: a
        # LINEAR_RGB input read from a file carries it without any upstream stage providing it
        return StageSpec(in_domains=(Domain.LINEAR_RGB,), out_domain=Domain.LINEAR_RGB,
                         provides=("color_space",), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        src = frame.meta.require("color_space", self.type_name)
        if src == "camera":
            raise DomainError(
                f"stage 'color_convert' needs a named colour space, but {frame.meta.source or 'the frame'} "
                "is in camera RGB (its ColorMatrix stage found no colour matrix); give ColorMatrix a ccm"
            )
        src = canonical_color_space(src, "ColorConvert (meta.color_space)")
        dst = canonical_color_space(self.output_space, "ColorConvert.output_space")
        matrix = rgb_to_rgb_matrix(src, dst, self.cat)
        out = apply_color_matrix(frame.data, matrix, clip=self.clip)
        return frame.replace(data=out, color_space=dst)


#: ``meta.extra["dng"]`` keys that belong to the camera profile (replaced by an external one)
_PROFILE_EXTRA_KEYS = ("baseline_exposure_offset", "default_black_render", "hue_sat_map_dims",
                       "hue_sat_map_data1", "hue_sat_map_data2", "hue_sat_map_encoding", "look_table_dims",
                       "look_table_data", "look_table_encoding", "profile_tone_curve", "color_matrix3",
                       "calibration_illuminant3", "forward_matrix3", "reduction_matrix3", "hue_sat_map_data3",
                       "illuminant_data1", "illuminant_data2", "illuminant_data3")


def apply_camera_profile(meta: CaptureMetadata, profile: Mapping[str, Any]) -> dict[str, Any]:
    """Return the metadata fields that put ``profile`` (e.g. :func:`ispkit.io.dng.read_dcp`) in place of the file's own.

    Notes
    -----
    ColorMatrix1/2, CalibrationIlluminant1/2 and ForwardMatrix1/2 come from
    the profile, and so does its DNG 1.6 third set (ColorMatrix3,
    CalibrationIlluminant3, ForwardMatrix3, HueSatMapData3, IlluminantData1–3,
    in ``meta.extra["dng"]``); the file's CameraCalibration1/2/3 are dropped (the DNG SDK
    keeps them for an external profile only when its
    ProfileCalibrationSignature matches, which ispkit does not read);
    AnalogBalance and the as-shot white stay. ``cam_to_xyz`` becomes the
    inverse of the profile's most daylight-like ColorMatrix. The profile's
    BaselineExposureOffset, DefaultBlackRender, HueSatMap, LookTable and
    ToneCurve replace the file's in ``meta.extra``; ``extra["camera_profile"]``
    records the source.

    References
    ----------
    Adobe, DNG Specification 1.6, chapter 6 (camera profiles).
    """
    cms = [(profile.get(f"color_matrix{k}"), profile.get(f"calibration_illuminant{k}")) for k in (1, 2)]
    if cms[0][0] is None:
        raise MissingMetadataError("apply_camera_profile: the profile has no ColorMatrix1")
    daylight = min((c for c in cms if c[0] is not None),
                   key=lambda c: abs(1e6 / (light_source_cct(c[1]) or 6504.0) - 1e6 / 6504.0))
    extra = dict(meta.extra)
    dng = {k: v for k, v in dict(extra.get("dng") or {}).items()
           if k not in _PROFILE_EXTRA_KEYS and k != "camera_calibration3"}
    for key in _PROFILE_EXTRA_KEYS:
        value = profile.get(key)
        if value is not None:  # JSON-friendly, as read_raw stores the file's own
            if isinstance(value, Mapping):  # IlluminantData
                value = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in value.items()}
            dng[key] = value.tolist() if isinstance(value, np.ndarray) else value
    extra["dng"] = dng
    extra.pop("baseline_exposure_offset", None)
    if profile.get("baseline_exposure_offset") is not None:
        extra["baseline_exposure_offset"] = float(profile["baseline_exposure_offset"])
    extra["camera_profile"] = {k: profile[k] for k in ("source", "profile_name", "unique_camera_model")
                               if profile.get(k) is not None}
    return dict(color_matrix1=profile.get("color_matrix1"), color_matrix2=profile.get("color_matrix2"),
                calibration_illuminant1=profile.get("calibration_illuminant1"),
                calibration_illuminant2=profile.get("calibration_illuminant2"),
                forward_matrix1=profile.get("forward_matrix1"), forward_matrix2=profile.get("forward_matrix2"),
                camera_calibration1=None, camera_calibration2=None,
                cam_to_xyz=np.linalg.inv(np.asarray(daylight[0], dtype=np.float64)), extra=extra)


@functools.lru_cache(maxsize=16)
def _cached_profile(path: str, mtime_ns: int) -> Mapping[str, Any]:
    return MappingProxyType(read_camera_profile(path))


@register_stage
@dataclass(frozen=True)
class CameraProfile(Stage):
    """Use an external camera profile (a DCP file) in place of the raw file's own DNG colour tags.

    Parameters
    ----------
    path : the profile file (``.dcp``); None (default) keeps the file's own tags.

    Notes
    -----
    Any domain; changes only metadata (see :func:`apply_camera_profile`).
    Put it first in the pipeline, so that the exposure stage sees the
    profile's BaselineExposureOffset and ``color_matrix``, ``hue_sat_map``,
    ``look_table``, ``black_render`` and ``profile_tone_curve`` its tables.

    References
    ----------
    Adobe, DNG Specification 1.6, chapter 6; Adobe DNG SDK ``dng_camera_profile``.
    """

    type_name = "camera_profile"
    path: str | None = None

    def __post_init__(self) -> None:
        if self.path is not None and (not isinstance(self.path, str) or not self.path):
            raise ParameterError(
                f"stage 'camera_profile': path must name a profile file (.dcp) or be None, got {self.path!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.RAW_PACKED, Domain.CAMERA_RGB, Domain.LINEAR_RGB),
                         pointwise=True)

    def process(self, frame: Frame) -> Frame:
        import os

        if self.path is None:
            return frame
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError as exc:
            raise ParameterError(
                f"stage 'camera_profile': cannot read the profile {self.path!r} ({exc.strerror or exc}); "
                "check the path") from None
        profile = _cached_profile(self.path, mtime)
        return frame.replace(**apply_camera_profile(frame.meta, profile))


def _load_profile(path: str, where: str) -> Mapping[str, Any]:
    """Read a camera profile file once per (path, mtime); a missing file raises a ParameterError naming ``where``."""
    import os

    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ParameterError(f"{where}: cannot read the profile {path!r} ({exc.strerror or exc}); check the path") from None
    return _cached_profile(path, mtime)
