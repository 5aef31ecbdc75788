"""Paired RAW → RGB folders, and the NTIRE night-photography format.

A paired folder holds RAW captures and the RGB images rendered from them,
matched by file stem::

    ROOT/raw/0001.dng   (any RAW LibRaw reads; or 0001.png / 0001.raw + a JSON sidecar)
    ROOT/rgb/0001.png   (or .jpg / .tif), the same size as the mosaic

The NTIRE night format is ``NAME.png`` (16-bit mosaic) + ``NAME.json`` in one
folder, paired with reference renders ``NAME.jpg`` when they are present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import InputError, ISPError
from ...frame import Frame
from ...io import capture_kind, read_capture, read_image
from ...stages.black_level import subtract_black_level
from .._io import PACKED_ORDER, pack_bayer, parse_channel_order
from ._files import IMAGE_SUFFIXES, image_size, partner, sorted_files
from .data_common import PairDataset

__all__ = ["PairedFolder", "NTIRENight", "normalized_packed"]

_SIDECAR_MOSAICS = (".png", ".raw")


def normalized_packed(frame: Frame, order: str | Sequence[str] = PACKED_ORDER) -> np.ndarray:
    """Black-subtract, scale to [0, 1] by the white level and pack a RAW_MOSAIC frame.

    Notes
    -----
    RAW_MOSAIC H×W raw counts → H/2×W/2×4 float32 in ``order`` (not clipped: noise below black
    stays negative), following the frame's ``cfa_pattern``.
    """
    m = frame.meta
    norm = subtract_black_level(frame.data, m.black_level, m.white_level, linearization_table=m.linearization_table)
    return pack_bayer(norm, m.cfa_pattern or "RGGB", order)


def _raw_files(folder: Path) -> list[Path]:
    """Every file of ``folder`` except JSON sidecars and hidden files, in natural order."""
    if not folder.is_dir():
        raise InputError(f"dataset folder {str(folder)!r} does not exist or is not a folder")
    suffixes = tuple({p.suffix.lower() for p in folder.iterdir() if p.is_file()} - {".json"})
    return [p for p in sorted_files(folder, suffixes) if not p.name.startswith(".")]


class PairedFolder(PairDataset):
    """RAW captures paired with RGB renders by stem: packed RAW input, RGB target.

    Parameters
    ----------
    root : the dataset folder.
    raw_dir, rgb_dir : sub-folders of ``root`` (or absolute paths) holding the captures and the RGB images.
    crop, flip, seed, train : see :class:`~ispkit.neural.train.data_common.PairDataset`.
    channel_order : packed order of the input (default ispkit's ``"R,Gr,Gb,B"``).
    require_target : refuse captures without an RGB partner (``False``: yield ``input`` only
        when no capture has one).

    Notes
    -----
    Input: :func:`normalized_packed` of :func:`ispkit.io.read_capture` (black-subtracted, divided by
    white − black). Target: :func:`ispkit.io.read_image`, float32 in [0, 1]. When the dataset is
    built every capture's partner must exist and every RGB image and sidecar mosaic header must
    read, with equal even sizes; camera RAW files are checked when first read (the error names
    both files).
    """

    where = "PairedFolder"
    rgb_suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
    same_size = True  # input and target must have one size (NTIRE references need not)

    def __init__(self, root: str | Path, raw_dir: str = "raw", rgb_dir: str = "rgb", *, crop: int | None = None,
                 flip: bool = False, seed: int = 0, train: bool = True,
                 channel_order: str | Sequence[str] = PACKED_ORDER, require_target: bool = True) -> None:
        super().__init__(crop=crop, flip=flip, seed=seed, train=train)
        self.order = parse_channel_order(channel_order)
        self.raw_folder, self.rgb_folder = Path(root) / raw_dir, Path(root) / rgb_dir
        captures = self._captures()
        if not captures:
            raise InputError(f"{self.where}: no RAW captures in {str(self.raw_folder)!r}")
        targets = [partner(self.rgb_folder, c.stem, self.rgb_suffixes) for c in captures]
        if require_target or any(t is not None for t in targets):
            self._require_all(captures, targets)
        self.items = [(c, t, self._check(c, t)) for c, t in zip(captures, targets)]

    def _captures(self) -> list[Path]:
        out = []
        for p in _raw_files(self.raw_folder):
            try:
                kind = capture_kind(p)
            except ISPError as exc:
                raise InputError(f"{self.where}: {exc}") from None
            if kind == "raw" and p.suffix.lower() in IMAGE_SUFFIXES:
                continue  # a display image or a mosaic without a sidecar: not a capture
            out.append(p)
        return out

    def _require_all(self, captures: list[Path], targets: list[Path | None]) -> None:
        for c, t in zip(captures, targets):
            if t is None:
                raise InputError(f"{self.where}: capture {str(c)!r} has no RGB partner {c.stem}.png/.jpg/.tif "
                                 f"in {str(self.rgb_folder)!r}")

    def _check(self, capture: Path, target: Path | None) -> tuple[int, int] | None:
        """Check headers; return the mosaic size when it is known without decoding."""
        rgb = image_size(target)[:2] if target is not None else None
        mosaic = image_size(capture)[:2] if capture.suffix.lower() == ".png" else None
        if mosaic is not None and (mosaic[0] % 2 or mosaic[1] % 2):
            raise InputError(f"{self.where}: mosaic {str(capture)!r} is {mosaic[1]}×{mosaic[0]}; sides must be even")
        if mosaic is not None and rgb is not None and rgb != mosaic and self.same_size:
            raise InputError(f"{self.where}: {str(target)!r} is {rgb[1]}×{rgb[0]} but its capture {capture.name} is "
                             f"{mosaic[1]}×{mosaic[0]}; a pair must have one size")
        return mosaic

    def raw_frame(self, index: int) -> Frame:
        """Return capture ``index`` as read by :func:`ispkit.io.read_capture` (RAW_MOSAIC, raw counts)."""
        return read_capture(self.items[index][0])

    def target_image(self, index: int) -> np.ndarray | None:
        """Return the RGB partner of capture ``index`` (H×W×3 float32 in [0, 1]), or ``None``."""
        target = self.items[index][1]
        return read_image(target) if target is not None else None

    def load(self, index: int) -> dict[str, tuple[np.ndarray, int]]:
        """Return the packed input (factor 2) and, when there is one, the RGB target (factor 1)."""
        capture, target, _ = self.items[index]
        packed = normalized_packed(self.raw_frame(index), self.order)
        if target is None:
            return {"input": (packed, 2)}
        rgb = self.target_image(index)
        if (self.same_size or self.crop) and rgb.shape[:2] != (2 * packed.shape[0], 2 * packed.shape[1]):
            raise InputError(f"{self.where}: {str(target)!r} is {rgb.shape[1]}×{rgb.shape[0]} but the mosaic of "
                             f"{str(capture)!r} is {2 * packed.shape[1]}×{2 * packed.shape[0]}; a pair must have "
                             "one size (to crop, or for this loader)")
        return {"input": (packed, 2), "target": (rgb, 1)}


class NTIRENight(PairedFolder):
    """NTIRE Night Photography Rendering captures (``NAME.png`` + ``NAME.json``), with references if present.

    Parameters
    ----------
    root : the folder of PNG + JSON pairs.
    reference_dir : folder of the reference renders ``NAME.jpg`` (default: ``root`` itself).
    crop, flip, seed, train, channel_order : as :class:`PairedFolder`; crops need references of
        the mosaic's size.

    Notes
    -----
    The challenge's references are often smaller than the mosaic or rotated, so sizes are not
    required to match; without references the samples hold ``input`` only (for evaluation runs
    that render, or for self-supervised use).

    References
    ----------
    Ershov, E. et al. (2022–2024). NTIRE Night Photography Rendering Challenge reports. *CVPR Workshops*.
    """

    where = "NTIRENight"
    rgb_suffixes = (".jpg", ".jpeg")
    same_size = False

    def __init__(self, root: str | Path, reference_dir: str | Path | None = None, *, crop: int | None = None,
                 flip: bool = False, seed: int = 0, train: bool = True,
                 channel_order: str | Sequence[str] = PACKED_ORDER) -> None:
        ref = str(Path(reference_dir).resolve()) if reference_dir is not None else "."
        super().__init__(root, raw_dir=".", rgb_dir=ref, crop=crop, flip=flip, seed=seed, train=train,
                         channel_order=channel_order,
                         require_target=False)

    def _captures(self) -> list[Path]:
        pngs = sorted_files(self.raw_folder, (".png",))
        out = [p for p in pngs if capture_kind(p) == "ntire"]
        if not out and pngs:
            raise InputError(f"NTIRENight: {str(pngs[0])!r} has no NTIRE JSON beside it ({pngs[0].stem}.json with "
                             "cfa_pattern, black_level and white_level)")
        return out
