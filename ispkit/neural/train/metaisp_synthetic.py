"""Synthetic multi-device data: clearly different classical "phones" rendering the same RAW.

No real multi-device captures ship with ispkit, so the MetaISP benchmark and
tests build them: sRGB images are unprocessed into RAWs (Brooks et al.
2019) under a wide range of illuminants, and each :class:`DeviceLook` — an
ispkit pipeline with its own white-balance bias, colour matrix saturation,
tone curve and local contrast — renders every RAW. :func:`write_scene`
stores a scene in the layout of :mod:`~ispkit.neural.train.metaisp_data`.

References
----------
T. Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.
M. Souza and W. Heidrich, "MetaISP — Exploiting Global Scene Structure for
Accurate Multi-Device Color Rendition", VMV 2023, arXiv:2401.03220.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from ...errors import InputError
from ...frame import CaptureMetadata, Frame
from ...io.dng import write_dng
from ...pipeline import Pipeline
from ...stages import (
    CameraSample,
    ColorMatrix,
    Demosaic,
    Gamma,
    LocalContrast,
    Sharpen,
    ToneCurve,
    WhiteBalance,
    camera_to_working_matrix,
    sample_camera,
    unprocess,
)

__all__ = ["DeviceLook", "SYNTHETIC_DEVICES", "ILLUMINANTS", "device_pipeline", "render_device", "synthesize_raw",
           "planckian_gains", "camera_matrix", "write_scene", "write_devices", "saturation_matrix"]

#: Rec. 709 luma weights (linear sRGB).
_LUMA = np.array([0.2126, 0.7152, 0.0722])
#: linear sRGB → XYZ (D65), IEC 61966-2-1.
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


@dataclass(frozen=True)
class DeviceLook:
    """One synthetic device: how its classical ISP departs from a neutral render.

    Attributes
    ----------
    name : device name (a file stem in the dataset).
    wb_bias : (R, G, B) factors on the as-shot white-balance gains (> 1 on R: warmer).
    saturation : chroma scale about luma, in linear sRGB (1: the camera matrix as is).
    tone : display-space tone curve points (x, y), applied after the sRGB OETF.
    clahe : CLAHE clip limit of a final local-contrast step (None: none).
    sharpen : unsharp-mask amount (0: none).
    """

    name: str
    wb_bias: tuple[float, float, float]
    saturation: float
    tone: tuple[tuple[float, float], ...]
    clahe: float | None = None
    sharpen: float = 0.0


#: Three looks as far apart as phones are: warm and vivid with local contrast, neutral and flat, cool and crisp.
SYNTHETIC_DEVICES: tuple[DeviceLook, ...] = (
    DeviceLook("vivid_warm", (1.12, 1.0, 0.86), 1.5, ((0.0, 0.0), (0.25, 0.19), (0.5, 0.56), (0.75, 0.86), (1.0, 1.0)),
               clahe=2.0),
    DeviceLook("flat_neutral", (1.0, 1.0, 1.0), 0.7, ((0.0, 0.05), (0.5, 0.56), (1.0, 0.93))),
    DeviceLook("cool_crisp", (0.88, 1.0, 1.14), 1.15, ((0.0, 0.0), (0.3, 0.24), (0.7, 0.8), (1.0, 1.0)), sharpen=0.8),
)


def saturation_matrix(s: float) -> np.ndarray:
    """3×3 linear-RGB matrix scaling chroma by ``s`` about Rec. 709 luma (luma unchanged)."""
    return (1.0 - s) * np.tile(_LUMA, (3, 1)) + s * np.eye(3)


def device_pipeline(look: DeviceLook, meta: CaptureMetadata) -> Pipeline:
    """The ispkit pipeline of ``look`` for a capture's metadata (black-level-normalised mosaic → display RGB).

    Notes
    -----
    WhiteBalance(manual: as-shot gains × ``wb_bias``) → Demosaic(malvar2004) →
    ColorMatrix(saturation · camera→sRGB) → Gamma(sRGB, clipped) →
    ToneCurve(display) → LocalContrast (CLAHE) or Sharpen when the look has them.
    """
    if meta.wb_gains is None:
        raise InputError(f"device_pipeline: {meta.source or 'the frame'} has no wb_gains; synthetic devices "
                         "render from the as-shot white balance")
    gains = np.asarray(meta.wb_gains, dtype=np.float64) * np.asarray(look.wb_bias)
    ccm = saturation_matrix(look.saturation) @ camera_to_working_matrix(meta, "sRGB")
    stages = [WhiteBalance(method="manual", gains=tuple(float(g) for g in gains)),
              Demosaic(method="malvar2004"),
              ColorMatrix(ccm=tuple(tuple(float(v) for v in row) for row in ccm)),
              Gamma(curve="srgb", clip=True),
              ToneCurve(points=look.tone, space="display")]
    if look.clahe is not None:
        stages.append(LocalContrast(method="clahe", clip_limit=look.clahe))
    if look.sharpen:
        stages.append(Sharpen(amount=look.sharpen))
    return Pipeline(stages)


def render_device(frame: Frame, look: DeviceLook) -> np.ndarray:
    """Render a black-level-normalised RAW_MOSAIC frame in ``look`` → H×W×3 float32 in [0, 1]."""
    out = device_pipeline(look, frame.meta).run(frame).output.data
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


#: How :func:`synthesize_raw` draws the scene illuminant.
ILLUMINANTS = ("planckian", "independent")


def planckian_gains(cam_to_xyz: np.ndarray, cct: float, duv: float = 0.0) -> tuple[float, float, float]:
    """White-balance gains (R, 1, B) of a camera under a blackbody-like illuminant.

    Parameters
    ----------
    cam_to_xyz : (3, 3) camera RGB → XYZ.
    cct : correlated colour temperature in kelvin.
    duv : distance from the Planckian locus in CIE 1960 uv (positive: greener).

    Notes
    -----
    The illuminant's chromaticity comes from colour-science's Ohno (2013)
    CCT/Duv → uv conversion; the camera's response to it is
    ``cam_to_xyz⁻¹ · XYZ`` and the gains are green over each channel.
    """
    import colour  # noqa: PLC0415  (colour-science is slow to import; only synthetic data needs it)

    uv = colour.temperature.CCT_to_uv(np.array([float(cct), float(duv)]), method="Ohno 2013")
    xyz = colour.xy_to_XYZ(colour.UCS_uv_to_xy(uv))
    resp = np.linalg.solve(np.asarray(cam_to_xyz, dtype=np.float64), xyz)
    if not np.all(resp > 0):
        raise InputError(f"planckian_gains: the camera responds negatively to a {cct:.0f} K illuminant ({resp}); "
                         "check cam_to_xyz")
    return float(resp[1] / resp[0]), 1.0, float(resp[1] / resp[2])


def synthesize_raw(srgb: np.ndarray, rng: np.random.Generator, *, illuminant: str = "planckian",
                   cct_range: tuple[float, float] = (2500.0, 8000.0), duv_sigma: float = 0.003,
                   gain_range: tuple[float, float] = (1.1, 3.2), noise: bool = False) -> Frame:
    """Unprocess a display-sRGB image into a RAW under a random illuminant.

    Parameters
    ----------
    srgb : H×W×3 float in [0, 1] (even H, W).
    rng : the only source of randomness.
    illuminant : ``"planckian"``: a colour temperature drawn uniformly in mired over
        ``cct_range`` with a Gaussian Duv of ``duv_sigma`` (daylight, tungsten and
        fluorescent-like casts, as real scenes have them; :func:`planckian_gains`);
        ``"independent"``: red and blue gains drawn independently, log-uniformly from
        ``gain_range`` (casts off the locus too).
    noise : add Brooks' shot and read noise.

    Returns
    -------
    Frame
        RAW_MOSAIC float32 (black 0, white 1) with ``wb_gains`` and ``cam_to_xyz``.
    """
    if illuminant not in ILLUMINANTS:
        raise InputError(f"synthesize_raw: illuminant must be one of {', '.join(ILLUMINANTS)}, got {illuminant!r}")
    cam = sample_camera(rng, noise="brooks" if noise else "none")
    if illuminant == "planckian":
        mired = rng.uniform(1e6 / max(cct_range), 1e6 / min(cct_range))
        gains = planckian_gains(cam.cam_to_xyz, 1e6 / mired, float(rng.normal(0.0, duv_sigma)))
    else:
        lo, hi = np.log(gain_range[0]), np.log(gain_range[1])
        gains = (float(np.exp(rng.uniform(lo, hi))), 1.0, float(np.exp(rng.uniform(lo, hi))))
    cam = CameraSample.from_matrix(cam.cam_to_xyz, gains, brightness=cam.brightness, cfa_pattern=cam.cfa_pattern,
                                   shot_noise=cam.shot_noise, read_noise=cam.read_noise)
    return unprocess(np.asarray(srgb, dtype=np.float32), cam, rng=rng, add_noise=noise).frame


def camera_matrix(meta: CaptureMetadata) -> np.ndarray:
    """``cam_to_xyz`` of a capture: its own, else from a DNG ColorMatrix, else from a camera→sRGB calibration.

    Raises
    ------
    InputError : the metadata has no colour calibration at all.
    """
    if meta.cam_to_xyz is not None:
        return np.asarray(meta.cam_to_xyz, dtype=np.float64)
    for cm in (meta.color_matrix2, meta.color_matrix1):
        if cm is not None:
            return np.linalg.inv(np.asarray(cm, dtype=np.float64))
    if getattr(meta, "cam_to_srgb", None) is not None:
        return _SRGB_TO_XYZ @ np.asarray(meta.cam_to_srgb, dtype=np.float64)
    raise InputError(f"{meta.source or 'the frame'}: no colour calibration (cam_to_xyz, ColorMatrix or cam_to_srgb)")


def write_scene(folder: str | Path, frame: Frame, renders: Mapping[str, np.ndarray],
                cam_to_xyz: np.ndarray | None = None) -> Path:
    """Write a scene in the MetaISP layout: ``folder/raw.dng`` and ``folder/<device>.png`` (16-bit).

    Parameters
    ----------
    folder : the scene folder (created).
    frame : black-level-normalised RAW_MOSAIC (values in [0, 1]; above 1 is clipped) with ``wb_gains``.
    renders : device name → H×W×3 display RGB in [0, 1].
    cam_to_xyz : overrides :func:`camera_matrix` of the frame's metadata.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    meta = frame.meta
    c2x = camera_matrix(meta) if cam_to_xyz is None else np.asarray(cam_to_xyz, dtype=np.float64)
    codes = np.round(np.clip(np.asarray(frame.data, dtype=np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)
    gains = np.asarray(meta.wb_gains, dtype=np.float64)
    write_dng(out / "raw.dng", codes, meta.cfa_pattern, black_level=0, white_level=65535,
              color_matrix1=np.linalg.inv(c2x), calibration_illuminant1=21, as_shot_neutral=1.0 / gains)
    for name, rgb in renders.items():
        img = np.round(np.clip(rgb, 0.0, 1.0) * 65535.0).astype(np.uint16)
        if not cv2.imwrite(str(out / f"{name}.png"), np.ascontiguousarray(img[..., ::-1])):
            raise InputError(f"write_scene: OpenCV could not write {out / f'{name}.png'}")
    return out


def write_devices(root: str | Path, looks: Sequence[DeviceLook]) -> Path:
    """Write ``root/devices.txt`` naming ``looks`` in embedding order."""
    path = Path(root) / "devices.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{look.name}\n" for look in looks), encoding="utf-8")
    return path
