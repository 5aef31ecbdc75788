"""Multi-device training data for MetaISP: one source RAW per scene, one RGB rendition per target device.

Folder layout (``ispkit train metaisp --data DIR``)::

    DIR/
      devices.txt            optional: target device names, one per line; line i is embedding row i
                             (default: pixel_6_pro, galaxy_s22, iphone_xr — the release's ids 0, 1, 2)
      train/  val/           optional split; without them every scene folder of DIR is a scene and
                             the recipe holds out the last ones for validation
      <scene>/raw.dng        the source RAW: any capture ispkit.io.read_capture reads, named ``raw.*``
                             (raw.dng, raw.nef …, or a mosaic raw.png / raw.raw with its raw.json sidecar)
      <scene>/<device>.png   one sRGB rendition per device of devices.txt (.png, .tif, .tiff, .jpg;
                             8- or 16-bit), the size of the RAW (or the same aspect ratio: resized)

Every scene must have every device's image. The official MetaISP release
stores the same information as pre-cut 448² patches with CSV metadata
(``datasets/real/{iphone,pixel,samsung}/rgb/{train,val,test}``, the RAW of
the iPhone only); this layout keeps whole captures and cuts crops on the fly.

Targets shot by another camera never line up with the RAW exactly. Each
target is warped onto the RAW's pixel grid by dense optical flow (OpenCV's
DIS, standing in for the paper's PWC-Net) computed between a plain classical
render of the RAW and the target; pixels the flow leaves out of frame or
gets inconsistent forward/backward are masked, and the losses ignore them.

References
----------
M. Souza and W. Heidrich, "MetaISP — Exploiting Global Scene Structure for
Accurate Multi-Device Color Rendition", VMV 2023, arXiv:2401.03220.
T. Kroeger, R. Timofte, D. Dai, L. Van Gool, "Fast Optical Flow using Dense
Inverse Search", ECCV 2016.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError, ISPError, ParameterError
from ...frame import Frame
from ...io import read_capture
from ...pipeline import Pipeline
from ...stages import BlackLevel, Demosaic, Gamma, WhiteBalance
from .._io import pack_bayer
from ..device_rendition import METAISP_ORDER, color_scaler_from_gains, estimate_color_scaler, global_view
from ..models.metaisp import DEFAULT_EXPOSURE, DEFAULT_ISO, DEVICE_NAMES, make_attention_coords, make_coord

__all__ = [
    "SceneFiles", "PreparedScene", "MetaISPDataset", "TARGET_SUFFIXES", "read_devices", "scan_scenes",
    "read_target", "align_to_reference", "prepare_scene", "reference_render",
]

#: File endings accepted for device renditions.
TARGET_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
#: Forward–backward flow disagreement (pixels) above which a warped pixel is masked:
#: ``|f + b| > FLOW_TOLERANCE + FLOW_RELATIVE · (|f| + |b|)`` (Sundaram et al. 2010 style check).
FLOW_TOLERANCE = 1.0
FLOW_RELATIVE = 0.05


@dataclass(frozen=True)
class SceneFiles:
    """The files of one scene: its source RAW and each device's rendition."""

    name: str
    raw: Path
    targets: dict[str, Path]


def read_devices(root: str | Path) -> tuple[str, ...]:
    """Return the device names of a dataset: ``root/devices.txt`` (one per line) or the release's three."""
    path = Path(root) / "devices.txt"
    if not path.is_file():
        return DEVICE_NAMES
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not names or len(set(names)) != len(names):
        raise InputError(f"{path}: expected distinct device names, one per line, got {list(names)}")
    return names


def _raw_file(folder: Path) -> Path:
    found = sorted(p for p in folder.iterdir() if p.stem == "raw" and p.suffix.lower() != ".json")
    if not found:
        sidecar = folder / "raw.json"
        if sidecar.is_file():
            return sidecar
        raise InputError(f"scene {folder}: no source RAW named raw.* (e.g. raw.dng, or raw.png + raw.json); "
                         "see ispkit.neural.train.metaisp_data for the layout")
    return found[0]


