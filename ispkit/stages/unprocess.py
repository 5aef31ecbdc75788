"""Unprocessing: turn an sRGB image into a plausible RAW mosaic (Brooks et al. 2019).

The forward camera pipeline is run backwards with a randomly sampled camera:
display encoding → linear sRGB → camera RGB (a colour matrix mixed from real
cameras) → divide by white-balance gains and a brightness scale (keeping
highlights saturated) → Bayer mosaic → heteroscedastic shot + read noise.

:func:`sample_camera` draws the camera, :func:`unprocess` applies it and
returns a ``RAW_MOSAIC`` :class:`~ispkit.frame.Frame` whose metadata
(``cam_to_xyz``, ``wb_gains``, a DNG BaselineExposure undoing the brightness,
``noise_profile``) makes the ``default`` preset render it back to
(approximately) the input.

References
----------
T. Brooks, B. Mildenhall, T. Xue, J. Chen, D. Sharlet, J. T. Barron,
"Unprocessing Images for Learned Raw Denoising", CVPR 2019.
Adobe, DNG Specification 1.6 (ColorMatrix, AsShotNeutral, NoiseProfile,
BaselineExposure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, NotInvertibleError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame, check_cfa_pattern
from ..pipeline import Stage
from .color_matrix import camera_to_working_matrix
from .colorspaces import apply_color_matrix
from .demosaic import mosaic
from .gamma import GAMMA_CURVES, gamma_expand

__all__ = [
    "CAMERA_COLOR_MATRICES",
    "CameraSample",
    "UnprocessResult",
    "sample_camera",
    "unprocess",
    "add_noise",
    "smoothstep",
    "inverse_smoothstep",
    "invert_white_balance_safe",
    "camera_matrix_from_metadata",
    "noise_from_profile",
]

#: DNG ColorMatrix2 (XYZ → camera under D65) of a few real cameras, as published by
#: Adobe (DNG Converter) and tabulated in LibRaw's ``adobe_coeff`` (values / 10000).
#: The Nikon D750 and Canon EOS 7D entries are also the matrices carried by
#: ``../shared/data`` (the D750 Bayer crops' sidecar, the NTIRE 2023 night JSON).
CAMERA_COLOR_MATRICES: dict[str, tuple[float, ...]] = {
    "Canon EOS 5D Mark II": (4716, 603, -830, -7798, 15474, 2480, -1496, 1937, 6651),
    "Canon EOS 5D Mark III": (6722, -635, -963, -4287, 12460, 2028, -908, 2162, 5668),
    "Canon EOS 6D": (7034, -804, -1014, -4420, 12564, 2058, -851, 1994, 5758),
    "Canon EOS 7D": (6844, -996, -856, -3876, 11761, 2396, -593, 1772, 6198),
    "Nikon D750": (9020, -2890, -715, -4535, 12436, 2348, -934, 1919, 7086),
}

#: Brooks et al.'s sampling ranges: red and blue white-balance gains, the
#: brightness (linear scale, mean and standard deviation of a normal, clipped
#: to the range) and the log-uniform shot-noise range with the log-linear
#: read-noise fit ``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26)``.
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)
BRIGHTNESS = (0.8, 0.1, (0.4, 1.2))
SHOT_NOISE_RANGE = (1e-4, 1.2e-2)
READ_NOISE_FIT = (2.18, 1.20, 0.26)
NOISE_MODELS = ("brooks", "none")
TONE_CURVES = ("none", "smoothstep")

# D65 white, Y = 1 (CIE 15:2004, xy = 0.3127, 0.3290)
_D65_XYZ = np.array([0.3127 / 0.3290, 1.0, (1.0 - 0.3127 - 0.3290) / 0.3290])


def _matrix(value: Any, what: str) -> np.ndarray:
    m = np.asarray(value, dtype=np.float64)
    if m.size == 9:
        m = m.reshape(3, 3)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ParameterError(f"{what}: expected a finite 3×3 matrix, got {np.shape(value)}")
    if abs(np.linalg.det(m)) < 1e-12 * max(1.0, float(np.abs(m).max()) ** 3):
        raise ParameterError(f"{what}: the matrix is singular (det ≈ 0), so it cannot map colours both ways; "
                             f"got {m.tolist()}")
    return m


def _normalised_xyz_to_cam(xyz_to_cam: np.ndarray) -> np.ndarray:
    """Scale so the D65 white maps to a camera neutral whose largest component is 1 (DNG)."""
    neutral = xyz_to_cam @ _D65_XYZ
    peak = float(neutral.max())
    if not np.isfinite(peak) or peak <= 0:
        raise ParameterError(f"camera matrix maps the D65 white to {neutral.tolist()}; expected positive values")
    return xyz_to_cam / peak


def camera_matrix_from_metadata(meta: CaptureMetadata) -> np.ndarray:
    """Return the (3, 3) ``cam_to_xyz`` of a capture's metadata (for ``sample_camera(matrices=...)``).

    Uses ``meta.cam_to_xyz``, else the inverse of the DNG ``color_matrix2``
    (then ``color_matrix1``). Raises :class:`~ispkit.errors.ParameterError`
    when the metadata carries none of them.
    """
    if meta.cam_to_xyz is not None:
        return np.asarray(meta.cam_to_xyz, dtype=np.float64)
    for cm in (meta.color_matrix2, meta.color_matrix1):
        if cm is not None:
            return np.linalg.inv(_matrix(cm, "camera_matrix_from_metadata"))
    raise ParameterError(f"camera_matrix_from_metadata: {meta.source or 'this frame'} carries no cam_to_xyz "
                         "and no DNG ColorMatrix1/2")


def _default_matrices() -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64).reshape(3, 3) / 10000.0 for v in CAMERA_COLOR_MATRICES.values()]


def noise_from_profile(profile: Any) -> tuple[float, float]:
    """Return (shot, read) from a DNG NoiseProfile / NTIRE ``noise_profile``.

    Parameters
    ----------
    profile : a ``(scale, offset)`` pair, or a sequence of pairs (one per
        CFA plane or colour, as in ``CaptureMetadata.noise_profile``), or
        the NTIRE JSON form ``[[scale...], [offset...]]``.

    Notes
    -----
    The DNG model is ``variance = scale · x + offset`` for ``x`` the
    normalised signal; several pairs are averaged.
    """
    try:
        arr = np.asarray(profile, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.ndim == 1 and arr.size == 2:
        pairs = arr[None, :]
    elif arr.ndim == 2 and arr.shape[1] == 2:
        pairs = arr
    elif arr.ndim == 2 and arr.shape[0] == 2:  # NTIRE: [[scales], [offsets]]
        pairs = arr.T
    else:
        raise ParameterError(f"noise profile: expected (scale, offset) pairs, got {profile!r}")
    if not np.all(np.isfinite(pairs)) or np.any(pairs < 0):
        raise ParameterError(f"noise profile: scale and offset must be finite and >= 0, got {pairs.tolist()}")
    shot, read = pairs.mean(axis=0)
    return float(shot), float(read)


@dataclass(frozen=True, eq=False)
class CameraSample:
    """One randomly drawn camera: colour, white balance, brightness, CFA and noise.

    Attributes
    ----------
    rgb_to_cam : (3, 3) linear sRGB → white-balanced camera RGB; rows sum to
        1 so a neutral stays neutral before the white-balance inversion (the
        exact inverse of the matrix the ``color_matrix`` stage builds from
        ``cam_to_xyz`` and ``wb_gains``).
    cam_to_xyz : (3, 3) camera-native RGB → XYZ (the inverse of a DNG ColorMatrix).
    wb_gains : (3,) R, G, B white-balance multipliers (green = 1).
    brightness : linear scale applied while unprocessing (Brooks' ``1 / rgb_gain``).
    cfa_pattern : Bayer layout of the mosaic.
    shot_noise, read_noise : variance model ``var = shot · x + read`` (x in [0, 1]).
    """

    rgb_to_cam: np.ndarray
    cam_to_xyz: np.ndarray
    wb_gains: np.ndarray
    brightness: float = 1.0
    cfa_pattern: str = "RGGB"
    shot_noise: float = 0.0
    read_noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rgb_to_cam", "cam_to_xyz"):
            m = _matrix(getattr(self, name), f"CameraSample.{name}")
            m.setflags(write=False)
            object.__setattr__(self, name, m)
        g = np.asarray(self.wb_gains, dtype=np.float64).ravel()
        if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise ParameterError(f"CameraSample.wb_gains: expected 3 positive gains, got {self.wb_gains!r}")
        g.setflags(write=False)
        object.__setattr__(self, "wb_gains", g)
        object.__setattr__(self, "cfa_pattern", check_cfa_pattern(self.cfa_pattern, "CameraSample"))
        for name in ("brightness", "shot_noise", "read_noise"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0 or (name == "brightness" and v == 0):
                raise ParameterError(f"CameraSample.{name}: expected a finite value "
                                     f"{'> 0' if name == 'brightness' else '>= 0'}, got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)

    @classmethod
    def from_matrix(cls, cam_to_xyz: Any, wb_gains: Any, *, brightness: float = 1.0, cfa_pattern: str = "RGGB",
                    shot_noise: float = 0.0, read_noise: float = 0.0) -> "CameraSample":
        """Build a camera from its ``cam_to_xyz`` and gains, deriving ``rgb_to_cam``."""
        c2x = _matrix(cam_to_xyz, "CameraSample.cam_to_xyz")
        meta = CaptureMetadata(cam_to_xyz=c2x, wb_gains=wb_gains)
        srgb_from_cam = camera_to_working_matrix(meta, "sRGB", "cam_to_xyz")
        return cls(rgb_to_cam=np.linalg.inv(srgb_from_cam), cam_to_xyz=c2x, wb_gains=wb_gains,
                   brightness=brightness, cfa_pattern=cfa_pattern, shot_noise=shot_noise, read_noise=read_noise)


@dataclass(frozen=True, eq=False)
class UnprocessResult:
    """What :func:`unprocess` returns.

    Attributes
    ----------
    frame : RAW_MOSAIC frame (black 0, white 1) with the camera's metadata.
    camera_rgb : H×W×3 float32 linear camera RGB before mosaicing, noise-free.
    mosaic_clean : H×W float32 mosaic before noise.
    camera : the :class:`CameraSample` used.
    """

    frame: Frame
    camera_rgb: np.ndarray
    mosaic_clean: np.ndarray
    camera: CameraSample
    extra: dict[str, Any] = field(default_factory=dict)


def _sample_noise(rng: np.random.Generator, noise: Any) -> tuple[float, float]:
    if isinstance(noise, str):
        if noise == "none":
            return 0.0, 0.0
        if noise != "brooks":
            raise unknown_name("noise model", noise, NOISE_MODELS, "sample_camera")
        lo, hi = SHOT_NOISE_RANGE
        log_shot = rng.uniform(math.log(lo), math.log(hi))
        slope, offset, sigma = READ_NOISE_FIT
        log_read = slope * log_shot + offset + rng.normal(0.0, sigma)
        return float(math.exp(log_shot)), float(math.exp(log_read))
    return noise_from_profile(noise)


def sample_camera(rng: np.random.Generator, *, matrices: Sequence[Any] | None = None,
                  cfa_pattern: str = "RGGB", noise: Any = "brooks") -> CameraSample:
    """Draw a random camera as Brooks et al. (2019) do.

    Parameters
    ----------
    rng : numpy Generator (the only source of randomness).
    matrices : sequence of real cameras' (3, 3) ``cam_to_xyz`` matrices or
        :class:`~ispkit.frame.CaptureMetadata` (see
        :func:`camera_matrix_from_metadata`); default
        :data:`CAMERA_COLOR_MATRICES`.
    cfa_pattern : Bayer layout of the sampled camera.
    noise : ``"brooks"`` (log-uniform shot noise, read noise from the
        log-linear fit), ``"none"``, or a noise profile (a ``(shot, read)``
        pair, a DNG NoiseProfile / ``meta.noise_profile`` or an NTIRE
        ``noise_profile``; see :func:`noise_from_profile`).

    Returns
    -------
    CameraSample

    Notes
    -----
    The XYZ→camera matrices (each scaled so D65 maps to a neutral with
    maximum 1) are mixed with random convex weights; red gain ~ U(1.9, 2.4),
    blue gain ~ U(1.5, 1.9), brightness ~ N(0.8, 0.1) clipped to [0.4, 1.2].

    References
    ----------
    Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019, §3.
    """
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"sample_camera: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    mats = _default_matrices() if matrices is None else [
        np.linalg.inv(_matrix(camera_matrix_from_metadata(m) if isinstance(m, CaptureMetadata) else m,
                              f"sample_camera: matrices[{i}]"))
        for i, m in enumerate(matrices)]
    if not mats:
        raise ParameterError("sample_camera: matrices is empty; pass at least one cam_to_xyz matrix or None")
    xyz_to_cams = np.stack([_normalised_xyz_to_cam(m) for m in mats])
    weights = rng.uniform(1e-8, 1.0, size=len(mats))
    xyz_to_cam = np.tensordot(weights / weights.sum(), xyz_to_cams, axes=1)
    red = rng.uniform(*RED_GAIN_RANGE)
    blue = rng.uniform(*BLUE_GAIN_RANGE)
    mean, std, (lo, hi) = BRIGHTNESS
    brightness = float(np.clip(rng.normal(mean, std), lo, hi))
    shot, read = _sample_noise(rng, noise)
    return CameraSample.from_matrix(np.linalg.inv(xyz_to_cam), (red, 1.0, blue), brightness=brightness,
                                    cfa_pattern=cfa_pattern, shot_noise=shot, read_noise=read)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Apply the smoothstep tone curve ``3x² − 2x³`` (Brooks' global tone model).

    Notes
    -----
    Any shape, float32, input clipped to [0, 1].
    """
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    """Invert :func:`smoothstep`: ``0.5 − sin(asin(1 − 2y) / 3)``.

    Notes
    -----
    Any shape, float32, input clipped to [0, 1].

    References
    ----------
    Brooks et al., CVPR 2019, §3.4 "Tone mapping".
    """
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)).astype(np.float32)


