"""What every dataset loader shares: aligned random crops, flips, per-sample seeds, tensors.

Arrays travel as H×W×C float32 NumPy until :func:`to_chw`. A crop is given in
full-resolution pixels (the mosaic's or the RGB image's); packed RAW planes,
at half that resolution, are cut at half the offset. Offsets are even, so a
crop never changes a mosaic's Bayer phase.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError, ParameterError

__all__ = ["PairDataset", "aligned_crop", "flip_arrays", "to_chw", "check_crop"]


def check_crop(crop: object, where: str) -> int | None:
    """Return ``crop`` when it is ``None`` or an even integer ≥ 2; raise otherwise."""
    if crop is None:
        return None
    if isinstance(crop, bool) or not isinstance(crop, int) or crop < 2 or crop % 2:
        raise ParameterError(f"{where}: crop must be an even number of full-resolution pixels >= 2, got {crop!r}")
    return crop


def aligned_crop(arrays: Sequence[tuple[np.ndarray, int]], crop: int, rng: np.random.Generator | None,
                 where: str) -> list[np.ndarray]:
    """Cut the same region from arrays at full (factor 1) and half (factor 2) resolution.

    Parameters
    ----------
    arrays : (array H×W×C, factor) pairs; ``factor`` is full resolution ÷ the array's resolution.
    crop : side in full-resolution pixels (even).
    rng : draws an even offset; ``None`` takes the centred even offset (validation).

    Notes
    -----
    Offsets are multiples of 2 full-resolution pixels, so a Bayer mosaic keeps its CFA phase
    and packed planes stay aligned with the RGB image.
    """
    full_h = min(a.shape[0] * f for a, f in arrays)
    full_w = min(a.shape[1] * f for a, f in arrays)
    if crop > full_h or crop > full_w:
        raise InputError(f"{where}: crop {crop} is larger than the image ({full_h}×{full_w} full-resolution pixels)")
    if rng is None:
        y, x = (full_h - crop) // 4 * 2, (full_w - crop) // 4 * 2
    else:
        y, x = 2 * int(rng.integers(0, (full_h - crop) // 2 + 1)), 2 * int(rng.integers(0, (full_w - crop) // 2 + 1))
    return [a[y // f:(y + crop) // f, x // f:(x + crop) // f] for a, f in arrays]


def flip_arrays(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Flip all arrays together, left-right and/or up-down with probability ½ each.

    Notes
    -----
    Packed RAW planes are mirrored plane by plane, so each channel keeps its CFA colour.
    """
    out = list(arrays)
    if rng.random() < 0.5:
        out = [a[:, ::-1] for a in out]
    if rng.random() < 0.5:
        out = [a[::-1] for a in out]
    return out


def to_chw(array: np.ndarray) -> torch.Tensor:
    """Turn an H×W×C (or H×W) array into a contiguous C×H×W float32 tensor."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class PairDataset(Dataset):
    """Base of the paired loaders: ``load(i)`` gives arrays; crops, flips and tensors happen here.

    Parameters
    ----------
    crop : side of the random crop in full-resolution pixels (even), or ``None`` for whole images.
    flip : random left-right / up-down flips (training only).
    seed : with the epoch (:meth:`set_epoch`) and the index, fixes every random choice.
    train : random crops and flips; ``False`` takes centred crops and no flips.

    Notes
    -----
    Subclasses set ``self.items`` and define ``load(i) -> dict`` of name → (H×W×C array,
    factor): factor 1 for full resolution, 2 for packed RAW planes, 0 for values that are not
    images (gains, matrices: passed through uncropped). Every entry becomes a tensor of the sample.
    """

    where = "dataset"

    def __init__(self, *, crop: int | None = None, flip: bool = False, seed: int = 0, train: bool = True) -> None:
        self.crop = check_crop(crop, type(self).__name__)
        self.flip = bool(flip)
        self.seed = int(seed)
        self.train = bool(train)
        self.epoch = 0
        self.items: list[Any] = []

    def set_epoch(self, epoch: int) -> None:
        """Make the random crops and flips those of ``epoch`` (the trainer calls this)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch (same seed, epoch, index → same draws)."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self.items):
            raise IndexError(f"{type(self).__name__}: index {index} out of range 0..{len(self.items) - 1}")
        parts = self.load(index)  # type: ignore[attr-defined]
        names = [n for n, (_, f) in parts.items() if f]
        arrays = [parts[n][0] for n in names]
        rng = self.rng(index) if self.train else None
        if self.crop is not None:
            arrays = aligned_crop([parts[n] for n in names], self.crop, rng, f"{self.where} item {index}")
        if self.flip and rng is not None:
            arrays = flip_arrays(arrays, rng)
        out = {n: to_chw(a) for n, a in zip(names, arrays)}
        out.update({n: torch.as_tensor(np.asarray(a, dtype=np.float32)) for n, (a, f) in parts.items() if not f})
        return out
