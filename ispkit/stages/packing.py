"""Bayer packing: RAW_MOSAIC (H×W) ↔ RAW_PACKED (H/2×W/2×4), exact inverses.

``pack_bayer`` / ``unpack_bayer`` move each CFA position into its own plane
(any channel order; ispkit's ``RAW_PACKED`` order is R, Gr, Gb, B) and back.
``Gr`` is the green sharing a row with red, ``Gb`` the one sharing a row with
blue, whatever the CFA pattern. The neural wrappers re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError, ParameterError
from ..frame import Domain, Frame, cfa_position_of, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage

__all__ = ["PACKED_ORDER", "pack_bayer", "unpack_bayer", "parse_channel_order", "PackBayer", "UnpackBayer"]

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
        raise InputError(f"pack_bayer: the mosaic needs a non-zero even height and width, got {h}×{w}; "
                         "crop one row/column")
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


@register_stage
@dataclass(frozen=True)
class PackBayer(Stage):
    """Pack a Bayer mosaic into four half-resolution planes R, Gr, Gb, B.

    Notes
    -----
    RAW_MOSAIC H×W (even) → RAW_PACKED H/2×W/2×4 float32, values unchanged;
    ``meta.cfa_pattern`` is kept so :class:`UnpackBayer` can undo it exactly.
    """

    type_name = "pack_bayer"

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.RAW_PACKED,
                         requires=("cfa_pattern",))

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=pack_bayer(frame.data, frame.meta.cfa_pattern), domain=Domain.RAW_PACKED)

    def inverse(self) -> "UnpackBayer":
        """The exact inverse: :class:`UnpackBayer`."""
        return UnpackBayer()


@register_stage
@dataclass(frozen=True)
class UnpackBayer(Stage):
    """Interleave R, Gr, Gb, B planes back into a Bayer mosaic of ``meta.cfa_pattern``.

    Notes
    -----
    RAW_PACKED H/2×W/2×4 → RAW_MOSAIC H×W float32, values unchanged.
    """

    type_name = "unpack_bayer"

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_PACKED,), out_domain=Domain.RAW_MOSAIC,
                         requires=("cfa_pattern",))

    def process(self, frame: Frame) -> Frame:
        return frame.replace(data=unpack_bayer(frame.data, frame.meta.cfa_pattern), domain=Domain.RAW_MOSAIC)

    def inverse(self) -> PackBayer:
        """The exact inverse: :class:`PackBayer`."""
        return PackBayer()
