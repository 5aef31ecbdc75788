"""Training pairs for the reverse ISP: (display sRGB, demosaiced linear camera RAW).

A pair is made the way a camera makes it: an sRGB image is unprocessed
(:func:`ispkit.stages.unprocess.unprocess`) into the linear camera RGB of a
chosen camera, scaled by a random exposure (> 1 overexposes), clipped at the
sensor's saturation, mosaiced, and rendered forward by a classical pipeline
(by default :func:`clipping_render`: the ``default`` preset without its
display tone curve, so highlights clip at white as in camera JPEGs). The
network then learns the rendered sRGB → the clipped camera RGB.

References
----------
T. Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.
M. V. Conde, R. Timofte et al., "Reversed Image Signal Processing and RAW
Reconstruction. AIM 2022 Challenge Report", ECCV Workshops 2022.
"""

from __future__ import annotations

import math
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError, ParameterError
from ...frame import CaptureMetadata, Domain, Frame
from ...pipeline import Pipeline, load_pipeline
from ...stages.demosaic import mosaic
from ...stages.unprocess import CAMERA_COLOR_MATRICES, CameraSample, unprocess

__all__ = [
    "DISPLAY_TONE_STAGES",
    "ReverseCamera",
    "clipping_render",
    "saturate_camera_rgb",
    "synthesize_pair",
    "ReversePairs",
    "load_srgb_folder",
    "D750_CAM_TO_XYZ",
]

#: Stage types of a display tone curve that rolls highlights off before white (removed by
#: :func:`clipping_render`, so clipped highlights reach 1.0 as in camera JPEGs).
DISPLAY_TONE_STAGES = ("sigmoid_tone_map", "tone_curve", "filmic_tone_map")

#: Nikon D750 camera RGB → XYZ: the inverse of Adobe's ColorMatrix2 (D65), the camera
#: of the real Bayer crops in ``../shared/data/bayer``.
D750_CAM_TO_XYZ = np.linalg.inv(np.asarray(CAMERA_COLOR_MATRICES["Nikon D750"], dtype=np.float64).reshape(3, 3)
                                / 10000.0)

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def clipping_render(preset: Any = "default"):
    """Return a preset without its display tone curve: the forward ISP of the pairs.

    Parameters
    ----------
    preset : a :class:`~ispkit.pipeline.Pipeline`, or the name of a shipped preset
        (its TOML is read as data, so this layer does not import :mod:`ispkit.presets`).

    Notes
    -----
    The remaining pipeline (black level, exposure, camera white balance,
    the preset's highlight reconstruction, demosaic, highlight clip, colour
    matrix, sRGB OETF) is exactly invertible away from clipped pixels, which
    the classical inverse relies on.
    """
    if isinstance(preset, Pipeline):
        pipe = preset
    else:
        path = resources.files("ispkit").joinpath("presets", f"{preset}.toml")
        if not path.is_file():
            raise InputError(f"clipping_render: no shipped preset {preset!r} ({path}); pass a Pipeline instead")
        pipe = load_pipeline(Path(str(path)))
    for name, stage in list(pipe):
        if getattr(stage, "type_name", "") in DISPLAY_TONE_STAGES:
            pipe = pipe.remove(name)
    return pipe


