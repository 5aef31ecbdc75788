"""Night scenes with known truth: darken a clean capture, add lamps, add calibrated sensor noise.

No real night RAWs ship with ispkit, so the night presets are proven on
scenes built from clean ones:

1. a clean mosaic, black-subtracted and normalised to [0, 1] — from
   :func:`~ispkit.io.synthesize_capture` (noise-free), from a real Bayer crop
   (its own noise is negligible once darkened), or from a rendered night
   photograph re-mosaiced to RAW (:func:`remosaic_display_image`);
2. scaled down by ``2**-stops`` (the under-exposure of a night shot);
3. small, very bright light sources added (:data:`LAMP_COLORS`: sodium,
   white LED, neon) whose cores clip in every channel, each with a glow of
   its own colour — the cores are where a renderer must stay neutral;
4. shot and read noise drawn from a DNG/NTIRE ``noise_profile``
   (variance = scale·x + offset in the normalised units of step 1: Poisson
   counts of ``x / scale`` electrons times ``scale``, plus Gaussian noise of
   variance ``offset``), then rounded to raw counts and clipped to the white
   level.

:class:`NightScene` keeps the noise-free version of the same darkened mosaic
(``clean``, float counts, not rounded) with the *same* metadata, noise
profile included, so a pipeline makes the same noise-dependent decisions on
both (denoise strength, exposure noise floor): a metric between a render of
``frame`` and the same pipeline's render of ``clean`` isolates what the
noise did to the result. (What a denoiser does to clean detail is largely
invisible to that metric; compare with a render of ``clean`` without the
denoising stages for that.)

References
----------
Adobe, *DNG Specification* 1.6, "NoiseProfile"; A. Foi et al., "Practical
Poissonian-Gaussian noise modeling and fitting for single-image raw-data",
IEEE TIP 17(10), 2008; T. Brooks et al., "Unprocessing images for learned
raw denoising", CVPR 2019 (inverting a display render to RAW); E. Ershov et
al., "NTIRE 2022 Challenge on Night Photography Rendering", CVPRW 2022
(metadata and noise profiles of the night captures).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame, cfa_color_indices, check_cfa_pattern

__all__ = [
    "LAMP_COLORS",
    "NightScene",
    "Lamp",
    "default_lamps",
    "darken_capture",
    "remosaic_display_image",
    "synthetic_night_scene",
    "bayer_night_scene",
    "photo_night_scene",
]

#: Linear-sRGB colour of each lamp kind (max channel 1). Sodium: low-pressure
#: sodium's 589 nm line and high-pressure sodium's orange; LED: a cool white
#: LED; neon: a pink-red neon tube; cyan: an argon/mercury sign tube.
LAMP_COLORS: Mapping[str, tuple[float, float, float]] = MappingProxyType({
    "sodium": (1.0, 0.42, 0.04),
    "led": (0.92, 0.96, 1.0),
    "neon": (1.0, 0.08, 0.30),
    "cyan": (0.05, 0.75, 1.0),
})

# sRGB (D65) linear → CIE XYZ, IEC 61966-2-1.
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805],
                         [0.2126, 0.7152, 0.0722],
                         [0.0193, 0.1192, 0.9505]])


@dataclass(frozen=True)
class Lamp:
    """A light source.

    Attributes
    ----------
    y, x : centre as fractions of the frame height and width.
    radius : radius of the flat core in pixels.
    kind : a key of :data:`LAMP_COLORS`.
    peak : core level in normalised units (clips every channel for > ~25).
    glow : level of the glow at the core's edge; it falls off as
        ``(1 + (d / radius)²)^-2`` with the distance ``d`` from the edge.
    """

    y: float
    x: float
    radius: float
    kind: str = "sodium"
    peak: float = 200.0
    glow: float = 2.0


@dataclass(frozen=True, eq=False)
class NightScene:
    """A darkened, noisy night capture and its noise-free counterpart.

    Attributes
    ----------
    name : scene label, e.g. ``"synthetic-A-6ev"``.
    frame : RAW_MOSAIC H×W float32 raw counts (rounded, clipped) with noise.
    clean : the same darkened scene without noise (float counts, not rounded;
        same metadata, noise profile included), the source of the ground truth.
    stops : the under-exposure in EV.
    lamp_mask : H×W bool, lamp cores: every channel clipped in the clean
        mosaic, eroded by 2 px so demosaic borders are left out.
    neutral_boxes : ``(y0, y1, x0, x1)`` regions that are grey in the scene
        (empty when unknown).
    illuminant_rgb : (3,) camera-native RGB of the ambient light, G = 1.
    """

    name: str
    frame: Frame
    clean: Frame
    stops: float
    lamp_mask: np.ndarray
    neutral_boxes: tuple[tuple[int, int, int, int], ...]
    illuminant_rgb: np.ndarray


def _check_stops(stops: Any, where: str) -> float:
    if isinstance(stops, bool) or not isinstance(stops, (int, float)) or not 0 <= stops <= 16:
        raise ParameterError(f"{where}: stops must be a number of EV in [0, 16], got {stops!r}")
    return float(stops)


def _check_profile(noise_profile: Any, where: str) -> tuple[float, float]:
    try:
        prof = np.asarray(noise_profile, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        prof = np.zeros((0, 2))
    if prof.shape[0] < 1 or not np.all(np.isfinite(prof)) or np.any(prof < 0):
        raise ParameterError(f"{where}: noise_profile must be (scale, offset) pairs >= 0 "
                             f"(variance = scale·x + offset), got {noise_profile!r}")
    return float(prof[:, 0].mean()), float(prof[:, 1].mean())


def _xyz_to_camera(meta: CaptureMetadata, where: str) -> np.ndarray:
    if meta.cam_to_xyz is None:
        raise InputError(f"{where}: the capture has no cam_to_xyz matrix, needed to colour the lamps "
                         "in camera RGB; pass lamps=() or a capture with colour metadata")
    return np.linalg.inv(np.asarray(meta.cam_to_xyz, dtype=np.float64))


def _lamp_layer(shape: tuple[int, int], lamps: Sequence[Lamp], xyz_to_cam: np.ndarray) -> np.ndarray:
    """H×W×3 camera RGB of the lamps: a flat core of ``peak`` and a glow falling off with distance."""
    h, w = shape
    out = np.zeros((h, w, 3), dtype=np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    for lamp in lamps:
        if lamp.kind not in LAMP_COLORS:
            raise unknown_name("lamp kind", lamp.kind, LAMP_COLORS, "darken_capture")
        cam = xyz_to_cam @ (_SRGB_TO_XYZ @ np.asarray(LAMP_COLORS[lamp.kind]))
        cam = np.maximum(cam, 1e-3 * cam.max())
        d = np.sqrt((yy - lamp.y * (h - 1)) ** 2 + (xx - lamp.x * (w - 1)) ** 2)
        edge = np.maximum(d - np.float32(lamp.radius), 0.0) / np.float32(lamp.radius)
        prof = np.where(d <= lamp.radius, np.float32(lamp.peak),
                        np.float32(lamp.glow) * (1.0 + edge * edge) ** np.float32(-2.0))
        out += prof[..., None] * cam.astype(np.float32)
    return out


def default_lamps(shape: tuple[int, int]) -> tuple[Lamp, ...]:
    """Four lamps (sodium, LED, neon, cyan) along the top of a frame, sized to it."""
    r = max(3.0, 0.03 * min(shape))
    return (Lamp(0.08, 0.12, r, "sodium"), Lamp(0.10, 0.38, 0.8 * r, "led"),
            Lamp(0.07, 0.62, 0.9 * r, "neon"), Lamp(0.12, 0.88, 0.7 * r, "cyan", peak=120.0))


def _mosaic_of(rgb: np.ndarray, pattern: str) -> np.ndarray:
    cfa = cfa_color_indices(pattern)
    h, w = rgb.shape[:2]
    out = np.empty((h, w), dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, cfa[dy, dx]]
    return out


def _add_noise(x: np.ndarray, scale: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise of variance ``scale·x + offset`` (normalised units)."""
    if scale > 0:
        noisy = rng.poisson(np.maximum(x, 0.0).astype(np.float64) / scale).astype(np.float32) * np.float32(scale)
    else:
        noisy = x.astype(np.float32, copy=True)
    if offset > 0:
        noisy += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(math.sqrt(offset))
    return noisy


