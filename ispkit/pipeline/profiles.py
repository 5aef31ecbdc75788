"""Camera-profile readers by file suffix, so stages can use a profile file without importing ``ispkit.io``.

``ispkit.io.dng`` registers its DCP reader here when it is imported (as
``import ispkit`` does); :class:`ispkit.stages.color_matrix.CameraProfile`
asks :func:`read_camera_profile` for the tags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..errors import ParameterError, unknown_name

__all__ = ["register_profile_reader", "read_camera_profile", "PROFILE_READERS"]

#: file suffix (lower case, with the dot) → reader returning the profile's tags as a dict
PROFILE_READERS: dict[str, Callable[[Path], dict[str, Any]]] = {}


def register_profile_reader(suffix: str, reader: Callable[[Path], dict[str, Any]]) -> None:
    """Register ``reader`` for camera-profile files ending in ``suffix`` (e.g. ``".dcp"``)."""
    if not suffix.startswith(".") or len(suffix) < 2:
        raise ParameterError(f"register_profile_reader: suffix must look like '.dcp', got {suffix!r}")
    PROFILE_READERS[suffix.lower()] = reader


def read_camera_profile(path: str | os.PathLike) -> dict[str, Any]:
    """Read a camera profile file with the reader registered for its suffix.

    Raises
    ------
    UnknownNameError : no reader for the suffix (``import ispkit`` registers ``.dcp``).
    """
    p = Path(path)
    reader = PROFILE_READERS.get(p.suffix.lower())
    if reader is None:
        raise unknown_name("camera profile format", p.suffix or "(no suffix)", sorted(PROFILE_READERS) or [".dcp"],
                           f"read_camera_profile({str(p)!r}); import ispkit (or ispkit.io) to register the readers")
    return reader(p)
