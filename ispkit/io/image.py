"""Write and read display images: 8-bit PNG/JPEG, 16-bit PNG/TIFF, EXIF orientation.

:func:`write_image` quantises a DISPLAY_RGB frame (or a float array in
[0, 1]) with round-half-even, turns it upright according to the EXIF
orientation and writes it atomically. :func:`read_image` is the inverse for
tests and evaluation.

References
----------
CIPA DC-008-2016 *Exif 2.31*, tag 0x0112 Orientation (values 1–8).
ISO/IEC 15948 (PNG), ITU-T T.81 (JPEG), Adobe *TIFF Revision 6.0*.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DomainError, InputError, ParameterError
from ..frame import Domain, Frame
from ._files import atomic_write, check_output_path

__all__ = ["write_image", "read_image", "apply_orientation", "check_image_path", "image_formats", "IMAGE_FORMATS"]

#: file extension → bit depths it can hold.
IMAGE_FORMATS: dict[str, tuple[int, ...]] = {
    ".png": (8, 16),
    ".jpg": (8,),
    ".jpeg": (8,),
    ".tif": (8, 16),
    ".tiff": (8, 16),
}
#: formats written through OpenCV when its build has the encoder (8-bit).
OPTIONAL_FORMATS: dict[str, tuple[int, ...]] = {".webp": (8,)}


def image_formats() -> dict[str, tuple[int, ...]]:
    """File extension → bit depths, for every format :func:`write_image` can write here."""
    import cv2

    extra = {ext: d for ext, d in OPTIONAL_FORMATS.items() if cv2.haveImageWriter(f"x{ext}")}
    return {**IMAGE_FORMATS, **extra}


def check_image_path(path: str | os.PathLike, bit_depth: int = 8, where: str = "write_image", *,
                     folder_must_exist: bool = True) -> Path:
    """Check that an image can be written at ``path`` with ``bit_depth`` before any work is done.

    Raises :class:`~ispkit.errors.ParameterError` naming the extension and the
    formats that can be written (and where 16 bits can go); with
    ``folder_must_exist=False`` a folder the caller will create is fine.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"{where}: path must be a str or os.PathLike, got {type(path).__name__}")
    p = check_output_path(path, where) if folder_must_exist else Path(os.fspath(path)).expanduser()
    ext = p.suffix.lower()
    formats = image_formats()
    if ext not in formats:
        raise ParameterError(f"{where}: cannot write images with the extension {p.suffix!r} ({str(p)!r}); "
                             f"use one of {', '.join(formats)}")
    if isinstance(bit_depth, bool) or bit_depth not in (8, 16):
        raise ParameterError(f"{where}: bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth not in formats[ext]:
        deep = ", ".join(e for e, d in formats.items() if 16 in d)
        raise ParameterError(f"{where}: {ext} files hold 8-bit samples only, got bit_depth={bit_depth}; "
                             f"write 16 bits to {deep} instead")
    return p


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image upright according to its EXIF orientation.

    Parameters
    ----------
    array : H×W or H×W×C image as stored by the camera.
    orientation : EXIF orientation 1..8 (1 = already upright; 6 = rotate 90°
        clockwise to display; 8 = rotate 90° counter-clockwise; 2, 4, 5, 7
        include a mirror).

    Returns
    -------
    The displayed image (a view when possible); H and W swap for 5–8.

    Notes
    -----
    Any domain, any dtype; pixels are moved, never changed.

    References
    ----------
    CIPA DC-008 Exif 2.31, Orientation: the 0th row / 0th column of the stored
    image are the visual top/left (1), top/right (2), bottom/right (3),
    bottom/left (4), left/top (5), right/top (6), right/bottom (7),
    left/bottom (8).
    """
    a = np.asarray(array)
    if a.ndim not in (2, 3):
        raise InputError(f"apply_orientation: expected an H×W or H×W×C image, got shape {a.shape}")
    if isinstance(orientation, bool) or not isinstance(orientation, (int, np.integer)) or orientation not in range(1, 9):
        raise ParameterError(f"apply_orientation: orientation must be an EXIF orientation 1..8, got {orientation!r}")
    o = int(orientation)
    if o == 1:
        return a
    if o == 2:
        return a[:, ::-1]
    if o == 3:
        return a[::-1, ::-1]
    if o == 4:
        return a[::-1, :]
    if o == 5:
        return a.swapaxes(0, 1)
    if o == 6:
        return a[::-1].swapaxes(0, 1)  # rotate 90° clockwise
    if o == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    return a[:, ::-1].swapaxes(0, 1)  # 8: rotate 90° counter-clockwise


def _pixels(image: Any, allow_linear: bool) -> tuple[np.ndarray, int]:
    """The pixel array of a frame or array and its default orientation."""
    if isinstance(image, Frame):
        d = image.domain
        if d is Domain.RAW_PACKED:
            raise DomainError("write_image: a RAW_PACKED frame (4 Bayer planes) is no image; unpack and "
                              "demosaic it, then add a gamma/tone stage")
        if d in (Domain.LINEAR_RGB, Domain.CAMERA_RGB, Domain.RAW_MOSAIC) and not allow_linear:
            what = {Domain.LINEAR_RGB: "scene-linear RGB", Domain.CAMERA_RGB: "linear camera RGB",
                    Domain.RAW_MOSAIC: "a linear Bayer mosaic"}[d]
            raise DomainError(
                f"write_image: the frame is {d} ({what}); encode it for display first — add a Gamma or "
                "tone-curve stage (DISPLAY_RGB) — or pass allow_linear=True to store the linear values")
        return image.data, image.meta.orientation
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except Exception:
            raise InputError(f"write_image: expected a Frame or an array, got {type(image).__name__}") from None
    return image, 1


def _quantise(x: np.ndarray, bit_depth: int) -> np.ndarray:
    """Clip to [0, 1], scale to the full code range and round half to even."""
    target = np.uint8 if bit_depth == 8 else np.uint16
    if x.dtype == bool:
        raise InputError("write_image: boolean images are not supported; convert to float in [0, 1]")
    if np.issubdtype(x.dtype, np.integer):
        if x.dtype != target:
            raise InputError(
                f"write_image: integer pixels must already be {np.dtype(target).name} for bit_depth={bit_depth}, "
                f"got {x.dtype}; pass floats in [0, 1] (quantised for you) or matching integers")
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"write_image: expected float pixels in [0, 1], got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise InputError(f"write_image: the image holds {bad} NaN/inf values; fix the stage that made them "
                         "or np.nan_to_num the array before saving")
    scale = np.float32(255.0 if bit_depth == 8 else 65535.0)
    # scale then clip to [0, scale]: identical to clip-then-scale, and one temporary only
    work = np.multiply(x, scale, dtype=np.float32)
    np.clip(work, np.float32(0.0), scale, out=work)
    np.rint(work, out=work)  # round half to even
    return work.astype(target)


def write_image(image: Frame | np.ndarray, path: str | os.PathLike, bit_depth: int = 8, *,
                orientation: int | None = None, quality: int = 95, allow_linear: bool = False) -> Path:
    """Save a display image as PNG (8/16-bit), JPEG (8-bit), TIFF (8/16-bit) or WebP (8-bit, where OpenCV can).

    Parameters
    ----------
    image : a DISPLAY_RGB frame, or an H×W×3 RGB / H×W grey array: floats in
        [0, 1] (clipped, scaled and rounded half-to-even) or integers already
        of the target type (uint8 for 8-bit, uint16 for 16-bit).
    path : output file; the extension picks the format (.png, .jpg/.jpeg,
        .tif/.tiff, .webp — see :func:`image_formats`). Written atomically: a temp file beside it, then rename.
    bit_depth : 8 or 16.
    orientation : EXIF orientation applied to the pixels before writing;
        default the frame's ``meta.orientation`` (1 for arrays).
    quality : JPEG / WebP quality 1..100.
    allow_linear : also accept LINEAR_RGB / CAMERA_RGB / RAW_MOSAIC frames
        (stored as they are, without an encoding curve).

    Returns
    -------
    The written path.

    Notes
    -----
    DISPLAY_RGB, H×W×3 float32 in [0, 1] in; file out, upright, no
    orientation tag.
    """
    p = check_image_path(path, bit_depth)
    ext = p.suffix.lower()
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ParameterError(f"write_image: quality must be an integer 1..100, got {quality!r}")
    pixels, default_orientation = _pixels(image, allow_linear)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise InputError(f"write_image: expected an H×W×3 RGB or H×W grey image, got shape {pixels.shape}")
    if pixels.size == 0:
        raise InputError(f"write_image: the image is empty (shape {pixels.shape})")
    o = default_orientation if orientation is None else orientation
    codes = _quantise(pixels, bit_depth)
    codes = np.ascontiguousarray(apply_orientation(codes, o))

    if ext in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, codes, photometric="rgb" if codes.ndim == 3 else "minisblack",
                         software="ispkit", metadata=None)
        payload = buf.getvalue()
    else:
        import cv2

        bgr = codes[:, :, ::-1] if codes.ndim == 3 else codes
        params = ([cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg")
                  else [cv2.IMWRITE_WEBP_QUALITY, int(quality)] if ext == ".webp" else [])
        ok, enc = cv2.imencode(ext, np.ascontiguousarray(bgr), params)
        if not ok:
            raise InputError(f"write_image: OpenCV could not encode a {codes.shape} {codes.dtype} image as {ext}")
        payload = enc.tobytes()
    return atomic_write(p, lambda fh: fh.write(payload))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG/JPEG/TIFF image as float32 RGB in [0, 1].

    Notes
    -----
    Returns H×W×3 float32: 8-bit codes / 255, 16-bit codes / 65535 (float
    TIFFs unchanged); grey images are repeated to three channels and an
    alpha channel is dropped. The stored pixel order is kept (no EXIF
    rotation).
    """
    import cv2

    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"read_image: path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise InputError(f"read_image: no such file {str(p)!r}" + (" (it is a directory)" if p.is_dir() else ""))
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if img is None and p.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            img = tifffile.imread(str(p))
            if img.ndim == 3 and img.shape[2] in (3, 4):
                img = np.ascontiguousarray(img[:, :, 2::-1] if img.shape[2] == 3 else img[:, :, [2, 1, 0, 3]])
        except Exception:
            img = None
    if img is None:
        raise InputError(f"read_image: cannot decode {str(p)!r} as an image (PNG, JPEG or TIFF expected)")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]
    else:
        raise InputError(f"read_image: {str(p)!r} has an unsupported layout {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(img.dtype, np.floating):
        return np.ascontiguousarray(img, dtype=np.float32)
    raise InputError(f"read_image: {str(p)!r} has unsupported sample type {img.dtype}")