def invert_white_balance_safe(image: np.ndarray, gains: Any, *, inflection: float = 0.9) -> np.ndarray:
    """Multiply RGB by inverse gains, easing them to 1 for bright pixels (highlight-preserving).

    Parameters
    ----------
    image : H×W×3 white-balanced linear RGB.
    gains : (3,) multipliers to apply (``brightness / wb_gains``).
    inflection : mean intensity above which the gains blend towards 1.

    Notes
    -----
    ``mask = (max(mean(rgb) − t, 0) / (1 − t))²``;
    ``gain' = max(mask + (1 − mask) · gain, gain)``: a saturated white stays
    saturated in every channel instead of turning into a tinted, unclipped
    raw value. Below the inflection this is the exact inverse of the gains.

    References
    ----------
    Brooks et al., CVPR 2019, §3.3 "White balance and digital gain".
    """
    x = np.asarray(image, dtype=np.float32)
    g = np.asarray(gains, dtype=np.float32).ravel()
    if x.ndim != 3 or x.shape[2] != 3 or g.shape != (3,):
        raise InputError(f"invert_white_balance_safe: expected H×W×3 and 3 gains, got {x.shape} and {g.shape}")
    if not 0.0 < inflection < 1.0:
        raise ParameterError(f"invert_white_balance_safe: inflection must be in (0, 1), got {inflection!r}")
    out = x * g
    gray = (x[..., 0] + x[..., 1] + x[..., 2]) * np.float32(1.0 / 3.0)
    bright = gray > np.float32(inflection)
    if bright.any():
        # max(mask + (1 − mask)·g, g) = g + mask·max(1 − g, 0): only pixels above the inflection change
        mask = np.square((gray[bright] - np.float32(inflection)) / np.float32(1.0 - inflection))
        out[bright] = x[bright] * (g + mask[:, None] * np.maximum(np.float32(1.0) - g, np.float32(0.0)))
    return out


