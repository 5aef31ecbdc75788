"""Training pairs made on the fly from any folder of sRGB images, by unprocessing.

Each sample draws a camera (colour matrix, white balance, brightness, noise) and
turns an sRGB crop into the noisy RAW mosaic that camera would have recorded
(:func:`ispkit.stages.unprocess`); the pair is packed RAW ↔ sRGB.

References
----------
Brooks, T., Mildenhall, B., Xue, T., Chen, J., Sharlet, D., Barron, J. T. (2019). Unprocessing
images for learned raw denoising. *CVPR*, 11036–11045.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ...errors import InputError, ParameterError
from .._io import PACKED_ORDER, pack_bayer, parse_channel_order
from ._files import IMAGE_SUFFIXES, image_size, sorted_files
from .data_common import PairDataset, aligned_crop, flip_arrays, to_chw

__all__ = ["SyntheticUnprocessed", "DIRECTIONS"]

#: ``"raw2rgb"``: packed RAW input, sRGB target; ``"rgb2raw"``: sRGB input, clean packed RAW target.
DIRECTIONS = ("raw2rgb", "rgb2raw")


class SyntheticUnprocessed(PairDataset):
    """Packed RAW ↔ sRGB pairs unprocessed on the fly from a folder of sRGB images.

    Parameters
    ----------
    root : a folder of PNG/JPEG/TIFF sRGB images (at least ``crop`` pixels a side).
    crop : side of the random crop in pixels (even); ``None`` uses whole images cut to even sides.
    direction : ``"raw2rgb"`` (input noisy packed RAW, target sRGB) or ``"rgb2raw"`` (input sRGB,
        target the noise-free packed RAW).
    flip, seed, train : see :class:`~ispkit.neural.train.data_common.PairDataset`; the camera and
        the noise are drawn from the same per-sample generator, so a sample repeats exactly.
    noise : ``sample_camera``'s noise model (``"brooks"``, ``"none"`` or a (shot, read) pair).
    cfa_pattern : the mosaic layout.
    channel_order : packed order (default ``"R,Gr,Gb,B"``).
    matrices : camera ColorMatrices to mix (default: those shipped with ispkit).

    Notes
    -----
    Each sample also holds ``wb_gains`` (3,) and ``cam_to_xyz`` (3, 3) of its camera, for models
    that take metadata. Values: RAW black 0, white 1 (noise may leave [0, 1]); sRGB in [0, 1].

    References
    ----------
    Brooks et al. (2019), *CVPR*.
    """

    where = "SyntheticUnprocessed"

    def __init__(self, root: str | Path, *, crop: int | None = 256, direction: str = "raw2rgb", flip: bool = True,
                 seed: int = 0, train: bool = True, noise: Any = "brooks", cfa_pattern: str = "RGGB",
                 channel_order: str | Sequence[str] = PACKED_ORDER, matrices: Sequence[Any] | None = None) -> None:
        super().__init__(crop=crop, flip=flip, seed=seed, train=train)
        if direction not in DIRECTIONS:
            raise ParameterError(f"SyntheticUnprocessed: direction must be one of {DIRECTIONS}, got {direction!r}")
        self.direction, self.noise, self.cfa_pattern = direction, noise, cfa_pattern
        self.order = parse_channel_order(channel_order)
        self.matrices = matrices
        images = sorted_files(Path(root), IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"SyntheticUnprocessed: no images ({', '.join(IMAGE_SUFFIXES)}) in {str(root)!r}")
        self.items = [self._check(p) for p in images]

    def _check(self, path: Path) -> Path:
        h, w, _ = image_size(path)
        need = self.crop or 2
        if h < need or w < need:
            raise InputError(f"SyntheticUnprocessed: {str(path)!r} is {w}×{h}, smaller than the {need}-pixel crop")
        return path

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ...io import read_image
        from ...stages import sample_camera, unprocess

        if not 0 <= index < len(self.items):
            raise IndexError(f"SyntheticUnprocessed: index {index} out of range 0..{len(self.items) - 1}")
        rng = self.rng(index) if self.train else np.random.default_rng([self.seed, index])
        srgb = self._crop(read_image(self.items[index]), rng)
        camera = sample_camera(rng, matrices=self.matrices, cfa_pattern=self.cfa_pattern, noise=self.noise)
        result = unprocess(srgb, camera, rng=rng, add_noise=self.direction == "raw2rgb")
        mosaic = result.frame.data if self.direction == "raw2rgb" else result.mosaic_clean
        packed = pack_bayer(mosaic, self.cfa_pattern, self.order)
        raw_key, rgb_key = ("input", "target") if self.direction == "raw2rgb" else ("target", "input")
        return {raw_key: to_chw(packed), rgb_key: to_chw(srgb),
                "wb_gains": torch.as_tensor(np.asarray(camera.wb_gains, dtype=np.float32)),
                "cam_to_xyz": torch.as_tensor(np.asarray(camera.cam_to_xyz, dtype=np.float32))}

    def _crop(self, srgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = srgb.shape[0] // 2 * 2, srgb.shape[1] // 2 * 2
        srgb = srgb[:h, :w]
        if self.crop is not None:
            srgb = aligned_crop([(srgb, 1)], self.crop, rng if self.train else None, self.where)[0]
        if self.flip and self.train:
            srgb = flip_arrays([srgb], rng)[0]
        return np.ascontiguousarray(np.clip(srgb, 0.0, 1.0), dtype=np.float32)
