"""Dataset loaders, by name: Zurich RAW-to-RGB, paired folders, NTIRE night, AIM 2022 reverse ISP, synthetic.

Every loader yields dicts of C×H×W float32 tensors (``"input"``, ``"target"``),
checks its folder when built and names the first bad file, cuts
Bayer-phase-preserving random crops (even offsets) and flips, and repeats
itself exactly for the same seed and epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from ...errors import unknown_name
from .data_aim import AIM_MAX_VALUE, AIMReverseISP
from .data_common import PairDataset, aligned_crop, flip_arrays, to_chw
from .data_paired import NTIRENight, PairedFolder, normalized_packed
from .data_synthetic import SyntheticUnprocessed
from .data_zurich import PYNET_CHANNEL_ORDER, ZURICH_WHITE, ZurichRAWToRGB

__all__ = [
    "LOADERS", "open_dataset", "PairDataset", "ZurichRAWToRGB", "PairedFolder", "NTIRENight", "AIMReverseISP",
    "SyntheticUnprocessed", "aligned_crop", "flip_arrays", "to_chw", "normalized_packed",
    "PYNET_CHANNEL_ORDER", "ZURICH_WHITE", "AIM_MAX_VALUE",
]

#: Loader name (``ispkit evaluate --loader``) → dataset class.
LOADERS: dict[str, Callable[..., Dataset]] = {
    "zurich": ZurichRAWToRGB,
    "paired": PairedFolder,
    "ntire": NTIRENight,
    "aim": AIMReverseISP,
    "synthetic": SyntheticUnprocessed,
}


def open_dataset(kind: str, root: str | Path, **options: Any) -> Dataset:
    """Build the loader ``kind`` (a key of :data:`LOADERS`) over ``root`` with its keyword options.

    Raises
    ------
    UnknownNameError : ``kind`` is not a loader name.
    InputError : the folder fails the loader's checks (the message names the first bad file).
    """
    if kind not in LOADERS:
        raise unknown_name("loader", kind, LOADERS, "open_dataset")
    return LOADERS[kind](root, **options)