def add_noise(x: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Add heteroscedastic Gaussian noise with variance ``shot · x + read``.

    Notes
    -----
    Any shape, float32, normalised linear RAW (white = 1); the result is
    not clipped (values may fall below 0, as in a real black-subtracted RAW).
    The Gaussian approximation of Poisson shot noise plus Gaussian read noise.

    References
    ----------
    Brooks et al., CVPR 2019, §3.1; Adobe DNG Specification 1.6, NoiseProfile.
    """
    if not (math.isfinite(shot) and math.isfinite(read)) or shot < 0 or read < 0:
        raise ParameterError(f"add_noise: shot and read must be finite and >= 0, got {shot!r}, {read!r}")
    a = np.asarray(x, dtype=np.float32)
    var = np.maximum(a, 0.0) * np.float32(shot) + np.float32(read)
    return (a + rng.standard_normal(a.shape, dtype=np.float32) * np.sqrt(var)).astype(np.float32)


_add_noise_fn = add_noise  # unprocess() has a parameter of the same name


def _undo_tone_stage(tone: Stage, linear: np.ndarray) -> np.ndarray:
    """Run ``tone.inverse()`` on linear sRGB (the tone stage sits between the colour matrix and the OETF)."""
    method = getattr(tone, "inverse", None)
    if not callable(method):
        raise NotInvertibleError(f"unprocess: tone stage {tone.type_name!r} ({type(tone).__name__}) has no "
                                 "inverse(); pass tone='none' and render without it, or use an invertible curve")
    frame = Frame(linear, Domain.LINEAR_RGB, CaptureMetadata(color_space="sRGB"))
    return np.asarray(method()(frame).data, dtype=np.float32)


def _check_srgb(srgb: Any) -> np.ndarray:
    a = np.asarray(srgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"unprocess: expected an H×W×3 sRGB image, got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2 or a.shape[0] % 2 or a.shape[1] % 2:
        raise InputError(f"unprocess: the image needs an even height and width (>= 2), got {a.shape[0]}×{a.shape[1]}; "
                         "crop a row / column first")
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"unprocess: expected float values in [0, 1], got dtype {a.dtype} "
                         "(divide 8-bit images by 255)")
    if not np.isfinite(a).all():
        raise InputError("unprocess: the image holds NaN or infinite values")
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def unprocess(srgb: np.ndarray, camera: CameraSample, *, rng: np.random.Generator | None = None,
              add_noise: bool = True, curve: str = "srgb", gamma: float = 2.2, tone: str | Stage = "none",
              highlight_safe: bool = True) -> UnprocessResult:
    """Invert a camera pipeline: display sRGB → noisy RAW mosaic of ``camera``.

    Parameters
    ----------
    srgb : H×W×3 float in [0, 1], even H and W.
    camera : from :func:`sample_camera` or :meth:`CameraSample.from_matrix`.
    rng : Generator for the noise (required when noise is added and nonzero).
    add_noise : add ``camera``'s shot + read noise.
    curve, gamma : the display encoding to undo (a key of
        :data:`~ispkit.stages.gamma.GAMMA_CURVES`; default the sRGB OETF the
        ``default`` preset applies; Brooks et al. use ``"power"``, 2.2).
    tone : ``"none"``, ``"smoothstep"`` (undo Brooks' global tone curve,
        applied to the encoded values), or a display tone stage of the
        pipeline that will render the result (on linear sRGB, between the
        colour matrix and the OETF, e.g. a :class:`~ispkit.stages.ToneCurve`):
        its ``inverse()`` is applied after the OETF is undone (a stage without
        one raises :class:`~ispkit.errors.NotInvertibleError`).
    highlight_safe : Brooks' highlight-preserving inverse white balance
        (:func:`invert_white_balance_safe`); False divides exactly.

    Returns
    -------
    UnprocessResult
        ``frame``: RAW_MOSAIC float32 (black 0, white 1) with ``cfa_pattern``,
        ``wb_gains``, ``cam_to_xyz``, ``noise_profile`` (when noise was added)
        and ``extra["baseline_exposure"] = −log2(brightness)``, so the
        ``default`` preset's exposure stage undoes the brightness.

    Notes
    -----
    Camera RGB is clipped to [0, 1] (sensor saturation) before mosaicing;
    the noisy mosaic is not clipped. Rendering ``frame`` with the
    ``default`` preset (no noise) gives back ``srgb`` up to demosaicing
    error and the clipped out-of-gamut colours.

    References
    ----------
    Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.
    """
    if not isinstance(camera, CameraSample):
        raise ParameterError(f"unprocess: camera must be a CameraSample (see sample_camera), "
                             f"got {type(camera).__name__}")
    if curve not in GAMMA_CURVES:
        raise unknown_name("gamma curve", curve, GAMMA_CURVES, "unprocess")
    if not isinstance(tone, Stage) and tone not in TONE_CURVES:
        raise unknown_name("tone curve", tone, TONE_CURVES, "unprocess")
    x = _check_srgb(srgb)
    if tone == "smoothstep":
        x = inverse_smoothstep(x)
    linear = gamma_expand(x, curve, gamma=gamma)
    if isinstance(tone, Stage):
        linear = _undo_tone_stage(tone, linear)
    cam = apply_color_matrix(linear, camera.rgb_to_cam)
    inv_gains = camera.brightness / camera.wb_gains
    if highlight_safe:
        cam = invert_white_balance_safe(cam, inv_gains)
    else:
        cam = (cam * inv_gains.astype(np.float32)).astype(np.float32)
    np.clip(cam, 0.0, 1.0, out=cam)
    clean = mosaic(cam, camera.cfa_pattern)
    noisy = clean
    noise_profile = None
    if add_noise and (camera.shot_noise > 0 or camera.read_noise > 0):
        if rng is None:
            raise ParameterError("unprocess: add_noise=True needs rng (a numpy Generator); "
                                 "pass rng=np.random.default_rng(seed) or add_noise=False")
        noisy = _add_noise_fn(clean, camera.shot_noise, camera.read_noise, rng)
        noise_profile = ((camera.shot_noise, camera.read_noise),)
    meta = CaptureMetadata(
        black_level=np.zeros(4), white_level=1.0, cfa_pattern=camera.cfa_pattern,
        wb_gains=camera.wb_gains, cam_to_xyz=camera.cam_to_xyz, noise_profile=noise_profile,
        source="unprocess",
        extra={"baseline_exposure": -math.log2(camera.brightness),
               "unprocess": {"brightness": camera.brightness, "curve": curve,
                             "tone": tone.to_config() if isinstance(tone, Stage) else tone,
                             "highlight_safe": bool(highlight_safe)}},
    )
    frame = Frame(noisy, Domain.RAW_MOSAIC, meta)
    return UnprocessResult(frame=frame, camera_rgb=cam, mosaic_clean=clean, camera=camera)