def _target_file(folder: Path, device: str) -> Path:
    for suffix in TARGET_SUFFIXES:
        for cand in (folder / f"{device}{suffix}", folder / f"{device}{suffix.upper()}"):
            if cand.is_file():
                return cand
    raise InputError(f"scene {folder}: no image for device {device!r} (expected {device}.png, .tif or .jpg); "
                     "every scene needs one image per device of devices.txt")


def scan_scenes(folder: str | Path, devices: Sequence[str]) -> list[SceneFiles]:
    """Return the scenes of ``folder`` (its sub-folders, sorted by name), checking every file exists.

    Raises
    ------
    InputError : the folder is missing or empty, or a scene lacks its RAW or a device image
        (the message names the first such scene and file).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"MetaISP data: {root} is not a folder; pass --data DIR with one sub-folder per scene")
    scenes = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("train", "val")):
        targets = {d: _target_file(sub, d) for d in devices}
        scenes.append(SceneFiles(sub.name, _raw_file(sub), targets))
    if not scenes:
        raise InputError(f"MetaISP data: {root} has no scene folders (expected <scene>/raw.dng and "
                         f"<scene>/<device>.png for devices {', '.join(devices)})")
    return scenes


def read_target(path: Path) -> np.ndarray:
    """Read an 8- or 16-bit RGB image as H×W×3 float32 in [0, 1]."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: OpenCV cannot read this image; give an 8- or 16-bit RGB PNG, TIFF or JPEG")
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError(f"{path}: expected an RGB image, got shape {img.shape}")
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: expected 8- or 16-bit samples, got {img.dtype}")
    scale = 255.0 if img.dtype == np.uint8 else 65535.0
    return np.ascontiguousarray(img[..., 2::-1], dtype=np.float32) / np.float32(scale)


def reference_render(frame: Frame) -> np.ndarray:
    """Render a black-level-normalised mosaic plainly (as-shot WB, bilinear, sRGB OETF) for flow matching.

    Notes
    -----
    RAW_MOSAIC (after BlackLevel) → H×W×3 float32 in [0, 1]. No colour matrix: the
    flow only needs structure, and files without a matrix still align.
    """
    wb = WhiteBalance(method="camera") if frame.meta.wb_gains is not None else WhiteBalance(method="gray_world")
    pipe = Pipeline([wb, Demosaic(method="bilinear"), Gamma(curve="srgb", clip=True)])
    return np.asarray(pipe.run(frame).output.data, dtype=np.float32)


def _flow_gray(rgb: np.ndarray) -> np.ndarray:
    """Locally normalised 8-bit luma ((Y − local mean) / local deviation, σ = 4 px).

    Renditions with different tone curves, saturation and local contrast differ
    mostly by a local affine change of luma, which this removes before matching.
    """
    y = np.clip(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32), 0.0, 1.0)
    mu = cv2.GaussianBlur(y, (0, 0), 4.0)
    sd = np.sqrt(np.maximum(cv2.GaussianBlur(y * y, (0, 0), 4.0) - mu * mu, 0.0)) + 0.02
    return np.clip(np.round((y - mu) / sd * 40.0 + 128.0), 0, 255).astype(np.uint8)