def _to_counts(x: np.ndarray, meta: CaptureMetadata) -> np.ndarray:
    black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
    span = np.float32(meta.white_level) - black
    out = np.empty_like(x, dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            out[dy::2, dx::2] = x[dy::2, dx::2] * span[dy, dx] + black[dy, dx]
    return out


def _core_mask(signal_rgb: np.ndarray) -> np.ndarray:
    import cv2

    core = np.all(signal_rgb >= 1.0, axis=-1).astype(np.uint8)
    return cv2.erode(core, np.ones((5, 5), np.uint8)).astype(bool)


def darken_capture(clean: np.ndarray, meta: CaptureMetadata, *, stops: float, noise_profile: Any,
                   lamps: Sequence[Lamp] = (), seed: int = 0, name: str = "night",
                   neutral_boxes: Sequence[tuple[int, int, int, int]] = (),
                   illuminant_rgb: Any = None) -> NightScene:
    """Darken a clean capture by ``stops`` EV, add lamps and Poisson-Gaussian sensor noise.

    Parameters
    ----------
    clean : H×W normalised mosaic (black subtracted, white = 1) or H×W×3
        camera RGB (mosaiced with ``meta.cfa_pattern``), noise-free.
    meta : metadata of the capture (black/white level, CFA, colour); the
        output frames carry it with ``noise_profile`` replaced.
    stops : under-exposure in EV (the clean signal is scaled by ``2**-stops``).
    noise_profile : (scale, offset) pairs, variance = scale·x + offset in
        normalised units (DNG NoiseProfile; the NTIRE JSON's ``noise_profile``).
    lamps : light sources added after darkening (they are not darkened).
    seed : noise seed.
    name, neutral_boxes, illuminant_rgb : stored in the result.

    Returns
    -------
    NightScene

    Notes
    -----
    Output frames: RAW_MOSAIC H×W float32 raw counts. Lamps need
    ``meta.cam_to_xyz`` to be coloured.

    References
    ----------
    Foi et al., IEEE TIP 17(10), 2008; Adobe DNG Specification 1.6.
    """
    where = "darken_capture"
    ev = _check_stops(stops, where)
    scale, offset = _check_profile(noise_profile, where)
    pattern = check_cfa_pattern(meta.cfa_pattern, where)
    x = np.asarray(clean, dtype=np.float32)
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3) or x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"{where}: clean must be an H×W mosaic or H×W×3 camera RGB, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{where}: clean holds NaN/inf values")
    rgb = x if x.ndim == 3 else None
    signal = (_mosaic_of(x, pattern) if rgb is not None else x) * np.float32(2.0 ** -ev)
    core = np.zeros(signal.shape, dtype=bool)
    if lamps:
        layer = _lamp_layer(signal.shape, lamps, _xyz_to_camera(meta, where))
        signal = signal + _mosaic_of(layer, pattern)
        core = _core_mask(layer)
    rng = np.random.default_rng(seed)
    noisy = _add_noise(signal, scale, offset, rng)
    white = float(meta.white_level)
    raw = np.clip(np.rint(_to_counts(noisy, meta)), 0.0, white)
    truth = np.clip(_to_counts(signal, meta), 0.0, white)
    prof = ((scale, offset),) * 3
    extra = dict(meta.extra)
    extra.update({"night_stops": ev, "seed": int(seed)})
    noisy_meta = replace(meta, noise_profile=prof, extra=extra)
    illum = np.asarray(illuminant_rgb if illuminant_rgb is not None else
                       (1.0 / np.asarray(meta.wb_gains) if meta.wb_gains is not None else np.ones(3)), float)
    return NightScene(name=name, frame=Frame(raw.astype(np.float32), Domain.RAW_MOSAIC, noisy_meta),
                      clean=Frame(truth.astype(np.float32), Domain.RAW_MOSAIC, noisy_meta), stops=ev,
                      lamp_mask=core, neutral_boxes=tuple(tuple(int(v) for v in b) for b in neutral_boxes),
                      illuminant_rgb=illum / illum[1])


