"""Cheap up-front checks of dataset files: image sizes from PNG/JPEG headers, ``.npy`` shapes.

Reading a header costs microseconds, so a loader can check tens of thousands of
files before training starts and name the first bad one.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ...errors import InputError

__all__ = ["IMAGE_SUFFIXES", "image_size", "npy_shape", "sorted_files", "partner"]

#: Suffixes read as display images (RGB targets and sources).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png_size(head: bytes) -> tuple[int, int, int]:
    width, height = struct.unpack(">II", head[16:24])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(head[25], 0)
    return height, width, channels


def _jpeg_size(fh) -> tuple[int, int, int] | None:
    fh.seek(2)
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
            continue
        length = struct.unpack(">H", fh.read(2))[0]
        if marker[1] in _SOF:
            _, height, width, channels = struct.unpack(">BHHB", fh.read(6))
            return height, width, channels
        fh.seek(length - 2, 1)


def image_size(path: Path) -> tuple[int, int, int]:
    """Return (height, width, channels) of an image file, from its header where possible.

    Raises
    ------
    InputError : the file is missing, empty, or not a decodable image (named in the message).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 26:
                return _png_size(head)
            if head[:2] == b"\xff\xd8":
                size = _jpeg_size(fh)
                if size is not None:
                    return size
    except (OSError, struct.error) as exc:
        raise InputError(f"cannot read {str(path)!r} ({exc}); remove or replace the file") from None
    return _decoded_size(path)


def _decoded_size(path: Path) -> tuple[int, int, int]:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{str(path)!r} is not a readable image (PNG, JPEG or TIFF expected); "
                         "remove or replace the file")
    return img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2]


def npy_shape(path: Path) -> tuple[int, ...]:
    """Return the shape stored in a ``.npy`` header (the data is not read)."""
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except (OSError, ValueError) as exc:
        raise InputError(f"{str(path)!r} is not a readable .npy array ({exc}); remove or replace the file") from None


def _natural_key(path: Path) -> tuple:
    stem = path.stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def sorted_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``folder`` with one of ``suffixes`` (case-insensitive), numbers in numeric order first."""
    if not folder.is_dir():
        raise InputError(f"dataset folder {str(folder)!r} does not exist or is not a folder")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    return sorted(files, key=_natural_key)


def partner(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """The file ``folder/stem.<suffix>`` for the first suffix (either case) that exists, or ``None``."""
    for suffix in suffixes:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if cand.is_file():
                return cand
    return None
