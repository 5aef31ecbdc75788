"""Build DNG camera profiles (ForwardMatrix + HueSatMap, one to three illuminants) from spectral data or a chart capture.

A profile is what a DNG / DCP carries for one camera: for each calibration
illuminant a ColorMatrix (XYZ → camera, used to find the scene white), a
ForwardMatrix (white-balanced camera → XYZ D50) and a ProfileHueSatMap (hue
shift, saturation and value scale in the HSV of linear ProPhoto RGB). The
renderer mixes the sets by the scene white — two linearly in inverse CCT,
three (DNG 1.6) by the triple-illuminant weights
(:func:`ispkit.stages.color_matrix.dng_color_solution`,
:func:`ispkit.stages.dng_render.hue_sat_map_for`).

:func:`build_spectral_profile` simulates the camera exactly as the render
pipeline sees it — camera RGB = Σ sensitivity · illuminant · reflectance
(:mod:`ispkit.io.spectral`'s spectra on 400–700 nm, 5 nm), white-balanced to
the illuminant's neutral — and fits

1. ForwardMatrices minimising CIEDE2000 over the training reflectances,
   with each row constrained so camera (1, 1, 1) maps to the D50 white (DNG
   spec), against the reflectances' XYZ under the illuminant adapted to D50
   with Bradford (as the DNG SDK adapts);
2. HueSatMaps (90 hue × 30 saturation × 1 value by default, dcamprof's
   divisions) to the residual hue / saturation / value ratios, by regularised
   least squares on the table nodes with the same bilinear weights
   :func:`~ispkit.stages.dng_render.apply_hue_sat_map` interpolates with,
   smoothed along hue (circular) and saturation, identity at zero saturation
   (neutrals unchanged).

For one or two calibration illuminants each set is fitted at its own light.
The default three-illuminant profile (A, D55 and EXIF "Fluorescent") is fitted
jointly over a broad standard set of lights (:data:`TRAINING_ILLUMINANTS`):
each light's white gets the weights the renderer will give it, and the three
sets are solved together so the *mixed* profile renders every light well —
including fluorescent and LED light off the Planckian locus, where a
two-illuminant profile interpolated by colour temperature alone cannot.

:func:`evaluate_profile` renders held-out reflectances through the same DNG
model (white found by the ColorMatrix iteration, ForwardMatrix and HueSatMap
mixed by its weight, the table applied by ``apply_hue_sat_map``) and reports
ΔE2000; :func:`profile_comparison` adds the best 3×3 matrix fitted at each test
illuminant and colour-science's ``matrix_idt`` (the rawtoaces method).
:func:`build_chart_profile` fits a single-illuminant profile from a RAW of a
ColorChecker given its patch boxes.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.6.0.0 (2020), chapter 6 and tags
ForwardMatrix1/2/3, ProfileHueSatMapDims / Data1 / Data2 / Data3, CalibrationIlluminant3.
CIE 015:2018 *Colorimetry* (the F and LED illuminant series).
Sharma, G., Wu, W., Dalal, E. N. (2005). The CIEDE2000 color-difference formula.
*Color Research & Application* 30(1), 21–30.
Darrodi, M. M. et al. (2015). Reference data set for camera spectral sensitivity
estimation. *JOSA A* 32(3), 381–391 (the NPL sensitivities).
Academy of Motion Picture Arts and Sciences, rawtoaces (2017): the 190-patch
training set and the IDT fit (colour-science ``matrix_idt``).
Torger, A. dcamprof documentation (2015–2019): LUT divisions and smoothing.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InputError, ParameterError, unknown_name
from .io import spectral
from .io.synthetic import SYNTHETIC_ILLUMINANTS
from .io.dng import write_dcp
from .stages.color_matrix import DNGProfile, dng_color_solution, light_source_cct, light_source_xy
from .stages.colorspaces import get_color_space, illuminant_xy
from .stages.dng_render import _rgb_to_hsv, apply_hue_sat_map

__all__ = [
    "CameraProfileFit",
    "CALIBRATION_ILLUMINANTS",
    "TEST_ILLUMINANTS",
    "training_reflectances",
    "chart_reflectances",
    "simulate_patches",
    "fit_forward_matrix",
    "fit_color_matrix",
    "fit_hue_sat_map",
    "fit_hue_sat_maps",
    "fit_forward_matrices",
    "TRAINING_ILLUMINANTS",
    "build_spectral_profile",
    "build_chart_profile",
    "chart_patch_means",
    "chart_reference_xyz",
    "synthetic_patch_boxes",
    "make_profile",
    "build_chart_profile",
    "render_patches",
    "evaluate_profile",
    "profile_comparison",
    "delta_e2000",
]

#: Calibration illuminants a spectral profile is built for: name → EXIF LightSource code. "F" is
#: EXIF 2 "Fluorescent", which the DNG SDK places at CIE F2's white (the third calibration of the
#: default three-illuminant profile A / D55 / F); "CWF" the cool white fluorescent class (EXIF 14,
#: placed at CIE F9's white). Their ColorMatrices are fitted at those lamps' spectra.
CALIBRATION_ILLUMINANTS: Mapping[str, int] = {"A": 17, "D50": 23, "D55": 20, "D65": 21, "D75": 22, "CWF": 14,
                                               "F": 2}

#: colour-science illuminant whose spectrum stands for a calibration name that is not a CIE D / A light
_CALIBRATION_SPECTRA: Mapping[str, str] = {"CWF": "FL9", "F": "FL2"}

#: The broad standard set of lights a three-illuminant profile is trained over: CIE A and Planckian
#: radiators up to 3600 K, CIE daylight 4000–9000 K (D50 and D65 among them), the CIE F series F1–F12
#: and FL3.1–FL3.15, the CIE 015:2018 LED series and high-pressure lamps HP1–HP5. It contains the
#: test lights' classes — and F2 and LED-B3 themselves, as a profiling tool's standard set would;
#: :func:`build_spectral_profile` can leave lights out (``exclude``) to measure lights it never saw.
#: (Radiators warmer than A are left out: every white warmer than A gets the A set alone, and fitting
#: them too costs accuracy at A.)
TRAINING_ILLUMINANTS: tuple[str | float, ...] = (
    "A", 3200.0, 3600.0, 4000.0, 4500.0, "D50", 5500.0, 6000.0, "D65", 7500.0, 9000.0,
    *(f"FL{i}" for i in range(1, 13)), *(f"FL3.{i}" for i in range(1, 16)),
    "LED-B1", "LED-B2", "LED-B3", "LED-B4", "LED-B5", "LED-BH1", "LED-RGB1", "LED-V1", "LED-V2",
    *(f"HP{i}" for i in range(1, 6)))

#: Weight of named training lights in the joint fit (others 1; a lamp — not A, a radiator or a
#: daylight — is further weighted by its white's weight on the third calibration, so the lamps train
#: the fluorescent set and do not pull the A and daylight sets away from the lights they stand for).
ANCHOR_WEIGHTS: Mapping[str, float] = {"A": 20.0, "D65": 10.0, "D50": 5.0}

#: Held-out test illuminants (names of :data:`ispkit.io.synthetic.SYNTHETIC_ILLUMINANTS`).
TEST_ILLUMINANTS: tuple[str, ...] = ("A", "D50", "D65", "F2", "LED")

_D50_XYZ = np.array([0.3457 / 0.3585, 1.0, (1.0 - 0.3457 - 0.3585) / 0.3585])
_PP = get_color_space("ProPhoto RGB")   # white D50: XYZ (D50) → linear ProPhoto without adaptation
_XYZ_TO_PP = np.asarray(_PP.xyz_to_rgb, dtype=np.float64)
_PP_TO_XYZ = np.linalg.inv(_XYZ_TO_PP)


@dataclass(frozen=True, eq=False)
class CameraProfileFit:
    """A fitted camera profile (the DCP tags) and how it was made.

    Attributes
    ----------
    color_matrix1, color_matrix2 : XYZ → camera-native at each calibration illuminant (3, 3).
    forward_matrix1, forward_matrix2 : white-balanced camera → XYZ D50 (3, 3).
    hue_sat_map1, hue_sat_map2 : (value, hue, sat, 3) tables of (hue shift°, sat scale, value scale), or None.
    calibration_illuminant1, calibration_illuminant2 : EXIF LightSource codes (``2`` is None for one illuminant).
    color_matrix3, forward_matrix3, hue_sat_map3, calibration_illuminant3 : the DNG 1.6 third
        calibration (None for one or two illuminants); ``illuminant_data3`` its IlluminantData3
        when the code is 255.
    camera : the camera name (UniqueCameraModel).
    training : a short description of the training data.
    training_delta_e : {illuminant: mean ΔE2000 on the training set} after the fit.
    seconds : fitting time.
    """

    color_matrix1: np.ndarray
    forward_matrix1: np.ndarray
    hue_sat_map1: np.ndarray | None
    calibration_illuminant1: int
    color_matrix2: np.ndarray | None = None
    forward_matrix2: np.ndarray | None = None
    hue_sat_map2: np.ndarray | None = None
    calibration_illuminant2: int | None = None
    color_matrix3: np.ndarray | None = None
    forward_matrix3: np.ndarray | None = None
    hue_sat_map3: np.ndarray | None = None
    calibration_illuminant3: int | None = None
    illuminant_data3: Mapping[str, Any] | None = None
    camera: str = "ispkit camera"
    training: str = ""
    training_delta_e: Mapping[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def dng_profile(self) -> DNGProfile:
        """The colour matrices and forward matrices as a :class:`~ispkit.stages.color_matrix.DNGProfile`."""
        third = {}
        if self.color_matrix3 is not None:
            third = dict(color_matrix3=self.color_matrix3, forward_matrix3=self.forward_matrix3,
                         light_xy1=light_source_xy(self.calibration_illuminant1),
                         light_xy2=light_source_xy(self.calibration_illuminant2),
                         light_xy3=light_source_xy(self.calibration_illuminant3, self.illuminant_data3))
        return DNGProfile(color_matrix1=self.color_matrix1, color_matrix2=self.color_matrix2,
                          cct1=light_source_cct(self.calibration_illuminant1),
                          cct2=light_source_cct(self.calibration_illuminant2),
                          forward_matrix1=self.forward_matrix1, forward_matrix2=self.forward_matrix2, **third)

    def dcp_tags(self) -> dict[str, Any]:
        """Return the keyword arguments of :func:`ispkit.io.dng.write_dcp` for this profile."""
        tags: dict[str, Any] = dict(color_matrix1=self.color_matrix1, calibration_illuminant1=self.calibration_illuminant1,
                                    forward_matrix1=self.forward_matrix1, unique_camera_model=self.camera,
                                    profile_name=f"ispkit {self.camera}")
        if self.color_matrix2 is not None:
            tags.update(color_matrix2=self.color_matrix2, calibration_illuminant2=self.calibration_illuminant2,
                        forward_matrix2=self.forward_matrix2)
        tables = [t for t in (self.hue_sat_map1, self.hue_sat_map2) if t is not None]
        if tables:
            n_val, n_hue, n_sat, _ = tables[0].shape
            tags["hue_sat_map_dims"] = (n_hue, n_sat, n_val)
            tags["hue_sat_map_data1"] = np.asarray(self.hue_sat_map1 if self.hue_sat_map1 is not None
                                                   else self.hue_sat_map2).ravel()
            if self.color_matrix2 is not None and self.hue_sat_map2 is not None:
                tags["hue_sat_map_data2"] = np.asarray(self.hue_sat_map2).ravel()
            tags["hue_sat_map_encoding"] = 0
        if self.color_matrix3 is not None:
            tags.update(color_matrix3=self.color_matrix3, calibration_illuminant3=self.calibration_illuminant3,
                        forward_matrix3=self.forward_matrix3)
            if self.hue_sat_map3 is not None:
                tags["hue_sat_map_data3"] = np.asarray(self.hue_sat_map3).ravel()
            if self.illuminant_data3 is not None:
                tags["illuminant_data"] = (None, None, dict(self.illuminant_data3))
        return tags

    def write_dcp(self, path: str | os.PathLike) -> Path:
        """Write the profile as a DCP file (:func:`ispkit.io.dng.write_dcp`) and return its path."""
        return write_dcp(path, **self.dcp_tags())


# ---------------------------------------------------------------------------
# spectral data


def chart_reflectances() -> np.ndarray:
    """Return the 24 ColorChecker reflectances ("ColorChecker N Ohta", colour-science) on 400–700 nm, 5 nm.

    Notes
    -----
    (24, 61) float64, row-major from "dark skin" — the chart of
    :func:`ispkit.io.synthetic.synthesize_capture`.
    """
    return np.array(spectral.spectral_data()["chart"])


def training_reflectances(*, exclude: np.ndarray | None = None, min_distance: float = 0.02) -> np.ndarray:
    """Return the training reflectances colour-science ships, without the held-out chart, on 400–700 nm, 5 nm.

    Parameters
    ----------
    exclude : (k, 61) reflectances to hold out; every training patch whose
        RMS spectral distance to any of them is below ``min_distance`` is
        dropped. Default: the 24 ColorChecker patches — the rawtoaces set
        contains a measurement of a ColorChecker (0.003–0.01 RMS from
        colour-science's "ColorChecker N Ohta"), so without this a test on the
        chart would test reflectances the profile was trained on.
    min_distance : the RMS reflectance distance below which a patch counts as the same.

    Notes
    -----
    (N, 61) float64, clipped at 0: the RAW-to-ACES 190-patch training set,
    the CIE 1995 test colour samples, the NIST CQS 9.0 samples and the PMC
    chart (the set :mod:`ispkit.io.synthetic` fits its matrices on, less the
    ColorChecker). With the default exclusion N = 221.

    References
    ----------
    rawtoaces (AMPAS, 2017), ``training_spectral``; CIE 13.3-1995; Davis, W.,
    Ohno, Y. (2010), Color quality scale, *Optical Engineering* 49(3); colour-science
    ``read_training_data_rawtoaces_v1``, ``SDS_TCS``, ``SDS_VS``.
    """
    refl = np.array(spectral.spectral_data()["training"])
    held = chart_reflectances() if exclude is None else np.asarray(exclude, dtype=np.float64)
    if held.size:
        dist = np.sqrt(((refl[:, None, :] - held[None, :, :]) ** 2).mean(axis=-1)).min(axis=1)
        refl = refl[dist >= float(min_distance)]
    return refl


def _sensitivities(camera: str) -> np.ndarray:
    return spectral.camera_sensitivities(camera)


def _illuminant(name: str | float) -> np.ndarray:
    """Spectral power of a light: a CCT (K), a name of NAMED_ILLUMINANTS, a calibration name or any colour-science light."""
    if isinstance(name, str) and name.upper() in _CALIBRATION_SPECTRA:
        return spectral.standard_illuminant_spd(_CALIBRATION_SPECTRA[name.upper()])
    if not isinstance(name, str) or name.upper() in SYNTHETIC_ILLUMINANTS:
        key, cct = spectral.resolve_illuminant(name)
        return spectral.illuminant_spd(key, cct)[0]
    return spectral.standard_illuminant_spd(name)


def simulate_patches(camera: str, illuminant: str, reflectances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (camera-native RGB, true XYZ D50, camera neutral) of reflectances under an illuminant.

    Parameters
    ----------
    camera : a key of ``colour.MSDS_CAMERA_SENSITIVITIES``.
    illuminant : a name of :data:`ispkit.io.synthetic.SYNTHETIC_ILLUMINANTS`, a CCT in K, or any
        light of ``colour.SDS_ILLUMINANTS`` (``"FL3"``, ``"LED-B1"`` …).
    reflectances : (N, 61) on 400–700 nm, 5 nm.

    Notes
    -----
    Camera RGB = Σ reflectance · illuminant · sensitivity scaled so the
    perfect white's largest channel is 1 (the DNG neutral convention, as
    :func:`ispkit.io.synthetic.synthesize_capture`). XYZ: CIE 1931 2°, the
    perfect white at Y = 1, adapted from the illuminant's white to D50 with
    Bradford (what the DNG SDK does). Float64 throughout.
    """
    return _simulate(_sensitivities(camera), _illuminant(illuminant), reflectances)


def _simulate(sens: np.ndarray, spd: np.ndarray, reflectances: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cmfs = np.asarray(spectral.spectral_data()["cmfs"])
    refl = np.asarray(reflectances, dtype=np.float64)
    neutral = spd @ sens
    scale = 1.0 / neutral.max()
    cam = (refl * spd) @ sens * scale
    y_white = spd @ cmfs[:, 1]
    xyz = (refl * spd) @ cmfs / y_white
    white = spd @ cmfs / y_white
    xyz_d50 = xyz @ spectral.bradford_matrix(white, _D50_XYZ).T
    return cam, xyz_d50, neutral * scale


# ---------------------------------------------------------------------------
# colour difference


def _xyz_to_lab(xyz: np.ndarray) -> np.ndarray:
    t = np.asarray(xyz, dtype=np.float64) / _D50_XYZ
    d = 6.0 / 29.0
    f = np.where(t > d ** 3, np.cbrt(t), t / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e2000(xyz_a: Any, xyz_b: Any) -> np.ndarray:
    """Return CIEDE2000 between two sets of XYZ (D50 white, Y = 1), via CIE Lab (D50).

    References
    ----------
    Sharma, Wu, Dalal (2005); colour-science ``delta_E_CIE2000``.
    """
    colour = spectral.import_colour()
    return np.asarray(colour.delta_E(_xyz_to_lab(xyz_a), _xyz_to_lab(xyz_b), method="CIE 2000"), dtype=np.float64)


# ---------------------------------------------------------------------------
# fitting


def _white_preserving_lstsq(cam: np.ndarray, xyz: np.ndarray, white_in: np.ndarray, white_out: np.ndarray) -> np.ndarray:
    return spectral.fit_white_preserving_matrix(cam, xyz, white_in, white_out)


def fit_forward_matrix(cam_wb: Any, xyz_d50: Any, *, metric: str = "de2000") -> np.ndarray:
    """Fit the ForwardMatrix: white-balanced camera → XYZ D50 with camera (1, 1, 1) → the D50 white exactly.

    Parameters
    ----------
    cam_wb : (N, 3) white-balanced camera RGB (the white is (1, 1, 1)).
    xyz_d50 : (N, 3) target XYZ relative to D50 (white Y = 1).
    metric : ``"de2000"`` (minimise CIEDE2000, started from the XYZ
        least-squares fit) or ``"xyz"`` (XYZ least squares only).

    Notes
    -----
    Each row ``i`` is constrained to ``Σ_j FM[i, j] = D50_white[i]`` (DNG
    spec: the ForwardMatrix maps the white-balanced white to the PCS white),
    leaving six free parameters, found with ``scipy.optimize.least_squares``
    on the per-patch ΔE2000.
    """
    cam = np.asarray(cam_wb, dtype=np.float64)
    xyz = np.asarray(xyz_d50, dtype=np.float64)
    if cam.ndim != 2 or cam.shape[1] != 3 or xyz.shape != cam.shape or len(cam) < 3:
        raise InputError(f"fit_forward_matrix: need matching (N ≥ 3, 3) arrays, got {cam.shape} and {xyz.shape}")
    fm0 = _white_preserving_lstsq(cam, xyz, np.ones(3), _D50_XYZ)
    if metric == "xyz":
        return fm0
    if metric != "de2000":
        raise unknown_name("forward-matrix metric", metric, ("de2000", "xyz"), "fit_forward_matrix")
    from scipy.optimize import least_squares

    target = _xyz_to_lab(xyz)
    colour = spectral.import_colour()

    def matrix(p: np.ndarray) -> np.ndarray:
        m = np.empty((3, 3))
        m[:, :2] = p.reshape(3, 2)
        m[:, 2] = _D50_XYZ - m[:, 0] - m[:, 1]
        return m

    def residual(p: np.ndarray) -> np.ndarray:
        lab = _xyz_to_lab(cam @ matrix(p).T)
        return np.sqrt(np.asarray(colour.delta_E(lab, target, method="CIE 2000")) ** 2 + 1e-12)

    sol = least_squares(residual, fm0[:, :2].ravel(), method="lm", x_scale=0.1)
    return matrix(sol.x)


def fit_color_matrix(cam_native: Any, xyz: Any, neutral: Any, white_xyz: Any) -> np.ndarray:
    """Fit a DNG ColorMatrix (XYZ → camera-native) whose inverse is the white-preserving least-squares camera → XYZ.

    Notes
    -----
    ``cam_native`` and ``xyz`` under the calibration illuminant itself (not
    adapted); the matrix maps the illuminant's XYZ (Y = 1) to the camera
    neutral with maximum 1, as DNG ColorMatrices are normalised. It only
    locates the scene white (the ForwardMatrix does the colour).
    """
    cam_to_xyz = _white_preserving_lstsq(np.asarray(cam_native, np.float64), np.asarray(xyz, np.float64),
                                         np.asarray(neutral, np.float64), np.asarray(white_xyz, np.float64))
    cm = np.linalg.inv(cam_to_xyz)
    return cm / (cm @ np.asarray(white_xyz, np.float64)).max()


def _node_weights(h: np.ndarray, s: np.ndarray, n_hue: int, n_sat: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (node index (N, 4), weight (N, 4)) of the bilinear lookup ``apply_hue_sat_map`` does (one value division)."""
    hs = h * (n_hue / 6.0)
    h0 = np.minimum(hs.astype(np.int64), n_hue - 1)
    h1 = np.where(h0 >= n_hue - 1, 0, h0 + 1)
    hf = hs - h0
    ss = np.clip(s, 0.0, 1.0) * (n_sat - 1)
    s0 = np.minimum(ss.astype(np.int64), n_sat - 2)
    sf = ss - s0
    idx = np.stack([h0 * n_sat + s0, h0 * n_sat + s0 + 1, h1 * n_sat + s0, h1 * n_sat + s0 + 1], axis=1)
    w = np.stack([(1 - hf) * (1 - sf), (1 - hf) * sf, hf * (1 - sf), hf * sf], axis=1)
    return idx, w


def _smoothness(n_hue: int, n_sat: int, hue_weight: float, sat_weight: float):
    """Sparse second-difference operator along hue (circular) and saturation, stacked."""
    import scipy.sparse as sp

    n = n_hue * n_sat
    rows, cols, vals = [], [], []
    r = 0
    for hi in range(n_hue):
        for si in range(n_sat):
            for dh, c in ((-1, 1.0), (0, -2.0), (1, 1.0)):
                rows.append(r), cols.append(((hi + dh) % n_hue) * n_sat + si), vals.append(c * hue_weight)
            r += 1
    for hi in range(n_hue):
        for si in range(1, n_sat - 1):
            for ds, c in ((-1, 1.0), (0, -2.0), (1, 1.0)):
                rows.append(r), cols.append(hi * n_sat + si + ds), vals.append(c * sat_weight)
            r += 1
    return sp.csr_matrix((vals, (rows, cols)), shape=(r, n))


def fit_hue_sat_map(pp_pred: Any, pp_target: Any, *, dims: tuple[int, int] = (90, 30),
                    smoothness: float | tuple[float, float] = (0.5, 1.0),
                    ridge: float = 0.02) -> np.ndarray:
    """Fit a ProfileHueSatMap (one value division) mapping predicted to target linear ProPhoto RGB.

    Parameters
    ----------
    pp_pred : (N, 3) linear ProPhoto RGB after the ForwardMatrix.
    pp_target : (N, 3) the true linear ProPhoto RGB.
    dims : (hue divisions, saturation divisions).
    smoothness : weight of the second differences along hue and saturation
        (one number or (hue, saturation); larger = smoother). The default
        (0.5, 1.0) and the lightness weighting were chosen by 5-fold
        cross-validation on the training set alone (A and D65, mean ΔE2000 on
        the left-out folds 0.80; 0.81–1.02 for the other settings tried).
    ridge : weight pulling every node towards the identity (0°, 1, 1).

    Returns
    -------
    (1, hue, sat, 3) float64 table of (hue shift in degrees, saturation scale, value scale).

    Notes
    -----
    Per patch the wanted hue shift (wrapped to ±180°), saturation ratio and
    value ratio in DNG HSV; each is a linear function of the table nodes
    through the bilinear weights of
    :func:`~ispkit.stages.dng_render.apply_hue_sat_map`. Every equation is
    weighted by ``value**(1/3)`` (CIE L* grows so), hue and saturation ones
    also by the patch's saturation (their effect on colour scales with it). The three sparse regularised least-squares problems are
    solved exactly; the zero-saturation column is held at identity, so
    neutrals (and white balance) are untouched.
    """
    return fit_hue_sat_maps(pp_pred, pp_target, np.ones((len(np.asarray(pp_pred)), 1)), dims=dims,
                            smoothness=smoothness, ridge=ridge)[0]


def fit_hue_sat_maps(pp_pred: Any, pp_target: Any, mix: Any, *, row_weights: Any = None,
                     dims: tuple[int, int] = (90, 30), smoothness: float | tuple[float, float] = (0.5, 1.0),
                     ridge: float = 0.02, samples_per_light: int | None = None) -> list[np.ndarray]:
    """Fit K HueSatMaps jointly, the table applied to sample i being ``Σ_k mix[i, k] · table_k`` (as the renderer mixes them).

    Parameters
    ----------
    pp_pred, pp_target : (N, 3) predicted and true linear ProPhoto RGB.
    mix : (N, K) interpolation weights of each sample's white (rows sum to 1).
    row_weights : optional (N,) weight of each sample (e.g. of its light).
    dims, smoothness, ridge : as :func:`fit_hue_sat_map` (per table).
    samples_per_light : the number of reflectances each light contributes;
        table k's smoothing and ridge are scaled by ``sqrt(W_k / samples_per_light)``
        with ``W_k = Σ_i row_weights[i] · mix[i, k]`` its weighted data, so
        that a table fitted over many lights is smoothed as much as one
        fitted on one light (the setting the default smoothness was
        cross-validated for). Default N (one light).

    Returns
    -------
    K tables of shape (1, hue, sat, 3).

    Notes
    -----
    The table lookup is bilinear in the nodes and the mix is linear in the
    tables, so the wanted hue shift, saturation and value ratios of each
    sample are linear in all K tables' nodes: one sparse regularised least
    squares per quantity (see :func:`fit_hue_sat_map` for the weighting,
    smoothing and the neutral column pinned at identity).
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    n_hue, n_sat = (int(d) for d in dims)
    if n_hue < 1 or n_sat < 2:
        raise ParameterError(f"fit_hue_sat_map: dims must be (≥ 1 hue, ≥ 2 saturation) divisions, got {dims!r}")
    pred = np.asarray(pp_pred, np.float64)
    tgt = np.asarray(pp_target, np.float64)
    mix = np.asarray(mix, np.float64)
    n_tables = mix.shape[1]
    rw = np.ones(len(pred)) if row_weights is None else np.asarray(row_weights, np.float64)
    hp, sp_, vp = _rgb_to_hsv(pred)
    ht, st, vt = _rgb_to_hsv(tgt)
    ok = (vp > 1e-4) & (sp_ > 1e-3) & (pred.min(axis=1) > -1e-6) & (tgt.min(axis=1) > -1e-6)
    hp, sp_, vp, ht, st, vt, mix, rw = (a[ok] for a in (hp, sp_, vp, ht, st, vt, mix, rw))
    dh = (ht - hp + 3.0) % 6.0 - 3.0
    wanted = np.stack([dh * 60.0, st / sp_, vt / vp], axis=1)
    idx, w = _node_weights(hp, sp_, n_hue, n_sat)
    n = n_hue * n_sat
    m = len(hp)
    cols = np.concatenate([idx + k * n for k in range(n_tables)], axis=1)
    vals = np.concatenate([w * mix[:, k:k + 1] for k in range(n_tables)], axis=1)
    a = sp.csr_matrix((vals.ravel(), (np.repeat(np.arange(m), 4 * n_tables), cols.ravel())), shape=(m, n_tables * n))
    hue_s, sat_s = (float(smoothness), float(smoothness)) if np.ndim(smoothness) == 0 else map(float, smoothness)
    mass = (rw[:, None] * mix).sum(axis=0) / float(samples_per_light or len(pred))
    gain = np.sqrt(np.maximum(mass, 1e-6))
    reg = sp.block_diag([g * _smoothness(n_hue, n_sat, hue_s * n_hue / 90.0, sat_s * n_sat / 30.0)
                         for g in gain]).tocsr()
    ridge_w = sp.diags(np.repeat(gain ** 2, n)) * ridge ** 2
    grey = np.concatenate([np.arange(n_hue) * n_sat + k * n for k in range(n_tables)])  # zero-saturation nodes
    pin = sp.csr_matrix((np.full(grey.size, 1e3), (np.arange(grey.size), grey)), shape=(grey.size, n_tables * n))
    ident = np.array([0.0, 1.0, 1.0])
    table = np.empty((n_tables * n, 3))
    lightness = np.cbrt(np.clip(vp, 0.0, None))
    for k in range(3):
        dw = (sp_ if k < 2 else np.ones(m)) * lightness * np.sqrt(rw)
        ad = sp.diags(dw) @ a
        lhs = (ad.T @ ad + reg.T @ reg + pin.T @ pin + ridge_w).tocsc()
        rhs = ad.T @ (dw * wanted[:, k]) + reg.T @ (reg @ np.full(n_tables * n, ident[k])) \
            + pin.T @ np.full(grey.size, 1e3 * ident[k]) + ridge_w @ np.full(n_tables * n, ident[k])
        table[:, k] = spsolve(lhs, rhs)
    table[:, 1:] = np.maximum(table[:, 1:], 0.0)
    return [table[k * n:(k + 1) * n].reshape(1, n_hue, n_sat, 3) for k in range(n_tables)]


def fit_forward_matrices(cam_wb: Sequence[np.ndarray], xyz_d50: Sequence[np.ndarray], mix: Any, *,
                         light_weights: Any = None, max_evaluations: int = 400) -> list[np.ndarray]:
    """Fit K ForwardMatrices jointly so that each light's mixed matrix ``Σ_k mix[l, k] · FM_k`` renders it best.

    Parameters
    ----------
    cam_wb : per light, (N_l, 3) white-balanced camera RGB (white (1, 1, 1)).
    xyz_d50 : per light, (N_l, 3) target XYZ relative to D50.
    mix : (L, K) interpolation weights the renderer gives each light's white.
    light_weights : optional (L,) weight of each light's residuals.
    max_evaluations : cap on residual evaluations of the ΔE2000 refinement.

    Returns
    -------
    K (3, 3) matrices, each mapping camera (1, 1, 1) to the D50 white exactly.

    Notes
    -----
    Each row of each matrix keeps ``Σ_j FM[i, j] = D50_white[i]`` (six free
    parameters per matrix). Start: the joint XYZ least squares, linear in
    the free parameters and solved in closed form; then
    ``scipy.optimize.least_squares`` (Levenberg–Marquardt) on the
    per-patch CIEDE2000 of every light, weighted by ``light_weights``.
    """
    from scipy.optimize import least_squares

    mix = np.asarray(mix, np.float64)
    n_mats = mix.shape[1]
    lw = np.ones(len(cam_wb)) if light_weights is None else np.asarray(light_weights, np.float64)
    rows_a, rows_b = [], []
    for c, x, wl, g in zip(cam_wb, xyz_d50, mix, lw):
        feats = np.concatenate([np.stack([wk * (c[:, 0] - c[:, 2]), wk * (c[:, 1] - c[:, 2])], axis=1) for wk in wl],
                               axis=1)
        rows_a.append(feats * np.sqrt(g))
        rows_b.append((x - np.outer(c[:, 2], _D50_XYZ)) * np.sqrt(g))
    x0 = np.linalg.lstsq(np.concatenate(rows_a), np.concatenate(rows_b), rcond=None)[0]  # (2K, 3)
    p0 = np.concatenate([x0[2 * k:2 * k + 2].T.ravel() for k in range(n_mats)])

    def matrices(p: np.ndarray) -> list[np.ndarray]:
        out = []
        for k in range(n_mats):
            m = np.empty((3, 3))
            m[:, :2] = p[6 * k:6 * k + 6].reshape(3, 2)
            m[:, 2] = _D50_XYZ - m[:, 0] - m[:, 1]
            out.append(m)
        return out

    colour = spectral.import_colour()
    target = np.concatenate([_xyz_to_lab(x) for x in xyz_d50])
    scale = np.concatenate([np.full(len(c), np.sqrt(g)) for c, g in zip(cam_wb, lw)])

    def residual(p: np.ndarray) -> np.ndarray:
        fms = matrices(p)
        xyz = np.concatenate([c @ sum(wk * f for wk, f in zip(wl, fms)).T for c, wl in zip(cam_wb, mix)])
        de = np.asarray(colour.delta_E(_xyz_to_lab(xyz), target, method="CIE 2000"))
        return np.sqrt(de ** 2 + 1e-12) * scale

    sol = least_squares(residual, p0, method="lm", x_scale=0.1, max_nfev=int(max_evaluations))
    return matrices(sol.x)


def _fit_one(cam: np.ndarray, xyz_d50: np.ndarray, neutral: np.ndarray, *, dims: tuple[int, int] | None,
             smoothness: Any) -> tuple[np.ndarray, np.ndarray | None]:
    cam_wb = cam / neutral
    fm = fit_forward_matrix(cam_wb, xyz_d50)
    if dims is None:
        return fm, None
    table = fit_hue_sat_map((cam_wb @ fm.T) @ _XYZ_TO_PP.T, xyz_d50 @ _XYZ_TO_PP.T, dims=dims, smoothness=smoothness)
    return fm, table


def _light_source_code(name: str) -> int:
    """EXIF LightSource code of a calibration illuminant (for a single-illuminant profile only a label)."""
    return CALIBRATION_ILLUMINANTS.get(name, SYNTHETIC_ILLUMINANTS[name][1])


def build_spectral_profile(camera: str = "Nikon 5100 (NPL)", *, illuminants: Sequence[str] = ("A", "D55", "F"),
                           reflectances: np.ndarray | None = None, dims: tuple[int, int] | None = (90, 30),
                           smoothness: float | tuple[float, float] = (0.5, 1.0),
                           training_illuminants: Sequence[str | float] = TRAINING_ILLUMINANTS,
                           exclude: Sequence[str | float] = (), anchor_weights: Mapping[str, float] = ANCHOR_WEIGHTS,
                           max_evaluations: int = 400) -> CameraProfileFit:
    """Build a camera profile (one, two or three calibration illuminants) from spectral sensitivities and training reflectances.

    Parameters
    ----------
    camera : a key of ``colour.MSDS_CAMERA_SENSITIVITIES`` (e.g. ``"Nikon 5100 (NPL)"``).
    illuminants : three calibration illuminants of :data:`CALIBRATION_ILLUMINANTS`
        (default A, D55 and F — EXIF "Fluorescent": a DNG 1.6
        triple-illuminant profile fitted jointly over ``training_illuminants``),
        two (a dual-illuminant profile fitted at each illuminant), or one illuminant of
        :data:`ispkit.io.synthetic.SYNTHETIC_ILLUMINANTS` (e.g. ``"F2"`` for a
        profile made for a fluorescent-lit scene; its EXIF code, or the nearest
        one for the LED, is then only a label).
    reflectances : (N, 61) training reflectances; default
        :func:`training_reflectances` (rawtoaces, CIE TCS, NIST CQS, PMC; no ColorChecker).
    dims : HueSatMap (hue, saturation) divisions, or None for matrices only.
    smoothness : see :func:`fit_hue_sat_map`.
    training_illuminants, exclude, anchor_weights, max_evaluations : for three
        illuminants: the lights the joint fit runs over (:data:`TRAINING_ILLUMINANTS`),
        lights to leave out of them, the weight of named lights
        (:data:`ANCHOR_WEIGHTS`) and the cap on ΔE2000 evaluations of the
        ForwardMatrix fit (:func:`fit_forward_matrices`).

    Returns
    -------
    CameraProfileFit (``.write_dcp(path)`` writes it).

    Notes
    -----
    One or two illuminants: per illuminant a ColorMatrix (:func:`fit_color_matrix`),
    ForwardMatrix (:func:`fit_forward_matrix`, ΔE2000) and HueSatMap
    (:func:`fit_hue_sat_map`) from :func:`simulate_patches`; a few seconds.
    Three: the ColorMatrices are fitted at each calibration light (F at
    CIE F2's spectrum and CWF at F9's, the lamps the DNG SDK places those
    classes at); every
    training light is simulated, its white found through them as the
    renderer does and given the DNG 1.6 triple-illuminant weights; the three
    ForwardMatrices (:func:`fit_forward_matrices`) and HueSatMaps
    (:func:`fit_hue_sat_maps`) are then fitted jointly so that the mixed
    profile the renderer uses at each light's white renders it best — not
    only at the three calibration points. Tens of seconds.
    """
    t0 = time.perf_counter()
    colour = spectral.import_colour()
    if camera not in colour.MSDS_CAMERA_SENSITIVITIES:
        raise unknown_name("camera", camera, list(colour.MSDS_CAMERA_SENSITIVITIES.keys()), "build_spectral_profile")
    names = [str(i).upper() for i in illuminants]
    if not 1 <= len(names) <= 3 or len(set(names)) != len(names):
        raise ParameterError(f"build_spectral_profile: give one, two or three distinct calibration illuminants, "
                             f"got {illuminants!r}")
    valid = CALIBRATION_ILLUMINANTS if len(names) >= 2 else SYNTHETIC_ILLUMINANTS
    for n in names:
        if n not in valid:
            raise unknown_name("calibration illuminant" + (" of a dual / triple profile" if len(names) >= 2 else ""),
                               n, valid, "build_spectral_profile")
    refl = training_reflectances() if reflectances is None else np.asarray(reflectances, np.float64)
    if refl.ndim != 2 or refl.shape[1] != len(spectral.WAVELENGTHS) or len(refl) < 3:
        raise InputError(f"build_spectral_profile: reflectances must be (N ≥ 3, {len(spectral.WAVELENGTHS)}) on "
                         f"400–700 nm at 5 nm, got {refl.shape}")
    if len(names) == 3:
        return _build_triple(camera, names, refl, dims=dims, smoothness=smoothness,
                             lights=[v for v in training_illuminants if v not in set(exclude)],
                             anchor_weights=anchor_weights, max_evaluations=max_evaluations, t0=t0)
    parts = {}
    train_de = {}
    cmfs = np.asarray(spectral.spectral_data()["cmfs"])
    for n in names:
        cam, xyz_d50, neutral = simulate_patches(camera, n, refl)
        spd = _illuminant(n)
        y_white = spd @ cmfs[:, 1]
        xyz = (refl * spd) @ cmfs / y_white
        cm = fit_color_matrix(cam, xyz, neutral, spd @ cmfs / y_white)
        fm, table = _fit_one(cam, xyz_d50, neutral, dims=dims, smoothness=smoothness)
        parts[n] = (cm, fm, table)
    k1 = names[0]
    k2 = names[1] if len(names) == 2 else None
    fit = CameraProfileFit(
        color_matrix1=parts[k1][0], forward_matrix1=parts[k1][1], hue_sat_map1=parts[k1][2],
        calibration_illuminant1=_light_source_code(k1),
        color_matrix2=None if k2 is None else parts[k2][0], forward_matrix2=None if k2 is None else parts[k2][1],
        hue_sat_map2=None if k2 is None else parts[k2][2],
        calibration_illuminant2=None if k2 is None else _light_source_code(k2),
        camera=camera, training=f"{len(refl)} reflectances under {', '.join(names)}")
    for n in names:
        cam, xyz_d50, neutral = simulate_patches(camera, n, refl)
        train_de[n] = float(delta_e2000(render_patches(fit, cam, neutral), xyz_d50).mean())
    return dataclasses.replace(fit, training_delta_e=train_de, seconds=time.perf_counter() - t0)


def _color_matrix_at(sens: np.ndarray, spd: np.ndarray, refl: np.ndarray) -> np.ndarray:
    """The ColorMatrix of a calibration light (:func:`fit_color_matrix` on the unadapted XYZ)."""
    cmfs = np.asarray(spectral.spectral_data()["cmfs"])
    cam, _, neutral = _simulate(sens, spd, refl)
    y_white = spd @ cmfs[:, 1]
    return fit_color_matrix(cam, (refl * spd) @ cmfs / y_white, neutral, spd @ cmfs / y_white)


def _is_broadband(light: str | float) -> bool:
    """Planckian radiators, CIE A and CIE daylight: the lights the first two calibrations stand for."""
    return not isinstance(light, str) or light.upper() in ("A", "D50", "D55", "D65", "D75")


def _light_weight(light: str | float, mix: Sequence[float], anchor_weights: Mapping[str, float]) -> float:
    """Weight of a training light in the joint fit: its anchor weight; a lamp counts by its weight on the third set."""
    base = float(anchor_weights.get(light, 1.0)) if isinstance(light, str) else 1.0
    return base if _is_broadband(light) else base * float(mix[2])


def _build_triple(camera: str, names: Sequence[str], refl: np.ndarray, *, dims: tuple[int, int] | None,
                  smoothness: Any, lights: Sequence[str | float], anchor_weights: Mapping[str, float],
                  max_evaluations: int, t0: float) -> CameraProfileFit:
    """The three-illuminant profile of :func:`build_spectral_profile`: ColorMatrices per light, the rest jointly."""
    if len(lights) < 3:
        raise ParameterError(f"build_spectral_profile: a three-illuminant profile needs ≥ 3 training lights, got {lights!r}")
    sens = _sensitivities(camera)
    codes = [CALIBRATION_ILLUMINANTS[n] for n in names]
    cms = [_color_matrix_at(sens, _illuminant(n), refl) for n in names]
    base = CameraProfileFit(color_matrix1=cms[0], forward_matrix1=np.eye(3), hue_sat_map1=None,
                            calibration_illuminant1=codes[0], color_matrix2=cms[1], forward_matrix2=np.eye(3),
                            calibration_illuminant2=codes[1], color_matrix3=cms[2], forward_matrix3=np.eye(3),
                            calibration_illuminant3=codes[2], camera=camera)
    locator = base.dng_profile
    cam_wb, xyz_d50, mix, weights = [], [], [], []
    for light in lights:
        cam, xyz, neutral = _simulate(sens, _illuminant(light), refl)
        cam_wb.append(cam / neutral)
        xyz_d50.append(xyz)
        mix.append(dng_color_solution(locator, neutral).weights)
        weights.append(_light_weight(light, mix[-1], anchor_weights))
    mix_arr, w_arr = np.array(mix), np.array(weights)
    fms = fit_forward_matrices(cam_wb, xyz_d50, mix_arr, light_weights=w_arr, max_evaluations=max_evaluations)
    tables: list[np.ndarray | None] = [None, None, None]
    if dims is not None:
        pred = np.concatenate([c @ sum(wk * f for wk, f in zip(wl, fms)).T for c, wl in zip(cam_wb, mix_arr)])
        sizes = [len(c) for c in cam_wb]
        tables = fit_hue_sat_maps(pred @ _XYZ_TO_PP.T, np.concatenate(xyz_d50) @ _XYZ_TO_PP.T,
                                  np.repeat(mix_arr, sizes, axis=0), row_weights=np.repeat(w_arr, sizes),
                                  dims=dims, smoothness=smoothness, samples_per_light=len(refl))
    fit = dataclasses.replace(base, forward_matrix1=fms[0], forward_matrix2=fms[1], forward_matrix3=fms[2],
                              hue_sat_map1=tables[0], hue_sat_map2=tables[1], hue_sat_map3=tables[2],
                              training=f"{len(refl)} reflectances under {len(lights)} lights "
                                       f"(calibrations {', '.join(names)})")
    train_de = {}
    for n in names:
        cam, xyz, neutral = _simulate(sens, _illuminant(n), refl)
        train_de[n] = float(delta_e2000(render_patches(fit, cam, neutral), xyz).mean())
    return dataclasses.replace(fit, training_delta_e=train_de, seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------
# rendering and evaluation


def render_patches(fit: CameraProfileFit | Mapping[str, Any], cam_native: Any, neutral: Any) -> np.ndarray:
    """Render camera-native RGB through a profile as the DNG pipeline does; return XYZ (D50).

    Parameters
    ----------
    fit : a :class:`CameraProfileFit` or the dict :func:`ispkit.io.dng.read_dcp` returns.
    cam_native : (N, 3) camera-native RGB.
    neutral : (3,) camera-native white.

    Notes
    -----
    White xy from the ColorMatrix iteration, ForwardMatrix path
    (:func:`~ispkit.stages.color_matrix.dng_color_solution`), the HueSatMap
    tables mixed with the same weight and applied by
    :func:`~ispkit.stages.dng_render.apply_hue_sat_map` in linear ProPhoto RGB.
    """
    if isinstance(fit, CameraProfileFit):
        profile, t1, t2, t3 = fit.dng_profile, fit.hue_sat_map1, fit.hue_sat_map2, fit.hue_sat_map3
    else:
        fields = {k: fit.get(v) for k, v in (("color_matrix2", "color_matrix2"), ("forward_matrix1", "forward_matrix1"),
                                             ("forward_matrix2", "forward_matrix2"))}
        if fit.get("color_matrix3") is not None:
            fields.update(color_matrix3=fit["color_matrix3"], forward_matrix3=fit.get("forward_matrix3"),
                          light_xy1=light_source_xy(fit.get("calibration_illuminant1"), fit.get("illuminant_data1")),
                          light_xy2=light_source_xy(fit.get("calibration_illuminant2"), fit.get("illuminant_data2")),
                          light_xy3=light_source_xy(fit.get("calibration_illuminant3"), fit.get("illuminant_data3")))
        profile = DNGProfile(color_matrix1=fit["color_matrix1"], cct1=light_source_cct(fit.get("calibration_illuminant1")),
                             cct2=light_source_cct(fit.get("calibration_illuminant2")), **fields)
        dims = fit.get("hue_sat_map_dims")
        shape = None if dims is None else (int(dims[2]), int(dims[0]), int(dims[1]), 3)
        t1, t2, t3 = (None if shape is None or fit.get(f"hue_sat_map_data{k}") is None
                      else np.reshape(fit[f"hue_sat_map_data{k}"], shape) for k in (1, 2, 3))
    sol = dng_color_solution(profile, np.asarray(neutral, np.float64))
    xyz = np.asarray(cam_native, np.float64) @ sol.camera_to_xyz_d50.T
    if t1 is None and t2 is None:
        return xyz
    if t1 is not None and t2 is not None and t3 is not None and profile.triple:
        table = sol.weights[0] * t1 + sol.weights[1] * t2 + sol.weights[2] * t3
    elif t1 is not None and t2 is not None and profile.dual:
        table = sol.weight * t1 + (1.0 - sol.weight) * t2
    else:
        table = t1 if t1 is not None else t2
    pp = apply_hue_sat_map(xyz @ _XYZ_TO_PP.T, table).astype(np.float64)
    return pp @ _PP_TO_XYZ.T


def evaluate_profile(fit: CameraProfileFit | Mapping[str, Any], camera: str | None = None, *,
                     illuminants: Sequence[str] = TEST_ILLUMINANTS,
                     reflectances: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Return {illuminant: per-patch ΔE2000} of a profile on held-out reflectances (default: the 24 ColorChecker patches).

    Notes
    -----
    Each patch simulated with :func:`simulate_patches`, rendered with
    :func:`render_patches`, compared with its true XYZ adapted to D50
    (Bradford) in CIE Lab (D50).
    """
    cam_name = camera or (fit.camera if isinstance(fit, CameraProfileFit) else None)
    if cam_name is None:
        raise ParameterError("evaluate_profile: name the camera whose sensitivities to simulate")
    refl = chart_reflectances() if reflectances is None else np.asarray(reflectances, np.float64)
    out = {}
    for ill in illuminants:
        cam, xyz_d50, neutral = simulate_patches(cam_name, ill, refl)
        out[str(ill)] = delta_e2000(render_patches(fit, cam, neutral), xyz_d50)
    return out


def _idt_delta_e(camera: str, illuminant: str, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """ΔE2000 of the rawtoaces IDT (colour-science's ``matrix_idt`` objective) fitted and tested at ``illuminant``.

    ``colour.matrix_idt`` is run step by step on the same simulated data as
    the profile: its ``optimisation_factory_rawtoaces_v1`` (Lab objective on
    ACES2065-1, white-preserving rows) minimised with BFGS as ``matrix_idt``
    does, fed the white-balanced camera RGB with the white at (1, 1, 1) and
    the training XYZ (white Y = 1) adapted to the ACES white with Bradford.
    (Called directly, ``matrix_idt`` normalises its illuminant so that the
    white-balanced white is ≈ 1.5 while the XYZ white stays at Y = 1, and
    fits that exposure mismatch into the matrix.)
    """
    colour = spectral.import_colour()
    from scipy.optimize import minimize

    ap0 = colour.RGB_COLOURSPACES["ACES2065-1"]
    ap0_white = colour.xy_to_XYZ(ap0.whitepoint)
    to_ap0 = spectral.bradford_matrix(_D50_XYZ, ap0_white)
    x0, objective, to_lab, finalise = colour.characterisation.optimisation_factory_rawtoaces_v1()
    cam, xyz_d50, neutral = simulate_patches(camera, illuminant, train)
    sol = minimize(objective, x0, (cam / neutral, to_lab(xyz_d50 @ to_ap0.T)), method="BFGS", jac="2-point")
    matrix = finalise(sol.x)
    cam, xyz_d50, neutral = simulate_patches(camera, illuminant, test)
    xyz = ((cam / neutral) @ np.asarray(matrix).T) @ np.asarray(ap0.matrix_RGB_to_XYZ).T
    return delta_e2000(xyz @ np.linalg.inv(to_ap0).T, xyz_d50)


def profile_comparison(camera: str = "Nikon 5100 (NPL)", *, fit: CameraProfileFit | None = None,
                       illuminants: Sequence[str] = TEST_ILLUMINANTS, idt: bool = True,
                       xyz_baseline: bool = False, single: bool = True) -> dict[str, dict[str, float]]:
    """Return mean ΔE2000 on the 24 ColorChecker patches per illuminant: profile, best 3×3 matrix, ``matrix_idt``.

    Returns
    -------
    {illuminant: {"profile", "profile_matrix", "best_3x3", "matrix_idt", "profile_max"}}:
    ``profile`` the full profile (FM + HueSatMap, its calibration sets mixed as rendered),
    ``profile_matrix`` its ForwardMatrices alone, ``best_3x3`` a white-preserving
    ForwardMatrix fitted (ΔE2000) at the test illuminant itself on the same
    training set, ``matrix_idt`` colour-science's rawtoaces IDT fitted at the
    test illuminant on the same training set (Bradford adaptation);
    ``profile_single`` (with ``single``) a single-illuminant profile (FM +
    HueSatMap) built for the test illuminant itself — on the same footing as
    ``best_3x3``, which also knows the light; with
    ``xyz_baseline`` also ``xyz_3x3``, the white-preserving 3×3 fitted by XYZ
    least squares at the test illuminant.
    """
    train = training_reflectances()
    fit = fit or build_spectral_profile(camera, reflectances=train)
    matrices = dataclasses.replace(fit, hue_sat_map1=None, hue_sat_map2=None, hue_sat_map3=None)
    test = chart_reflectances()
    table: dict[str, dict[str, float]] = {}
    for ill in illuminants:
        cam, xyz_d50, neutral = simulate_patches(camera, ill, test)
        de = delta_e2000(render_patches(fit, cam, neutral), xyz_d50)
        de_m = delta_e2000(render_patches(matrices, cam, neutral), xyz_d50)
        tc, tx, tn = simulate_patches(camera, ill, train)
        best = fit_forward_matrix(tc / tn, tx)
        de_best = delta_e2000((cam / neutral) @ best.T, xyz_d50)
        row = {"profile": float(de.mean()), "profile_max": float(de.max()), "profile_matrix": float(de_m.mean()),
               "best_3x3": float(de_best.mean())}
        if single:
            own = build_spectral_profile(camera, illuminants=(ill,), reflectances=train)
            row["profile_single"] = float(delta_e2000(render_patches(own, cam, neutral), xyz_d50).mean())
        if xyz_baseline:
            xyz_m = fit_forward_matrix(tc / tn, tx, metric="xyz")
            row["xyz_3x3"] = float(delta_e2000((cam / neutral) @ xyz_m.T, xyz_d50).mean())
        if idt:
            row["matrix_idt"] = float(_idt_delta_e(camera, ill, train, test).mean())
        table[str(ill)] = row
    return table


# ---------------------------------------------------------------------------
# from a chart capture


def chart_reference_xyz(*, illuminant: str = "D50") -> np.ndarray:
    """Return the ColorChecker's (24, 3) XYZ relative to D50 (white Y = 1): its spectra under ``illuminant``, Bradford to D50.

    Notes
    -----
    The reference a chart profile is fitted to when no measured values are
    given ("ColorChecker N Ohta" from colour-science, CIE 1931 2°).
    """
    return simulate_patches("Nikon 5100 (NPL)", illuminant, chart_reflectances())[1]


def chart_patch_means(frame: Any, patch_boxes: Sequence[Sequence[int]]) -> np.ndarray:
    """Return the (k, 3) camera-native means of each patch box of a RAW mosaic, per CFA colour.

    Parameters
    ----------
    frame : RAW_MOSAIC :class:`~ispkit.frame.Frame` (counts with black / white level in its metadata).
    patch_boxes : ``(y0, y1, x0, x1)`` interior boxes in frame pixels (e.g.
        :attr:`~ispkit.io.synthetic.SyntheticCapture.patch_boxes`).

    Notes
    -----
    Black-level subtracted and scaled to [0, 1] by the
    :class:`~ispkit.stages.black_level.BlackLevel` stage, then the mean of
    the red, green and blue sites inside each box — no demosaic, so no
    interpolation error. A box needs at least 2×2 pixels inside the frame.
    """
    from .frame import Domain, cfa_color_indices
    from .stages.black_level import BlackLevel

    if getattr(frame, "domain", None) is not Domain.RAW_MOSAIC:
        raise InputError(f"chart_patch_means: need a RAW_MOSAIC frame, got {getattr(frame, 'domain', type(frame))!r}")
    data = np.asarray(BlackLevel()(frame).data, np.float64)
    h, w = data.shape
    colors = np.empty((h, w), np.int64)
    cfa = cfa_color_indices(frame.meta.cfa_pattern)
    for dy in (0, 1):
        for dx in (0, 1):
            colors[dy::2, dx::2] = cfa[dy, dx]
    out = []
    for k, box in enumerate(patch_boxes):
        y0, y1, x0, x1 = (int(v) for v in box)
        if not (0 <= y0 and y0 + 2 <= y1 <= h and 0 <= x0 and x0 + 2 <= x1 <= w):
            raise ParameterError(f"chart_patch_means: patch box {k} {tuple(box)} is not a (y0, y1, x0, x1) box of "
                                 f"at least 2×2 pixels inside the {h}×{w} frame")
        d, c = data[y0:y1, x0:x1], colors[y0:y1, x0:x1]
        out.append([d[c == ch].mean() for ch in range(3)])
    return np.array(out)


def build_chart_profile(frame: Any, patch_boxes: Sequence[Sequence[int]], *, reference_xyz: Any = None,
                        neutral: Any = None, dims: tuple[int, int] | None = None,
                        smoothness: float | tuple[float, float] = 1.0, camera: str | None = None) -> CameraProfileFit:
    """Build a single-illuminant camera profile from a RAW capture of a 24-patch ColorChecker.

    Parameters
    ----------
    frame : RAW_MOSAIC frame of the chart (:func:`ispkit.io.read_raw`).
    patch_boxes : 24 ``(y0, y1, x0, x1)`` boxes inside the patches, row-major
        from "dark skin" (the user measures them; for a
        :func:`~ispkit.io.synthetic.synthesize_capture` layout they are known).
    reference_xyz : (24, 3) XYZ of the patches relative to D50 (white Y = 1);
        default :func:`chart_reference_xyz` (colour-science's ColorChecker under D50).
    neutral : camera-native white; default the file's as-shot neutral (what the render uses).
    dims : HueSatMap divisions, or None (default: 24 patches do not constrain
        a 90 × 30 table; a matrix-only profile is the robust choice).
    camera : UniqueCameraModel to write (default the file's make and model).

    Notes
    -----
    The patch means (:func:`chart_patch_means`) are brought to the white's
    scale by the least-squares factor that matches the six grey patches'
    luminance (the exposure of a chart shot is unknown), then the
    ForwardMatrix is fitted as in :func:`fit_forward_matrix` and the
    ColorMatrix from the reference adapted back to the scene white (Bradford).
    The calibration illuminant is the EXIF code of the standard light
    nearest the scene white in mired (DNG needs one; a single-illuminant
    profile is used for every white).
    """
    from .stages.color_matrix import as_shot_neutral
    from .stages.colorspaces import xy_to_cct

    t0 = time.perf_counter()
    boxes = list(patch_boxes)
    ref = chart_reference_xyz() if reference_xyz is None else np.asarray(reference_xyz, np.float64)
    if ref.shape != (len(boxes), 3) or len(boxes) < 6:
        raise ParameterError(f"build_chart_profile: need one reference XYZ per patch box (≥ 6), got {len(boxes)} "
                             f"boxes and reference shape {ref.shape}")
    cam = chart_patch_means(frame, boxes)
    if neutral is None:
        neutral = as_shot_neutral(frame.meta)
        if neutral is None:
            raise InputError(f"build_chart_profile: {frame.meta.source or 'the frame'} carries no as-shot white "
                             "balance; pass neutral=(r, g, b) (e.g. the white patch's camera RGB)")
    neutral = np.asarray(neutral, np.float64)
    neutral = neutral / neutral.max()
    cam_wb = cam / neutral
    greys = slice(18, 24) if len(boxes) == 24 else slice(None)
    # exposure: the grey patches' luminance through a first fit must match the reference
    fm0 = fit_forward_matrix(cam_wb, ref, metric="xyz")
    y_cam = (cam_wb[greys] @ fm0.T)[:, 1]
    scale = float(y_cam @ ref[greys, 1] / (y_cam @ y_cam))
    for _ in range(3):  # the XYZ fit depends a little on the scale: settle it
        fm0 = fit_forward_matrix(cam_wb * scale, ref, metric="xyz")
        y_cam = (cam_wb[greys] * scale @ fm0.T)[:, 1]
        scale *= float(y_cam @ ref[greys, 1] / (y_cam @ y_cam))
    cam_wb = cam_wb * scale
    fm = fit_forward_matrix(cam_wb, ref)
    table = None
    if dims is not None:
        table = fit_hue_sat_map((cam_wb @ fm.T) @ _XYZ_TO_PP.T, ref @ _XYZ_TO_PP.T, dims=dims, smoothness=smoothness)
    # the scene white from the ForwardMatrix: camera neutral → D50; the ColorMatrix sees the unadapted scene
    file_white = None
    try:
        file_white = dng_color_solution(frame.meta).white_xy
    except Exception:  # no DNG colour tags: fall back to the D50 white
        file_white = np.array(illuminant_xy("D50"))
    white_xyz = np.array([file_white[0] / file_white[1], 1.0, (1 - file_white.sum()) / file_white[1]])
    xyz_scene = ref @ spectral.bradford_matrix(_D50_XYZ, white_xyz).T
    cm = fit_color_matrix(cam * scale, xyz_scene, neutral, white_xyz)
    cct = float(xy_to_cct(file_white))
    code = min(CALIBRATION_ILLUMINANTS.values(), key=lambda c: abs(1e6 / (light_source_cct(c) or 5000.0) - 1e6 / cct))
    meta = frame.meta
    name = camera or " ".join(v for v in (meta.make, meta.model) if v) or "ispkit camera"
    fit = CameraProfileFit(color_matrix1=cm, forward_matrix1=fm, hue_sat_map1=table, calibration_illuminant1=code,
                           camera=name, training=f"{len(boxes)} chart patches of {meta.source or 'a RAW capture'}")
    de = delta_e2000(render_patches(fit, cam * scale, neutral), ref)
    return dataclasses.replace(fit, training_delta_e={"chart": float(de.mean())}, seconds=time.perf_counter() - t0)


def synthetic_patch_boxes(size: Sequence[int]) -> tuple[tuple[int, int, int, int], ...]:
    """Return the 24 patch boxes of a :func:`~ispkit.io.synthetic.synthesize_capture` chart of ``size`` (H, W)."""
    h, w = (int(v) for v in size)
    from .io.synthetic import chart_patch_boxes

    return chart_patch_boxes(h, w)


def _read_boxes(boxes: str, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    import json

    if boxes == "synthetic":
        return list(synthetic_patch_boxes(shape))
    try:
        data = json.loads(Path(boxes).read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(f"ispkit profile --boxes {boxes!r}: cannot read a JSON list of 24 [y0, y1, x0, x1] "
                             f"boxes ({exc}); or pass --boxes synthetic for a synthesize_capture chart") from None
    if not isinstance(data, list) or len(data) != 24 or any(np.shape(b) != (4,) for b in data):
        raise ParameterError(f"ispkit profile --boxes {boxes!r}: expected a JSON list of 24 [y0, y1, x0, x1] boxes "
                             "(row-major from 'dark skin'), got something else")
    return [tuple(int(v) for v in b) for b in data]


def _read_reference(path: str) -> np.ndarray:
    """Read 24 CIE Lab (D50) chart values from a JSON list and return XYZ relative to D50 (white Y = 1)."""
    import json

    try:
        lab = np.asarray(json.loads(Path(path).read_text()), dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise ParameterError(f"ispkit profile --reference {path!r}: cannot read a JSON list of 24 [L, a, b] "
                             f"values ({exc})") from None
    if lab.shape != (24, 3) or not np.all(np.isfinite(lab)):
        raise ParameterError(f"ispkit profile --reference {path!r}: expected 24 [L, a, b] (D50) values, "
                             f"got shape {lab.shape}")
    fy = (lab[:, 0] + 16.0) / 116.0
    f = np.stack([fy + lab[:, 1] / 500.0, fy, fy - lab[:, 2] / 200.0], axis=1)
    d = 6.0 / 29.0
    return np.where(f > d, f ** 3, 3 * d * d * (f - 4.0 / 29.0)) * _D50_XYZ


def make_profile(output: str | os.PathLike, *, sensitivities: str | None = None, chart: str | None = None,
                 boxes: str = "synthetic", reference: str | None = None,
                 illuminants: Sequence[str] = ("A", "D55", "F"),
                 dims: tuple[int, int] | None = (90, 30), evaluate: bool = True) -> str:
    """Build a profile (from sensitivities or a chart RAW), write it as a DCP and return a report (``ispkit profile``).

    Parameters
    ----------
    output : the ``.dcp`` to write.
    sensitivities : a camera of ``colour.MSDS_CAMERA_SENSITIVITIES`` (spectral profile).
    chart : a RAW file of a ColorChecker (chart profile; ``boxes`` locates the patches:
        a JSON file of 24 ``[y0, y1, x0, x1]`` or ``"synthetic"``; ``reference``
        a JSON file of the chart's 24 measured ``[L, a, b]`` (D50), default
        colour-science's ColorChecker under D50).
    illuminants, dims : see :func:`build_spectral_profile` (``dims`` None: matrices only;
        for a chart the HueSatMap is off unless given).
    evaluate : for a spectral profile, add the held-out ColorChecker table.
    """
    if (sensitivities is None) == (chart is None):
        raise ParameterError("ispkit profile: give exactly one of --sensitivities NAME or --chart RAW")
    lines = []
    if sensitivities is not None:
        fit = build_spectral_profile(sensitivities, illuminants=illuminants, dims=dims)
    else:
        from .io.raw import read_raw

        frame = read_raw(chart)
        ref = None if reference is None else _read_reference(reference)
        fit = build_chart_profile(frame, _read_boxes(boxes, frame.data.shape), reference_xyz=ref, dims=dims)
    path = fit.write_dcp(output)
    tables = "" if fit.hue_sat_map1 is None else f" + HueSatMap {fit.hue_sat_map1.shape[1]}×{fit.hue_sat_map1.shape[2]}"
    lines.append(f"{path}: ForwardMatrix{tables}, {fit.training} ({fit.seconds:.1f} s)")
    lines.append("  training mean ΔE2000: " + ", ".join(f"{k} {v:.3f}" for k, v in fit.training_delta_e.items()))
    if sensitivities is not None and evaluate:
        lines.append("  held-out ColorChecker (24 patches), mean ΔE2000:")
        for ill, de in evaluate_profile(fit).items():
            lines.append(f"    {ill:<4s} {float(de.mean()):.3f} (max {float(de.max()):.2f})")
    return "\n".join(lines)
