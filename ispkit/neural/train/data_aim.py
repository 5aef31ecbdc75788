"""The AIM 2022 Reversed ISP challenge layout: RGB image → packed 4-channel RAW.

Each pair is ``N.jpg`` (or ``N.png``), an H×W×3 render, and ``N.npy``, its
H/2×W/2×4 packed RAW as integers in the RGGB raster order of the 2×2 cell
(R, G on the red row, G on the blue row, B — ispkit's ``"R,Gr,Gb,B"``).

References
----------
Conde, M. V., Timofte, R. et al. (2022). Reversed image signal processing and RAW reconstruction.
AIM 2022 challenge report. *ECCV Workshops* (starter code and scoring: mv-lab/AISP, which divide
the ``.npy`` values by 1024).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from ._files import image_size, npy_shape, partner, sorted_files
from .data_common import PairDataset

__all__ = ["AIMReverseISP", "AIM_MAX_VALUE"]

#: The challenge's divisor of the stored RAW values (starter code ``load_raw``, scoring ``_open_img``).
AIM_MAX_VALUE = 1024.0


class AIMReverseISP(PairDataset):
    """AIM 2022 reverse-ISP pairs: RGB input (3 × H × W), packed RAW target (4 × H/2 × W/2).

    Parameters
    ----------
    root : the folder holding ``N.jpg``/``N.png`` and ``N.npy`` side by side.
    crop, flip, seed, train : see :class:`~ispkit.neural.train.data_common.PairDataset`.
    max_value : divisor of the ``.npy`` values (default 1024, as the challenge's code).
    limit : use only the first ``limit`` pairs.

    Notes
    -----
    Both tracks (Samsung S7, Huawei P20) share the layout. When the dataset is built, each
    ``.npy`` must have an RGB partner, a readable H/2×W/2×4 header and an RGB image of H×W.

    References
    ----------
    Conde, Timofte et al. (2022), AIM 2022 Reversed ISP challenge report, *ECCV Workshops*.
    """

    where = "AIMReverseISP"

    def __init__(self, root: str | Path, *, crop: int | None = None, flip: bool = False, seed: int = 0,
                 train: bool = True, max_value: float = AIM_MAX_VALUE, limit: int | None = None) -> None:
        super().__init__(crop=crop, flip=flip, seed=seed, train=train)
        self.max_value = float(max_value)
        folder = Path(root)
        raws = sorted_files(folder, (".npy",))[:limit]
        if not raws:
            raise InputError(f"AIMReverseISP: no N.npy RAW files in {str(folder)!r} (expected N.jpg + N.npy pairs)")
        self.items = [self._check(raw) for raw in raws]

    @staticmethod
    def _check(raw: Path) -> tuple[Path, Path]:
        rgb = partner(raw.parent, raw.stem, (".jpg", ".jpeg", ".png"))
        if rgb is None:
            raise InputError(f"AIMReverseISP: {str(raw)!r} has no RGB partner {raw.stem}.jpg or {raw.stem}.png")
        shape = npy_shape(raw)
        if len(shape) != 3 or shape[2] != 4:
            raise InputError(f"AIMReverseISP: {str(raw)!r} holds shape {shape}; expected packed H/2×W/2×4 RAW")
        h, w, c = image_size(rgb)
        if (h, w) != (2 * shape[0], 2 * shape[1]) or c != 3:
            raise InputError(f"AIMReverseISP: {str(rgb)!r} is {w}×{h}×{c} but {raw.name} packs a "
                             f"{2 * shape[1]}×{2 * shape[0]} mosaic; expected an RGB image of that size")
        return rgb, raw

    def load(self, index: int) -> dict[str, tuple[np.ndarray, int]]:
        """Return the RGB image (factor 1) and the packed RAW / ``max_value`` (factor 2)."""
        from ...io import read_image

        rgb, raw = self.items[index]
        packed = np.load(raw, allow_pickle=False).astype(np.float32) / np.float32(self.max_value)
        return {"input": (read_image(rgb), 1), "target": (packed, 2)}
