"""Read the NTIRE Night Photography Rendering challenge format (16-bit PNG + JSON).

Each capture is a 16-bit greyscale PNG holding the Bayer mosaic in raw
counts, and a JSON of DNG metadata written by the challenge's exifread-based
tools: numbers either plain or as ``{"Fraction": [num, den]}``, lists of one
value for scalars (``"white_level": [15000]``), ``cfa_pattern`` as colour
indices (0 = R, 1 = G, 2 = B) in raster order, ``orientation`` as a number or
as exifread's text (``"Horizontal (normal)"``). The 2022, 2023 and 2024
(Huawei and Canon) variants are all accepted.

References
----------
Ershov et al., "NTIRE 2022 Challenge on Night Photography Rendering", CVPRW
2022 (and the 2023, 2024 editions); data format of the challenge repository
``raw_prc_pipeline``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RawReadError
from ..frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame
from .raw import _check_input_file, _inverse, _noise_pairs

__all__ = ["read_ntire", "parse_ntire_metadata", "EXIFREAD_ORIENTATIONS"]

#: exifread's text for the EXIF Orientation values (CIPA DC-008 Table 4).
EXIFREAD_ORIENTATIONS: dict[str, int] = {
    "horizontal (normal)": 1,
    "mirrored horizontal": 2,
    "rotated 180": 3,
    "mirrored vertical": 4,
    "mirrored horizontal then rotated 90 ccw": 5,
    "rotated 90 cw": 6,
    "mirrored horizontal then rotated 90 cw": 7,
    "rotated 90 ccw": 8,
}

_COLOR_LETTER = {0: "R", 1: "G", 2: "B"}
_KNOWN_KEYS = {"black_level", "white_level", "cfa_pattern", "as_shot_neutral", "color_matrix_1",
               "color_matrix_2", "forward_matrix_1", "forward_matrix_2", "noise_profile", "orientation",
               "linearization_table", "camera_name", "make", "model", "iso", "exposure_time",
               "calibration_illuminant_1", "calibration_illuminant_2"}


def _number(value: Any, where: str) -> float:
    """A float from a plain number, a ``{"Fraction": [n, d]}`` object or a "n/d" string."""
    if isinstance(value, dict) and "Fraction" in value:
        try:
            num, den = value["Fraction"]
            return float(num) / float(den)
        except (TypeError, ValueError, ZeroDivisionError):
            raise RawReadError(f"read_ntire: bad Fraction {value!r} in {where}") from None
    if isinstance(value, str) and "/" in value:
        try:
            num, den = value.split("/", 1)
            return float(num) / float(den)
        except (ValueError, ZeroDivisionError):
            raise RawReadError(f"read_ntire: bad fraction text {value!r} in {where}") from None
    if isinstance(value, bool):
        raise RawReadError(f"read_ntire: expected a number in {where}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RawReadError(f"read_ntire: expected a number in {where}, got {value!r}") from None


def _numbers(value: Any, where: str) -> list[float]:
    """Flatten nested lists of numbers/Fractions into floats."""
    if isinstance(value, (list, tuple)):
        out: list[float] = []
        for v in value:
            out.extend(_numbers(v, where))
        return out
    return [_number(value, where)]


def _orientation(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, (list, tuple)):
        if not value:
            return 1
        value = value[0]
    if isinstance(value, str):
        key = value.strip().lower()
        if key in EXIFREAD_ORIENTATIONS:
            return EXIFREAD_ORIENTATIONS[key]
        try:
            value = int(key)
        except ValueError:
            raise RawReadError(f"read_ntire: unknown orientation {value!r}; expected 1..8 or one of "
                               f"{sorted(EXIFREAD_ORIENTATIONS)}") from None
    o = int(_number(value, "orientation"))
    if o not in range(1, 9):
        raise RawReadError(f"read_ntire: orientation must be 1..8, got {value!r}")
    return o


def parse_ntire_metadata(meta: dict[str, Any], *, where: str = "metadata") -> dict[str, Any]:
    """Turn an NTIRE JSON dict into :class:`~ispkit.frame.CaptureMetadata` keyword arguments.

    Notes
    -----
    ``black_level`` (1 or 4 values, 2×2 raster order), ``white_level``,
    ``cfa_pattern`` (indices → "GBRG" etc.), ``as_shot_neutral`` → ``wb_gains``
    = 1 / neutral (G = 1), ``color_matrix_1/2`` (XYZ→camera) with
    calibration illuminants 17 (A) and 21 (D65) — the Adobe DNG Converter
    convention, recorded as assumed in ``extra`` when the JSON does not say —
    ``cam_to_xyz`` = inverse of the D65 matrix, ``forward_matrix_1/2``,
    ``noise_profile`` (scale, offset), ``orientation``, ``linearization_table``
    (not yet applied), ``camera_name`` → ``model``. Unknown keys go to
    ``extra["ntire"]``.
    """
    if not isinstance(meta, dict):
        raise RawReadError(f"read_ntire: {where} must be a JSON object, got {type(meta).__name__}")
    for key in ("black_level", "white_level", "cfa_pattern"):
        if key not in meta or meta[key] is None:
            raise RawReadError(f"read_ntire: {where} lacks {key!r}; an NTIRE JSON needs black_level, "
                               "white_level and cfa_pattern")
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {"format": "ntire"}

    black = _numbers(meta["black_level"], f"{where}: black_level")
    if len(black) not in (1, 4):
        raise RawReadError(f"read_ntire: {where}: black_level needs 1 or 4 values, got {len(black)}")
    out["black_level"] = np.broadcast_to(np.array(black), (4,)).copy()
    white = _numbers(meta["white_level"], f"{where}: white_level")
    if not white:
        raise RawReadError(f"read_ntire: {where}: white_level is empty")
    out["white_level"] = max(white)
    if len(set(white)) > 1:
        extra["white_level_per_channel"] = white

    cfa = meta["cfa_pattern"]
    if isinstance(cfa, str):
        letters = cfa.strip().upper()
    else:
        try:
            letters = "".join(_COLOR_LETTER[int(_number(c, "cfa_pattern"))] for c in cfa)
        except (KeyError, TypeError):
            raise RawReadError(f"read_ntire: {where}: cfa_pattern must be 4 colour indices "
                               f"(0 = R, 1 = G, 2 = B), got {cfa!r}") from None
    if letters not in CFA_PATTERNS:
        raise RawReadError(f"read_ntire: {where}: cfa_pattern {cfa!r} is not a 2×2 Bayer layout "
                           f"(valid: {', '.join(CFA_PATTERNS)})")
    out["cfa_pattern"] = letters

    if meta.get("as_shot_neutral") is not None:
        neutral = np.array(_numbers(meta["as_shot_neutral"], f"{where}: as_shot_neutral"))
        if neutral.shape != (3,) or np.any(neutral <= 0):
            raise RawReadError(f"read_ntire: {where}: as_shot_neutral must be 3 positive values, "
                               f"got {neutral.tolist()}")
        gains = 1.0 / neutral
        out["wb_gains"] = gains / gains[1]
        extra["as_shot_neutral"] = neutral.tolist()

    matrices = {}
    for k in (1, 2):
        for src, dst in ((f"color_matrix_{k}", f"color_matrix{k}"), (f"forward_matrix_{k}", f"forward_matrix{k}")):
            if meta.get(src) is not None:
                vals = _numbers(meta[src], f"{where}: {src}")
                if len(vals) != 9:
                    raise RawReadError(f"read_ntire: {where}: {src} needs 9 values, got {len(vals)}")
                matrices[dst] = np.array(vals).reshape(3, 3)
    out.update(matrices)
    given = {k: meta.get(f"calibration_illuminant_{k}") for k in (1, 2)}
    if "color_matrix1" in matrices:
        out["calibration_illuminant1"] = int(_number(given[1], "calibration_illuminant_1")) if given[1] else (
            17 if "color_matrix2" in matrices else 21)
    if "color_matrix2" in matrices:
        out["calibration_illuminant2"] = int(_number(given[2], "calibration_illuminant_2")) if given[2] else 21
    if any(f"color_matrix{k}" in matrices and not given[k] for k in (1, 2)):
        extra["calibration_illuminants_assumed"] = True
    d65 = [k for k in (1, 2) if out.get(f"calibration_illuminant{k}") == 21 and f"color_matrix{k}" in matrices]
    pick = d65[-1] if d65 else (2 if "color_matrix2" in matrices else 1 if "color_matrix1" in matrices else None)
    if pick is not None:
        out["cam_to_xyz"] = _inverse(matrices[f"color_matrix{pick}"])

    if meta.get("noise_profile") is not None:
        pairs = _noise_pairs(_numbers(meta["noise_profile"], f"{where}: noise_profile"))
        if pairs is None:
            extra["noise_profile_raw"] = meta["noise_profile"]
        out["noise_profile"] = pairs
    if meta.get("linearization_table") is not None:
        out["linearization_table"] = np.array(_numbers(meta["linearization_table"], f"{where}: linearization_table"))
    out["orientation"] = _orientation(meta.get("orientation"))
    model = meta.get("model") or meta.get("camera_name")
    if isinstance(model, str) and model.strip():
        out["model"] = model.strip()
    if isinstance(meta.get("make"), str) and meta["make"].strip():
        out["make"] = meta["make"].strip()
    for key in ("iso", "exposure_time"):
        if meta.get(key) is not None:
            out[key] = _numbers(meta[key], f"{where}: {key}")[0]
    rest = {k: v for k, v in meta.items() if k not in _KNOWN_KEYS}
    if rest:
        extra["ntire"] = rest
    out["extra"] = extra
    return out


def read_ntire(png_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> Frame:
    """Read an NTIRE Night Photography Rendering capture (16-bit PNG mosaic + JSON).

    Parameters
    ----------
    png_path : the greyscale 16-bit (or 8-bit) PNG holding the Bayer mosaic.
    json_path : its metadata; default the ``.json`` with the same stem.

    Returns
    -------
    Frame
        RAW_MOSAIC, H×W float32 raw counts (not black-subtracted) with the
        JSON metadata (see :func:`parse_ntire_metadata`).

    References
    ----------
    NTIRE Night Photography Rendering challenge, ``raw_prc_pipeline``
    (``json_read`` with a Fraction object hook).
    """
    import cv2

    p = _check_input_file(png_path, "read_ntire")
    j = Path(os.fspath(json_path)) if json_path is not None else p.with_suffix(".json")
    if not j.is_file():
        raise RawReadError(f"read_ntire: metadata JSON {str(j)!r} not found; pass json_path=... "
                           "(NTIRE captures come as NAME.png + NAME.json)")
    try:
        meta = json.loads(j.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RawReadError(f"read_ntire: cannot parse {str(j)!r} as JSON ({exc})") from None
    fields = parse_ntire_metadata(meta, where=str(j))
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise RawReadError(f"read_ntire: OpenCV cannot decode {str(p)!r} as an image; it should be a "
                           "16-bit greyscale PNG of the Bayer mosaic")
    if img.ndim != 2:
        raise RawReadError(f"read_ntire: {str(p)!r} has shape {img.shape}; the mosaic PNG must be a single "
                           "grey channel (is this the rendered JPEG/PNG instead of the raw?)")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise RawReadError(f"read_ntire: {str(p)!r} is {img.shape[1]}×{img.shape[0]}, too small for a mosaic")
    if not fields["white_level"] > float(np.max(fields["black_level"])):
        raise RawReadError(f"read_ntire: {str(j)!r}: white_level {fields['white_level']} must exceed the "
                           f"black levels {fields['black_level'].tolist()}")
    fields["extra"]["json_path"] = str(j)
    md = CaptureMetadata(source=str(p), **fields)
    return Frame(data=img.astype(np.float32), domain=Domain.RAW_MOSAIC, meta=md)
