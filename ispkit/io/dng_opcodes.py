"""DNG opcode lists: parse the GainMap opcodes a DNG carries (reading a file, so it lives in io/).

The lens-shading stage consumes what :func:`ispkit.io.read_raw` puts in
``meta.extra["gain_maps"]`` (plain dicts of :class:`~ispkit.frame.GainMap`).

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.4.0.0 (2012), chapter 7
"Opcode List Processing", GainMap (opcode 9).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import ParameterError, RawReadError
from ..frame import GainMap

__all__ = ["OPCODE_LIST_TAGS", "GAIN_MAP_OPCODE_ID", "parse_opcode_list", "read_gain_maps"]

#: TIFF tag → opcode list number (1: raw values, 2: after linearisation, 3: after demosaicing).
OPCODE_LIST_TAGS: dict[int, int] = {51008: 1, 51009: 2, 51022: 3}
#: DNG opcode ID of GainMap.
GAIN_MAP_OPCODE_ID = 9

_HEADER = struct.Struct(">IIII")  # opcode id, DNG version, flags, parameter byte count
_GAIN_MAP_FIXED = struct.Struct(">IIIIIIIIIIddddI")  # area spec (8 × LONG) + map header

def parse_opcode_list(data: bytes, opcode_list: int = 2) -> list[GainMap]:
    """Parse the GainMap opcodes out of a DNG opcode list (other opcodes are skipped).

    Parameters
    ----------
    data : the raw value of tag OpcodeList1/2/3 (big-endian, as the DNG
        spec mandates regardless of the file's byte order).
    opcode_list : 1, 2 or 3, recorded in each :class:`GainMap`.

    Notes
    -----
    Layout (DNG 1.4 §7): uint32 count; per opcode uint32 ID, 4-byte DNG
    version, uint32 flags, uint32 byte count, parameters. GainMap parameters:
    Top, Left, Bottom, Right, Plane, Planes, RowPitch, ColPitch, MapPointsV,
    MapPointsH (LONG); MapSpacingV, MapSpacingH, MapOriginV, MapOriginH
    (DOUBLE); MapPlanes (LONG); then MapPointsV × MapPointsH × MapPlanes
    FLOAT gains, row by row, planes interleaved.

    References
    ----------
    Adobe DNG Specification 1.4.0.0, chapter 7.
    """
    buf = bytes(data)
    if len(buf) < 4:
        raise RawReadError(f"opcode list {opcode_list}: {len(buf)} bytes is too short for a count")
    (count,) = struct.unpack_from(">I", buf, 0)
    pos = 4
    maps: list[GainMap] = []
    for i in range(count):
        if pos + _HEADER.size > len(buf):
            raise RawReadError(f"opcode list {opcode_list}: truncated header of opcode {i} of {count}")
        op_id, _version, flags, size = _HEADER.unpack_from(buf, pos)
        pos += _HEADER.size
        if pos + size > len(buf):
            raise RawReadError(f"opcode list {opcode_list}: opcode {i} (ID {op_id}) claims {size} bytes, "
                               f"only {len(buf) - pos} left")
        if op_id == GAIN_MAP_OPCODE_ID:
            maps.append(_parse_gain_map(buf[pos:pos + size], flags, opcode_list))
        pos += size
    return maps


def _parse_gain_map(p: bytes, flags: int, opcode_list: int) -> GainMap:
    if len(p) < _GAIN_MAP_FIXED.size:
        raise RawReadError(f"GainMap opcode: {len(p)} parameter bytes, expected at least {_GAIN_MAP_FIXED.size}")
    (top, left, bottom, right, plane, planes, row_pitch, col_pitch, points_v, points_h,
     spacing_v, spacing_h, origin_v, origin_h, map_planes) = _GAIN_MAP_FIXED.unpack_from(p, 0)
    n = points_v * points_h * map_planes
    expected = _GAIN_MAP_FIXED.size + 4 * n
    if len(p) != expected:
        raise RawReadError(f"GainMap opcode: {points_v}×{points_h}×{map_planes} map needs {expected} bytes, "
                           f"the opcode holds {len(p)}")
    gains = np.frombuffer(p, dtype=">f4", count=n, offset=_GAIN_MAP_FIXED.size).astype(np.float32)
    # area coordinates are LONG (signed in the DNG SDK)
    to_signed = lambda v: v - (1 << 32) if v >= (1 << 31) else v  # noqa: E731
    try:
        return GainMap(to_signed(top), to_signed(left), to_signed(bottom), to_signed(right), plane, planes,
                       row_pitch, col_pitch, points_v, points_h, spacing_v, spacing_h, origin_v, origin_h,
                       map_planes, gains.reshape(points_v, points_h, map_planes), opcode_list, flags)
    except ParameterError as exc:
        raise RawReadError(f"GainMap opcode is malformed: {exc}") from None


def read_gain_maps(path: str | os.PathLike) -> list[GainMap]:
    """Read every GainMap opcode of a DNG (OpcodeList1/2/3 of every IFD and SubIFD).

    Returns
    -------
    list of :class:`GainMap` (empty when the file has none), each tagged
    with the opcode list it came from.

    Notes
    -----
    Raises :class:`~ispkit.errors.RawReadError` when the file is missing or
    not a TIFF/DNG.

    References
    ----------
    Adobe DNG Specification 1.4.0.0, tags 51008, 51009, 51022 and chapter 7.
    """
    import tifffile

    p = Path(path)
    if not p.is_file():
        raise RawReadError(f"read_gain_maps: no file at {p}")
    maps: list[GainMap] = []
    try:
        with tifffile.TiffFile(p) as tif:
            for page in _all_pages(tif.pages):
                for code, number in OPCODE_LIST_TAGS.items():
                    tag = page.tags.get(code)
                    if tag is None:
                        continue
                    value = tag.value
                    if isinstance(value, np.ndarray):
                        value = value.tobytes()
                    elif isinstance(value, tuple):
                        value = bytes(value)
                    maps.extend(parse_opcode_list(value, number))
    except (tifffile.TiffFileError, ValueError, OSError) as exc:
        raise RawReadError(f"read_gain_maps: {p} is not a readable TIFF/DNG ({exc})") from None
    return maps


def _all_pages(pages: Iterable[Any]) -> Iterable[Any]:
    for page in pages:
        yield page
        sub = getattr(page, "pages", None)
        if sub:
            yield from _all_pages(sub)
