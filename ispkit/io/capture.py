"""One reader for every capture ispkit understands, chosen from the file itself.

:func:`read_capture` is what the command line and :func:`ispkit.render` read
with: camera RAW files through LibRaw (:func:`~ispkit.io.read_raw`), NTIRE
night-challenge PNG + JSON pairs given either file (:func:`~ispkit.io.read_ntire`),
and headerless ``.raw`` / 16-bit ``.png`` Bayer mosaics with a JSON sidecar
(:func:`~ispkit.io.load_bayer_raw`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ParameterError, RawReadError
from ..frame import Frame
from .ntire import read_ntire
from .raw import _find_sidecar, load_bayer_raw, read_raw

__all__ = ["read_capture", "capture_kind"]

#: Mosaic containers that a JSON sidecar describes (LibRaw cannot read them).
MOSAIC_SUFFIXES = (".png", ".raw")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_ntire(meta: dict[str, Any] | None) -> bool:
    """NTIRE metadata: ``cfa_pattern`` as a list of colour indices with black and white levels.

    (``as_shot_neutral`` is absent from three of the four published challenge
    JSONs, so it does not decide; a sidecar names its CFA with letters.)
    """
    return bool(meta) and isinstance(meta.get("cfa_pattern"), list) and "black_level" in meta \
        and "white_level" in meta


def _mosaic_beside(json_path: Path) -> Path | None:
    for suffix in MOSAIC_SUFFIXES:
        cand = json_path.with_suffix(suffix)
        if cand.is_file():
            return cand
    return None


def capture_kind(path: str | os.PathLike) -> str:
    """Which reader :func:`read_capture` would use: ``"ntire"``, ``"bayer"`` or ``"raw"``.

    Returns ``"raw"`` for anything that is not a sidecar-described mosaic;
    LibRaw then decides whether it can read it.
    """
    p = Path(os.fspath(path))
    suffix = p.suffix.lower()
    if suffix == ".json":
        mosaic = _mosaic_beside(p)
        if mosaic is None:
            raise RawReadError(f"read_capture: {str(p)!r} is a JSON file and no mosaic (.png or .raw) with "
                               "the same name lies beside it; pass the mosaic, or put it next to the JSON")
        return "ntire" if _is_ntire(_json(p)) and mosaic.suffix.lower() == ".png" else "bayer"
    if suffix in MOSAIC_SUFFIXES:
        same = p.with_suffix(".json")
        if suffix == ".png" and same.is_file() and _is_ntire(_json(same)):
            return "ntire"
        if _find_sidecar(p) is not None:
            return "bayer"
    return "raw"


def read_capture(path: str | os.PathLike) -> Frame:
    """Read a RAW capture of any kind ispkit knows, picking the reader from the file.

    Parameters
    ----------
    path : a camera RAW file (DNG, NEF, CR2 …); an NTIRE night-challenge
        capture given as its PNG or its JSON; a headerless ``.raw`` or a 16-bit
        ``.png`` mosaic (or its JSON sidecar).

    Returns
    -------
    Frame
        RAW_MOSAIC, H×W float32 raw counts with the metadata the file carries.

    Notes
    -----
    NTIRE pairs are ``NAME.png`` + ``NAME.json`` with the challenge's keys
    (``cfa_pattern`` as colour indices, ``black_level``, ``white_level`` …); any other
    JSON beside a mosaic is read as a sidecar (see :func:`load_bayer_raw`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"read_capture: path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(os.fspath(path)).expanduser()
    kind = capture_kind(p)
    if kind == "raw":
        return read_raw(p)
    mosaic = _mosaic_beside(p) if p.suffix.lower() == ".json" else p
    json_path = p if p.suffix.lower() == ".json" else None
    if kind == "ntire":
        return read_ntire(mosaic, json_path)
    return load_bayer_raw(mosaic, json_path)