@dataclass(frozen=True)
class ReverseCamera:
    """The camera the reverse ISP is trained for, and how its captures vary.

    Attributes
    ----------
    cam_to_xyz : (3, 3) camera RGB → XYZ of the camera (default the Nikon D750).
    red_gains, blue_gains : uniform ranges of the as-shot white-balance gains.
    exposure : log-uniform range of the exposure factor applied to the RAW (> 1 clips highlights).
    cfa_pattern : Bayer layout of the mosaics.
    saturation : log-uniform range of the chroma gain of :meth:`sample_saturation`
        (``(1, 1)``: none). An sRGB source holds only colours inside the sRGB
        gamut, while a camera records saturated colours beyond it (a red
        flower, a neon sign) whose sRGB rendering clips in one channel long
        before the sensor saturates; gains above 1 put such colours into the
        training pairs (see :func:`saturate_camera_rgb`).
    """

    cam_to_xyz: Any = None
    red_gains: tuple[float, float] = (1.6, 2.4)
    blue_gains: tuple[float, float] = (1.2, 2.0)
    exposure: tuple[float, float] = (1.0, 3.0)
    cfa_pattern: str = "RGGB"
    saturation: tuple[float, float] = (1.0, 1.0)

    def matrix(self) -> np.ndarray:
        """The (3, 3) cam_to_xyz used."""
        return np.asarray(D750_CAM_TO_XYZ if self.cam_to_xyz is None else self.cam_to_xyz, dtype=np.float64)

    def sample(self, rng: np.random.Generator) -> tuple[CameraSample, float]:
        """Draw white-balance gains and an exposure factor."""
        lo, hi = self.exposure
        if not 0 < lo <= hi:
            raise ParameterError(f"ReverseCamera.exposure: expected 0 < low <= high, got {self.exposure!r}")
        gains = (rng.uniform(*self.red_gains), 1.0, rng.uniform(*self.blue_gains))
        exposure = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return CameraSample.from_matrix(self.matrix(), gains, cfa_pattern=self.cfa_pattern), exposure

    def sample_saturation(self, rng: np.random.Generator) -> float:
        """Draw a chroma gain from :attr:`saturation` (1.0 without drawing when the range is (1, 1))."""
        lo, hi = self.saturation
        if not 0 < lo <= hi:
            raise ParameterError(f"ReverseCamera.saturation: expected 0 < low <= high, got {self.saturation!r}")
        if lo == hi == 1.0:
            return 1.0
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    def mean_metadata(self) -> CaptureMetadata:
        """Metadata a user without the shot's own would guess: the mid-range gains."""
        gains = (sum(self.red_gains) / 2, 1.0, sum(self.blue_gains) / 2)
        return CaptureMetadata(black_level=np.zeros(4), white_level=1.0, cfa_pattern=self.cfa_pattern,
                               wb_gains=gains, cam_to_xyz=self.matrix())


def saturate_camera_rgb(camera_rgb: np.ndarray, wb_gains: Any, saturation: float) -> np.ndarray:
    """Scale the chroma of camera RGB about its neutral by ``saturation``, keeping values ≥ 0.

    Notes
    -----
    H×W×3 float32 linear camera RGB (before white balance) in and out. In
    white-balanced camera RGB ``w = x · wb_gains`` each pixel becomes
    ``mean(w) + saturation · (w − mean(w))``, clipped at 0, and is divided by
    the gains again. The colour matrix maps the neutral to the neutral, so in
    linear sRGB this is the same chroma gain about the same grey: gains above
    1 carry colours out of the sRGB gamut, as real scenes are.

    References
    ----------
    Brooks et al., CVPR 2019 (unprocessing; its sRGB sources never leave the sRGB gamut).
    """
    g = np.asarray(wb_gains, dtype=np.float32).reshape(1, 1, 3)
    w = np.asarray(camera_rgb, dtype=np.float32) * g
    grey = w.mean(axis=2, keepdims=True)
    out = np.maximum(grey + np.float32(saturation) * (w - grey), 0.0) / g
    return out.astype(np.float32)


def synthesize_pair(srgb: np.ndarray, camera: CameraSample, exposure: float, render,
                    quantize: bool = True, saturation: float = 1.0) -> dict[str, Any]:
    """Make one (sRGB, RAW) pair from an sRGB image.

    Parameters
    ----------
    srgb : H×W×3 float32 display sRGB in [0, 1] (even H, W).
    camera : white balance, matrix and CFA of the capture (brightness 1).
    exposure : factor applied to the linear RAW before clipping at saturation.
    render : the forward pipeline (e.g. :func:`clipping_render`).
    quantize : round the rendered sRGB to 8 bits, as a JPEG/PNG would.
    saturation : chroma gain applied to the camera RGB before the exposure
        (:func:`saturate_camera_rgb`; 1 leaves it unchanged).

    Returns
    -------
    dict with ``srgb`` (H×W×3 float32 rendered), ``raw`` (H×W×3 float32 clipped camera RGB,
    black 0, white 1), ``frame`` (the RAW_MOSAIC frame rendered).
    """
    threads = torch.get_num_threads()
    r = unprocess(srgb, camera, add_noise=False)
    cam_rgb = r.camera_rgb if saturation == 1.0 else saturate_camera_rgb(r.camera_rgb, camera.wb_gains, saturation)
    raw = np.clip(cam_rgb * np.float32(exposure), 0.0, 1.0).astype(np.float32)
    meta = r.frame.meta
    frame = Frame(mosaic(raw, camera.cfa_pattern), Domain.RAW_MOSAIC, meta)
    out = np.clip(render(frame).data, 0.0, 1.0).astype(np.float32)
    # Numba's parallel kernels reset the OpenMP thread count torch shares with them; without this,
    # torch's later convolutions ran on every core and trained 10× slower on a loaded machine
    torch.set_num_threads(threads)
    if quantize:
        out = (np.round(out * 255.0) / 255.0).astype(np.float32)
    return {"srgb": out, "raw": raw, "frame": frame}


