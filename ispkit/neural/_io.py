"""The one place where pixels cross between NumPy and torch, plus Bayer packing.

``to_tensor`` / ``to_numpy`` convert H×W(×C) float32 arrays to 1×C×H×W
tensors and back. ``pack_bayer`` / ``unpack_bayer`` are exact inverses
between an H×W mosaic and H/2×W/2×4 planes in any channel order; they are
NumPy-only (torch is imported lazily by the tensor converters), so classical
code can use them.

Channel names follow ispkit (``RAW_PACKED``): ``Gr`` is the green sharing a
row with red, ``Gb`` the green sharing a row with blue, whatever the CFA
pattern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import InputError, ParameterError
from ..frame import cfa_position_of, check_cfa_pattern

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PACKED_ORDER", "to_tensor", "to_numpy", "pack_bayer", "unpack_bayer", "parse_channel_order"]

#: ispkit's fixed RAW_PACKED order.
PACKED_ORDER = "R,Gr,Gb,B"
_NAMES = ("R", "Gr", "Gb", "B")


def parse_channel_order(order: str | Sequence[str]) -> tuple[str, str, str, str]:
    """Return a packed channel order as a 4-tuple of names (``"B,Gr,R,Gb"`` → ``("B","Gr","R","Gb")``)."""
    names = tuple(c.strip() for c in order.split(",")) if isinstance(order, str) else tuple(order)
    if len(names) != 4 or sorted(names) != sorted(_NAMES):
        raise ParameterError(
            f"channel order must be a permutation of R, Gr, Gb, B (e.g. 'R,Gr,Gb,B'), got {order!r}"
        )
    return names  # type: ignore[return-value]


def pack_bayer(mosaic: np.ndarray, cfa_pattern: str, order: str | Sequence[str] = PACKED_ORDER) -> np.ndarray:
    """Pack an H×W Bayer mosaic into H/2×W/2×4 planes in ``order``.

    Notes
    -----
    RAW_MOSAIC H×W (even H and W) → RAW_PACKED-like H/2×W/2×4 float32, values
    unchanged. ``unpack_bayer(pack_bayer(m, p, o), p, o) == m`` exactly.
    """
    m = np.asarray(mosaic)
    pattern = check_cfa_pattern(cfa_pattern, "pack_bayer")
    names = parse_channel_order(order)
    if m.ndim != 2:
        raise InputError(f"pack_bayer: expected an H×W mosaic, got shape {m.shape}")
    h, w = m.shape
    if h % 2 or w % 2 or h == 0 or w == 0:
        raise InputError(f"pack_bayer: the mosaic needs a non-zero even height and width, got {h}×{w}; crop one row/column")
    pos = cfa_position_of(pattern)
    out = np.empty((h // 2, w // 2, 4), dtype=np.float32)
    for c, name in enumerate(names):
        dy, dx = pos[name]
        out[:, :, c] = m[dy::2, dx::2]
    return out


def unpack_bayer(packed: np.ndarray, cfa_pattern: str, order: str | Sequence[str] = PACKED_ORDER) -> np.ndarray:
    """Interleave H/2×W/2×4 planes in ``order`` back into an H×W mosaic.

    Notes
    -----
    H/2×W/2×4 → H×W float32; the exact inverse of :func:`pack_bayer`.
    """
    p = np.asarray(packed)
    pattern = check_cfa_pattern(cfa_pattern, "unpack_bayer")
    names = parse_channel_order(order)
    if p.ndim != 3 or p.shape[2] != 4:
        raise InputError(f"unpack_bayer: expected H/2×W/2×4 planes, got shape {p.shape}")
    hh, ww = p.shape[:2]
    pos = cfa_position_of(pattern)
    out = np.empty((2 * hh, 2 * ww), dtype=np.float32)
    for c, name in enumerate(names):
        dy, dx = pos[name]
        out[dy::2, dx::2] = p[:, :, c]
    return out


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
