"""The Zurich RAW-to-RGB dataset (PyNET): Huawei P20 Bayer PNGs paired with Canon 5D Mark IV JPEGs.

Layout (the PyNET release)::

    ROOT/train/huawei_raw/0.png  …   448×448 16-bit grey Bayer mosaic (10-bit values)
    ROOT/train/canon/0.jpg       …   448×448 RGB, aligned with the mosaic
    ROOT/test/huawei_raw/ …, ROOT/test/canon/ …

References
----------
Ignatov, A., Van Gool, L., Timofte, R. (2020). Replacing mobile camera ISP with a single deep
learning model. *CVPR Workshops* (PyNET; ``load_data.py`` of aiff22/PyNET-PyTorch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import InputError
from ...frame import Frame
from .._io import pack_bayer, parse_channel_order
from ._files import image_size, partner, sorted_files
from .data_common import PairDataset

__all__ = ["ZurichRAWToRGB", "PYNET_CHANNEL_ORDER", "ZURICH_WHITE"]

#: PyNET's packed order (its ch_B, ch_Gb, ch_R, ch_Gr — ispkit names the green on the red row Gr).
PYNET_CHANNEL_ORDER = "B,Gr,R,Gb"
#: PyNET divides the 10-bit Huawei values by 4 · 255 (no black-level subtraction).
ZURICH_WHITE = 4.0 * 255.0


def _split_dir(root: Path, split: str) -> Path:
    if (root / "huawei_raw").is_dir():
        return root
    if (root / split / "huawei_raw").is_dir():
        return root / split
    raise InputError(f"ZurichRAWToRGB: {str(root)!r} has neither {split}/huawei_raw/ nor huawei_raw/; expected the "
                     "PyNET layout ROOT/train/huawei_raw/N.png + ROOT/train/canon/N.jpg")


class ZurichRAWToRGB(PairDataset):
    """Zurich RAW-to-RGB pairs: packed RAW input (4 × H/2 × W/2) and RGB target (3 × H × W).

    Parameters
    ----------
    root : the dataset root (with ``train/`` and ``test/``) or one split folder.
    split : ``"train"`` or ``"test"``.
    crop, flip, seed, train : see :class:`~ispkit.neural.train.data_common.PairDataset`
        (``train`` defaults to ``split == "train"``).
    channel_order : packed order (default PyNET's ``"B,Gr,R,Gb"``).
    white : divisor of the raw values (default PyNET's 4 · 255).
    limit : use only the first ``limit`` pairs.

    Notes
    -----
    The mosaic is RGGB (the red site at the top-left, as PyNET's packing assumes). Every pair is
    checked when the dataset is built: a missing JPEG, a mosaic that is not a one-channel PNG,
    odd or unequal sizes raise :class:`~ispkit.errors.InputError` naming the file.

    References
    ----------
    Ignatov, Van Gool, Timofte (2020), *CVPR Workshops*.
    """

    where = "ZurichRAWToRGB"

    def __init__(self, root: str | Path, split: str = "train", *, crop: int | None = None, flip: bool = False,
                 seed: int = 0, train: bool | None = None, channel_order: str | Sequence[str] = PYNET_CHANNEL_ORDER,
                 white: float = ZURICH_WHITE, limit: int | None = None) -> None:
        super().__init__(crop=crop, flip=flip, seed=seed, train=split == "train" if train is None else train)
        self.order = parse_channel_order(channel_order)
        self.white = float(white)
        folder = _split_dir(Path(root), split)
        raws = sorted_files(folder / "huawei_raw", (".png",))[:limit]
        if not raws:
            raise InputError(f"ZurichRAWToRGB: no .png mosaics in {str(folder / 'huawei_raw')!r}")
        self.items = [self._check(raw, folder / "canon") for raw in raws]

    @staticmethod
    def _check(raw: Path, canon: Path) -> tuple[Path, Path]:
        rgb = partner(canon, raw.stem, (".jpg", ".jpeg", ".png"))
        if rgb is None:
            raise InputError(f"ZurichRAWToRGB: {str(raw)!r} has no partner {raw.stem}.jpg in {str(canon)!r}")
        h, w, c = image_size(raw)
        if c != 1 or h % 2 or w % 2:
            raise InputError(f"ZurichRAWToRGB: {str(raw)!r} is {h}×{w}×{c}; expected a one-channel Bayer PNG "
                             "with even sides")
        if image_size(rgb)[:2] != (h, w):
            raise InputError(f"ZurichRAWToRGB: {str(rgb)!r} is {image_size(rgb)[1]}×{image_size(rgb)[0]} but its "
                             f"mosaic {raw.name} is {w}×{h}; the pair must have one size")
        return raw, rgb

    def _mosaic(self, index: int) -> np.ndarray:
        import cv2

        raw_path = self.items[index][0]
        mosaic = cv2.imread(str(raw_path), cv2.IMREAD_UNCHANGED)
        if mosaic is None or mosaic.ndim != 2:
            raise InputError(f"ZurichRAWToRGB: cannot decode {str(raw_path)!r} as a one-channel PNG")
        return mosaic.astype(np.float32)

    def raw_frame(self, index: int) -> Frame:
        """Return capture ``index`` as a RAW_MOSAIC frame (RGGB, black 0, white 4 · 255; no colour metadata)."""
        from ...io import from_array

        return from_array(self._mosaic(index), "RGGB", black_level=0, white_level=self.white)

    def target_image(self, index: int) -> np.ndarray:
        """Return the Canon RGB image of pair ``index`` (H×W×3 float32 in [0, 1])."""
        from ...io import read_image

        return read_image(self.items[index][1])

    def load(self, index: int) -> dict[str, tuple[np.ndarray, int]]:
        """Return the packed, normalised mosaic (factor 2) and the RGB image (factor 1)."""
        packed = pack_bayer(self._mosaic(index) / np.float32(self.white), "RGGB", self.order)
        return {"input": (packed, 2), "target": (self.target_image(index), 1)}
