"""Atomic file output shared by the image and DNG writers."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..errors import ParameterError

__all__ = ["atomic_write", "check_output_path"]


def check_output_path(path: str | os.PathLike, where: str) -> Path:
    """Return ``path`` as a Path after checking that its folder exists and it is no folder."""
    p = Path(os.fspath(path)).expanduser()
    if p.is_dir():
        raise ParameterError(f"{where}: output path {str(p)!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ParameterError(
            f"{where}: output folder {str(parent)!r} does not exist; create it first "
            f"(e.g. Path({str(parent)!r}).mkdir(parents=True))"
        )
    return p


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[tuple[BinaryIO, str]]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    """The process umask, read without changing it (Linux), else the common 0o022."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(fh)`` into a temporary file beside ``path``, then rename.

    A failure at any point leaves neither a partial ``path`` nor the
    temporary file behind; an existing ``path`` is replaced only on success.
    """
    with _temp_beside(path) as (fh, tmp):
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        # mkstemp creates 0600; give the result the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