def align_to_reference(reference: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``target`` onto ``reference``'s pixel grid by DIS optical flow; return (warped, valid mask).

    Parameters
    ----------
    reference, target : H×W×3 float32 display RGB of the same size (tone and colour may differ).

    Returns
    -------
    warped : H×W×3 float32, ``target`` sampled at ``p + flow(p)`` (0 outside the frame).
    mask : H×W float32, 1 where the sample fell inside the target and the forward and
        backward flows agree (``|f + b| ≤`` :data:`FLOW_TOLERANCE` ``+`` :data:`FLOW_RELATIVE` ``·(|f| + |b|)``).

    Notes
    -----
    Both images are matched as locally normalised luma, so renditions with
    different tone curves, colours and local contrast still align.

    References
    ----------
    T. Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016.
    N. Sundaram, T. Brox, K. Keutzer, "Dense Point Trajectories by GPU-Accelerated
    Large Displacement Optical Flow", ECCV 2010 (the forward–backward check).
    """
    if reference.shape != target.shape or reference.ndim != 3:
        raise InputError(f"align_to_reference: reference and target must be H×W×3 of one size, got "
                         f"{reference.shape} and {target.shape}")
    h, w = reference.shape[:2]
    g_ref, g_tgt = _flow_gray(reference), _flow_gray(target)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fwd = dis.calc(g_ref, g_tgt, None)
    bwd = dis.calc(g_tgt, g_ref, None)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + fwd[..., 0], gy + fwd[..., 1]
    warped = cv2.remap(target, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    back = cv2.remap(bwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gap = np.linalg.norm(fwd + back, axis=-1)
    bound = FLOW_TOLERANCE + FLOW_RELATIVE * (np.linalg.norm(fwd, axis=-1) + np.linalg.norm(back, axis=-1))
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    mask = (inside & (gap <= bound)).astype(np.float32)
    return np.ascontiguousarray(warped, dtype=np.float32), mask


@dataclass
class PreparedScene:
    """One scene as the network eats it (numpy, CHW where a tensor follows).

    Attributes
    ----------
    name : scene folder name.
    packed : 4×h×w float32 packed RAW (B, Gr, R, Gb), black level removed, ≥ 0.
    view : 3×V×V float32 global view (bilinear B, G, R of the whole frame, resized).
    color_scaler : (4,) float32 (B, G, R, G) from the as-shot neutral, or estimated.
    wb_known : the colour scaler came from the file's white balance.
    exp, iso : exposure time × 100 and ISO / 100 (the network's units).
    targets : D×3×2h×2w float16 device renditions warped onto the RAW grid.
    masks : D×2h×2w bool, valid target pixels.
    """

    name: str
    packed: np.ndarray
    view: np.ndarray
    color_scaler: np.ndarray
    wb_known: bool
    exp: float
    iso: float
    targets: np.ndarray
    masks: np.ndarray


def _fit_target(img: np.ndarray, h: int, w: int, path: Path) -> np.ndarray:
    th, tw = img.shape[:2]
    if 0 <= th - h <= 1 and 0 <= tw - w <= 1:  # an odd-sized image of an even-cut RAW
        return img[:h, :w]
    if abs(th / tw - h / w) > 0.01 * (h / w):
        raise InputError(f"{path}: image is {tw}×{th} but the RAW is {w}×{h} (another aspect ratio); "
                         "crop the device image to the RAW's field of view")
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if th > h else cv2.INTER_LINEAR)


def prepare_scene(files: SceneFiles, devices: Sequence[str], *, view_size: int = 448,
                  align: bool = True) -> PreparedScene:
    """Read one scene, build the network inputs and warp every device image onto the RAW.

    Parameters
    ----------
    files : from :func:`scan_scenes`.
    devices : device names in embedding order.
    view_size : side of the square global view (the release: 448 for 2688² crops).
    align : warp targets by optical flow (False: take them as aligned, mask all ones).
    """
    try:
        frame = BlackLevel()(read_capture(files.raw))
    except ISPError as exc:
        raise InputError(f"scene {files.name!r}: cannot read its RAW {files.raw}: {exc}") from exc
    mosaic = np.maximum(np.asarray(frame.data, dtype=np.float32), 0.0)
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    if h < 32 or w < 32:
        raise InputError(f"scene {files.name!r}: the RAW {files.raw} is {w}×{h}; MetaISP needs at least 32×32")
    mosaic = mosaic[:h, :w]
    frame = frame.replace(data=mosaic)
    meta = frame.meta
    packed = pack_bayer(mosaic, meta.cfa_pattern, METAISP_ORDER)
    view = cv2.resize(global_view(mosaic, meta.cfa_pattern), (view_size, view_size), interpolation=cv2.INTER_AREA)
    wb_known = meta.wb_gains is not None
    scaler = color_scaler_from_gains(meta.wb_gains) if wb_known else estimate_color_scaler(packed)
    reference = reference_render(frame) if align else None
    targets = np.empty((len(devices), 3, h, w), dtype=np.float16)
    masks = np.ones((len(devices), h, w), dtype=bool)
    for i, d in enumerate(devices):
        img = _fit_target(read_target(files.targets[d]), h, w, files.targets[d])
        if align:
            img, valid = align_to_reference(reference, img)
            masks[i] = valid > 0.5
        targets[i] = img.transpose(2, 0, 1)
    exposure = float(meta.exposure_time) if meta.exposure_time else DEFAULT_EXPOSURE
    iso = float(meta.iso) if meta.iso else DEFAULT_ISO
    return PreparedScene(files.name, np.ascontiguousarray(packed.transpose(2, 0, 1)),
                         np.ascontiguousarray(view.transpose(2, 0, 1), dtype=np.float32), scaler.astype(np.float32),
                         wb_known, exposure * 100.0, iso / 100.0, targets, masks)


class MetaISPDataset(Dataset):
    """Random aligned crops (training) or fixed crops with every device (validation) of prepared scenes.

    Parameters
    ----------
    scenes : :class:`PreparedScene` objects, or :class:`SceneFiles` prepared lazily (kept in an LRU
        cache of ``cache`` scenes).
    devices : device names in embedding order.
    crop : crop side in mosaic pixels (a multiple of 16); validation takes the centre crop, or the
        whole frame (cut to a multiple of 16) with ``crop=None``.
    train : random crops, one device per sample (``samples_per_scene`` per scene and epoch);
        otherwise one sample per scene carrying all devices.
    seed : crops depend only on (seed, epoch, index), so resumed runs see the same samples.
    view_size, align : see :func:`prepare_scene`.
    illuminant_jitter : training only: recolour each sample's illuminant by red and blue factors
        drawn log-uniformly from [e^-j, e^j] (0: off). The RAW crop and the global view are
        multiplied by them and the colour scaler divided, so the white-balanced RAW — and hence
        the target — is unchanged, while the cast the network (or its illuminant head) must read
        varies from sample to sample: one scene teaches many illuminants, the colour-constancy
        augmentation of FC4 (Hu et al., CVPR 2017).

    Notes
    -----
    A sample is a dict of tensors: ``raw`` 4×c/2×c/2, ``raw_full`` 3×V×V, ``color_scaler`` 4×1×1,
    ``wb_known`` (1,), ``coord`` and ``coords`` 2×c/2×c/2 (the attention grid is the whole
    frame's, cut at the crop, as the release does), ``exp`` and ``iso`` (1,), ``mobile_id``
    (k,) long, ``target`` 3k×c×c and ``mask`` k×c×c, with k = 1 in training and k = number of
    devices in validation.
    """

    def __init__(self, scenes: Sequence[PreparedScene | SceneFiles], devices: Sequence[str], *,
                 crop: int | None = 128, train: bool = True, samples_per_scene: int = 8, seed: int = 0,
                 view_size: int = 448, align: bool = True, cache: int = 32,
                 illuminant_jitter: float = 0.0) -> None:
        if not scenes:
            raise ParameterError("MetaISPDataset: no scenes")
        if crop is not None and (crop < 16 or crop % 16):
            raise ParameterError(f"MetaISPDataset: crop must be a multiple of 16 (mosaic pixels), got {crop}")
        if train and crop is None:
            raise ParameterError("MetaISPDataset: training needs a crop size")
        self.scenes, self.devices = list(scenes), tuple(devices)
        self.crop, self.train, self.seed = crop, train, int(seed)
        self.samples_per_scene = int(samples_per_scene) if train else 1
        self.view_size, self.align, self.cache = view_size, align, max(1, int(cache))
        if not (math.isfinite(illuminant_jitter) and 0.0 <= illuminant_jitter <= 2.0):
            raise ParameterError(f"MetaISPDataset: illuminant_jitter must be in [0, 2] (natural log of the largest "
                                 f"factor), got {illuminant_jitter}")
        self.illuminant_jitter = float(illuminant_jitter)
        self.epoch = 0
        self._cache: OrderedDict[int, PreparedScene] = OrderedDict()

    def __len__(self) -> int:
        return len(self.scenes) * self.samples_per_scene

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def scene(self, i: int) -> PreparedScene:
        """The prepared scene ``i`` (read and aligned on first use)."""
        s = self.scenes[i]
        if isinstance(s, PreparedScene):
            return s
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        prepared = prepare_scene(s, self.devices, view_size=self.view_size, align=self.align)
        self._cache[i] = prepared
        while len(self._cache) > self.cache:
            self._cache.popitem(last=False)
        return prepared

    def _window(self, sc: PreparedScene, rng: np.random.Generator | None) -> tuple[int, int, int, int]:
        """(y, x, height, width) of the crop in packed pixels."""
        ph, pw = sc.packed.shape[1:]
        if self.crop is None:
            return 0, 0, ph // 8 * 8, pw // 8 * 8
        c = self.crop // 2
        if rng is None and (c > ph or c > pw):  # validation: the largest centred square that fits
            c = min(c, ph, pw) // 8 * 8
        if c > ph or c > pw:
            raise InputError(f"scene {sc.name!r}: the RAW ({2 * pw}×{2 * ph}) is smaller than the crop {self.crop}")
        if rng is None:
            return (ph - c) // 2, (pw - c) // 2, c, c
        best = None
        for _ in range(4):  # prefer crops the flow could align
            y, x = int(rng.integers(0, ph - c + 1)), int(rng.integers(0, pw - c + 1))
            valid = float(sc.masks[:, 2 * y:2 * y + 2 * c:4, 2 * x:2 * x + 2 * c:4].mean())
            if best is None or valid > best[0]:
                best = (valid, y, x)
            if valid > 0.5:
                break
        return best[1], best[2], c, c

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        si = index // self.samples_per_scene
        sc = self.scene(si)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            ids = [int(rng.integers(0, len(self.devices)))]
        else:
            rng, ids = None, list(range(len(self.devices)))
        y, x, ch, cw = self._window(sc, rng)
        ph, pw = sc.packed.shape[1:]
        grid = make_attention_coords(ph, pw)[0, :, y:y + ch, x:x + cw].to(torch.float32)
        tgt = sc.targets[ids, :, 2 * y:2 * (y + ch), 2 * x:2 * (x + cw)].astype(np.float32)
        raw, view, scaler = sc.packed[:, y:y + ch, x:x + cw], sc.view, sc.color_scaler
        if rng is not None and self.illuminant_jitter > 0:
            raw, view, scaler = _recolour(raw, view, scaler, np.exp(rng.uniform(-1, 1, 2) * self.illuminant_jitter))
        return {
            "raw": torch.from_numpy(np.ascontiguousarray(raw)),
            "raw_full": torch.from_numpy(np.ascontiguousarray(view)),
            "color_scaler": torch.from_numpy(np.ascontiguousarray(scaler)).reshape(4, 1, 1),
            "wb_known": torch.tensor([float(sc.wb_known)]),
            "coord": make_coord(ch, cw)[0],
            "coords": grid.contiguous(),
            "exp": torch.tensor([sc.exp], dtype=torch.float32),
            "iso": torch.tensor([sc.iso], dtype=torch.float32),
            "mobile_id": torch.tensor(ids, dtype=torch.long),
            "target": torch.from_numpy(np.ascontiguousarray(tgt.reshape(-1, 2 * ch, 2 * cw))),
            "mask": torch.from_numpy(np.ascontiguousarray(
                sc.masks[ids, 2 * y:2 * (y + ch), 2 * x:2 * (x + cw)].astype(np.float32))),
        }


def split_scenes(scenes: Sequence[Any], val: int) -> tuple[list[Any], list[Any]]:
    """Hold out the last ``val`` scenes (at least one training scene stays)."""
    n = len(scenes)
    val = max(0, min(int(val), n - 1))
    return list(scenes[:n - val]), list(scenes[n - val:])


def default_val_count(n: int) -> int:
    """Scenes held out when the data has no train/val folders: 10 %, at least one (when n ≥ 2)."""
    return 0 if n < 2 else max(1, math.ceil(0.1 * n))


def _recolour(raw: np.ndarray, view: np.ndarray, scaler: np.ndarray,
              factors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move the illuminant by (red, blue) ``factors``: packed (B, Gr, R, Gb) and view (B, G, R) times them,
    the colour scaler (B, G, R, G) divided (its white-balanced product is unchanged)."""
    red, blue = (float(f) for f in factors)
    packed = np.array([blue, 1.0, red, 1.0], dtype=np.float32)
    return (raw * packed[:, None, None], view * packed[[0, 1, 2], None, None],
            (scaler / packed).astype(np.float32))