def load_srgb_folder(folder: str | Path, names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """Read the 8-bit sRGB images of a folder (sorted; ``names`` picks some) as float32 [0, 1].

    Raises
    ------
    InputError : the folder holds no image, or an image is not H×W×3 8-bit.
    """
    import imageio.v3 as iio

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES) if folder.is_dir() else []
    if names is not None:
        files = [p for p in files if p.name in set(names) or p.stem in set(names)]
    if not files:
        raise InputError(f"reverse ISP data: no {'/'.join(_IMAGE_SUFFIXES)} image in {str(folder)!r}; "
                         "point --data at a folder of sRGB images")
    out = []
    for p in files:
        a = np.asarray(iio.imread(p))
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
            raise InputError(f"reverse ISP data: {str(p)!r} is not an 8-bit RGB image "
                             f"(shape {a.shape}, dtype {a.dtype}); convert or remove it")
        h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
        out.append((p.name, a[:h, :w, :3].astype(np.float32) / 255.0))
    return out


class ReversePairs(Dataset):
    """Random crops of precomputed (sRGB, RAW) pairs; samples are dicts ``input``/``target``.

    Parameters
    ----------
    pairs : (srgb H×W×3, raw H×W×3) arrays (stored as uint8 / float16 to save memory).
    crop : even crop side (None: whole images, which must then share one size).
    samples_per_epoch : crops drawn per epoch (default: one per pair).
    seed : with the epoch and the index, fixes every crop and flip.
    train : random crops and flips; False takes centred crops.
    """

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], *, crop: int | None = 128,
                 samples_per_epoch: int | None = None, seed: int = 0, train: bool = True) -> None:
        if not pairs:
            raise InputError("ReversePairs: no pairs given")
        if crop is not None and (crop < 8 or crop % 8):
            raise ParameterError(f"ReversePairs: crop must be a multiple of 8 (the U-Net's), got {crop!r}")
        self.srgb = [np.round(np.clip(s, 0, 1) * 255).astype(np.uint8) for s, _ in pairs]
        self.raw = [np.asarray(r, dtype=np.float16) for _, r in pairs]
        self.crop, self.seed, self.train, self.epoch = crop, int(seed), bool(train), 0
        self.count = int(samples_per_epoch or len(pairs))

    def set_epoch(self, epoch: int) -> None:
        """Make the crops those of ``epoch`` (the trainer calls this)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.count:
            raise IndexError(f"ReversePairs: index {index} out of range 0..{self.count - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        i = index % len(self.srgb) if not self.train else int(rng.integers(len(self.srgb)))
        s, r = self.srgb[i], self.raw[i]
        if self.crop is not None:
            h, w = s.shape[:2]
            c = self.crop
            if c > h or c > w:
                raise InputError(f"ReversePairs: crop {c} is larger than pair {i} ({h}×{w})")
            if self.train:
                y, x = 2 * int(rng.integers(0, (h - c) // 2 + 1)), 2 * int(rng.integers(0, (w - c) // 2 + 1))
            else:
                y, x = (h - c) // 4 * 2, (w - c) // 4 * 2
            s, r = s[y:y + c, x:x + c], r[y:y + c, x:x + c]
        if self.train and rng.random() < 0.5:
            s, r = s[:, ::-1], r[:, ::-1]
        x_t = torch.from_numpy(np.ascontiguousarray(s.transpose(2, 0, 1))).float() / 255.0
        y_t = torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1)).astype(np.float32))
        return {"input": x_t, "target": y_t}