# ---------------------------------------------------------------------------
# sources of clean scenes
# ---------------------------------------------------------------------------

def _normalised(frame: Frame) -> np.ndarray:
    m = frame.meta
    black = np.asarray(m.black_level, dtype=np.float32).reshape(2, 2)
    span = np.float32(m.white_level) - black
    x = np.empty_like(frame.data, dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            x[dy::2, dx::2] = (frame.data[dy::2, dx::2] - black[dy, dx]) / span[dy, dx]
    return x


def synthetic_night_scene(*, stops: float = 6.0, noise_profile: Any = ((1.0826e-4, 3.176e-7),),
                          illuminant: str | float = "A", size: tuple[int, int] = (256, 384),
                          cfa_pattern: str = "RGGB", lamps: Sequence[Lamp] | None = None,
                          seed: int = 0) -> NightScene:
    """A ColorChecker scene from :func:`~ispkit.io.synthesize_capture`, darkened, with lamps and noise.

    Notes
    -----
    The clean mosaic is the noise-free synthetic capture (white patch at 0.7
    of the range before darkening). The default noise profile is the
    NTIRE 2023 Canon EOS 7D one. ``neutral_boxes`` are the six grey patches.
    """
    from .synthetic import synthesize_capture

    cap = synthesize_capture(illuminant=illuminant, size=size, cfa_pattern=cfa_pattern, noise=False, seed=seed)
    lamps = default_lamps(size) if lamps is None else lamps
    shift = _shift_boxes_below(cap.patch_boxes[18:24], lamps, size)
    return darken_capture(_normalised(cap.frame), cap.frame.meta, stops=stops, noise_profile=noise_profile,
                          lamps=lamps, seed=seed, name=f"synthetic-{cap.illuminant}-{stops:g}ev",
                          neutral_boxes=shift, illuminant_rgb=cap.illuminant_rgb)


def _shift_boxes_below(boxes: Sequence[tuple[int, int, int, int]], lamps: Sequence[Lamp],
                       size: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
    """Grey-patch boxes that no lamp glow reaches (the lamps sit at the top; the greys are row 4)."""
    h, w = size
    out = []
    for y0, y1, x0, x1 in boxes:
        near = any(math.hypot((y0 + y1) / 2 - lp.y * (h - 1), (x0 + x1) / 2 - lp.x * (w - 1)) < 6 * lp.radius
                   for lp in lamps)
        if not near:
            out.append((y0, y1, x0, x1))
    return tuple(out)


def bayer_night_scene(path: str | os.PathLike, *, stops: float = 6.0,
                      noise_profile: Any = ((1.0826e-4, 3.176e-7),), lamps: Sequence[Lamp] | None = None,
                      seed: int = 0) -> NightScene:
    """A real Bayer crop (``load_bayer_raw``) darkened, with lamps and noise.

    Notes
    -----
    The crop's own noise, scaled by ``2**-stops``, is far below the added
    noise and counts as part of the clean scene.
    """
    from .raw import load_bayer_raw

    frame = load_bayer_raw(path)
    h, w = frame.data.shape
    frame = Frame(frame.data[: h - h % 2, : w - w % 2], Domain.RAW_MOSAIC, frame.meta)
    lamps = default_lamps(frame.data.shape) if lamps is None else lamps
    return darken_capture(np.clip(_normalised(frame), 0.0, 1.0), frame.meta, stops=stops,
                          noise_profile=noise_profile, lamps=lamps, seed=seed,
                          name=f"{Path(path).stem}-{stops:g}ev")


def _planckian_xy(cct: float) -> tuple[float, float]:
    """CIE 1931 xy of a blackbody, Kim et al.'s cubic fits (1667–25000 K)."""
    t = float(cct)
    if t <= 4000:
        x = -0.2661239e9 / t ** 3 - 0.2343589e6 / t ** 2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t ** 3 + 2.1070379e6 / t ** 2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x ** 3 - 1.34811020 * x ** 2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x ** 3 - 1.37418593 * x ** 2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x ** 3 - 5.87338670 * x ** 2 + 3.75112997 * x - 0.37001483
    return x, y


def remosaic_display_image(srgb: np.ndarray, meta: CaptureMetadata, *, cct: float = 3800.0,
                           white: float = 0.9) -> tuple[np.ndarray, CaptureMetadata]:
    """Invert a display sRGB image to a clean, normalised camera mosaic.

    Parameters
    ----------
    srgb : H×W×3 display sRGB in [0, 1] (H, W even).
    meta : capture metadata with ``cam_to_xyz`` and ``cfa_pattern`` (e.g.
        from an NTIRE JSON via :func:`~ispkit.io.ntire.parse_ntire_metadata`).
    cct : colour temperature of the light the photo is taken to be under
        (a Planckian; its camera response becomes the as-shot neutral) when
        ``meta.wb_gains`` is absent.
    white : normalised level of display white (1.0 encoded).

    Returns
    -------
    (H×W mosaic in [0, white·max(1/gains)], metadata with ``wb_gains``).

    Notes
    -----
    sRGB EOTF → linear sRGB → XYZ (D65) → white-balanced camera RGB through
    ``inv(cam_to_xyz)`` normalised so camera white = (1, 1, 1) → multiplied
    by the illuminant's camera response (= divided by the WB gains) →
    mosaic. Pixels saturated in the JPEG (all channels >= 0.98) are treated
    as light sources and pushed to 1024× white so they stay clipped after
    darkening by up to 10 EV.

    References
    ----------
    T. Brooks et al., "Unprocessing images for learned raw denoising", CVPR 2019.
    """
    x = np.clip(np.asarray(srgb, dtype=np.float64), 0.0, 1.0)
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[0] % 2 or x.shape[1] % 2:
        raise InputError(f"remosaic_display_image: expected an even-sized H×W×3 image, got shape {x.shape}")
    xyz_to_cam = _xyz_to_camera(meta, "remosaic_display_image")
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    to_cam = xyz_to_cam @ _SRGB_TO_XYZ
    to_cam = to_cam / (to_cam @ np.ones(3))[:, None]          # D65 white → camera (1, 1, 1)
    if meta.wb_gains is not None:
        illum = 1.0 / np.asarray(meta.wb_gains, dtype=np.float64)
    else:
        xw, yw = _planckian_xy(cct)
        illum = xyz_to_cam @ np.array([xw / yw, 1.0, (1.0 - xw - yw) / yw])
    illum = illum / illum[1]
    gains = 1.0 / illum
    cam = np.einsum("ij,hwj->hwi", to_cam * illum[:, None], lin)
    lamps = np.all(x >= 0.98, axis=-1)
    cam[lamps] *= 1024.0
    scale = white / float(illum.max())
    mosaic = _mosaic_of((cam * scale).astype(np.float32), check_cfa_pattern(meta.cfa_pattern, "remosaic"))
    return np.maximum(mosaic, 0.0), replace(meta, wb_gains=gains / gains[1])


def photo_night_scene(jpeg_path: str | os.PathLike, json_path: str | os.PathLike | None = None, *,
                      stops: float = 4.0, size: tuple[int, int] | None = None, seed: int = 0) -> NightScene:
    """A real night photograph (NTIRE reference JPEG) re-mosaiced to RAW with its JSON, darkened, noised.

    Parameters
    ----------
    jpeg_path : the rendered JPEG; json_path : its NTIRE metadata (default:
        the ``.json`` beside it). The JSON's colour matrices, CFA, black and
        white level and ``noise_profile`` are used; its as-shot neutral when
        present, else a 3800 K Planckian.
    stops : darkening applied after re-mosaicing.
    size : optional (H, W) to resize the photo to first (INTER_AREA).

    Notes
    -----
    The photo's own clipped lamps stay clipped (see :func:`remosaic_display_image`);
    no lamps are added.
    """
    import cv2

    from .ntire import parse_ntire_metadata

    jp = Path(jpeg_path)
    js = Path(json_path) if json_path is not None else jp.with_suffix(".json")
    img = cv2.imread(str(jp), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"photo_night_scene: cannot decode {str(jp)!r} as an image")
    fields = parse_ntire_metadata(json.loads(js.read_text(encoding="utf-8")), where=str(js))
    profile = fields.pop("noise_profile", None) or ((1.0826e-4, 3.176e-7),)
    meta = CaptureMetadata(source=str(jp), **fields)
    rgb = img[..., ::-1].astype(np.float32) / 255.0
    if size is not None:
        rgb = cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    rgb = rgb[: rgb.shape[0] - rgb.shape[0] % 2, : rgb.shape[1] - rgb.shape[1] % 2]
    mosaic, meta = remosaic_display_image(rgb, meta)
    scene = darken_capture(mosaic, meta, stops=stops, noise_profile=profile, seed=seed,
                           name=f"{jp.stem}-{stops:g}ev")
    return replace(scene, lamp_mask=_core_mask(rgb >= 0.98))
