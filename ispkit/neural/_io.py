"""The one place where pixels cross between NumPy and torch, plus Bayer packing.

``to_tensor`` / ``to_numpy`` convert H×W(×C) float32 arrays to 1×C×H×W
tensors and back. ``pack_bayer`` / ``unpack_bayer`` are exact inverses
between an H×W mosaic and H/2×W/2×4 planes in any channel order; they live
in :mod:`ispkit.stages.packing` (NumPy only) and are re-exported here.

Channel names follow ispkit (``RAW_PACKED``): ``Gr`` is the green sharing a
row with red, ``Gb`` the green sharing a row with blue, whatever the CFA
pattern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..stages.packing import PACKED_ORDER, pack_bayer, parse_channel_order, unpack_bayer

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PACKED_ORDER", "to_tensor", "to_numpy", "pack_bayer", "unpack_bayer", "parse_channel_order"]

def to_tensor(array: np.ndarray, device: "torch.device | str" = "cpu", dtype: "torch.dtype | None" = None,
              *, check_finite: bool = True) -> "torch.Tensor":
    """Convert an H×W or H×W×C array into a 1×C×H×W tensor on ``device``.

    Notes
    -----
    Any real dtype in; float32 out unless ``dtype`` says otherwise. Values
    are not rescaled.

    Raises
    ------
    InputError : wrong number of dimensions, or NaN/inf pixels (when ``check_finite``).
    """
    import torch

    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"to_tensor: expected an H×W or H×W×C array, got shape {a.shape}")
    if a.size == 0:
        raise InputError(f"to_tensor: the array is empty (shape {a.shape})")
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    if check_finite and not np.isfinite(a).all():
        raise InputError("the image holds NaN or infinite values; a neural stage needs finite pixels "
                         "(check the upstream stages or clean the input with np.nan_to_num)")
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
    return t.to(device=device, dtype=dtype if dtype is not None else torch.float32)


def to_numpy(tensor: "torch.Tensor") -> np.ndarray:
    """Convert a 1×C×H×W (or C×H×W) tensor into an H×W×C float32 array.

    Notes
    -----
    The tensor is detached and moved to the CPU; half dtypes become float32.
    """
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"to_numpy: expected a torch.Tensor, got {type(tensor).__name__}")
    t = tensor.detach()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise InputError(f"to_numpy: expected a batch of one, got shape {tuple(t.shape)}")
        t = t[0]
    if t.ndim != 3:
        raise InputError(f"to_numpy: expected a 1×C×H×W or C×H×W tensor, got shape {tuple(t.shape)}")
    return np.ascontiguousarray(t.to(device="cpu", dtype=torch.float32).numpy().transpose(1, 2, 0))
