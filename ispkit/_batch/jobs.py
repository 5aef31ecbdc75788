"""Finding the captures under a folder and naming their outputs inside OUT_DIR.

Policy
------
- Walks IN_DIR recursively, skipping hidden files and folders (names starting
  with ``.``) and OUT_DIR itself when it lies inside IN_DIR.
- Symlinked *files* are read (the output is named after the link); symlinked
  *folders* are not descended (no loops, no escapes from IN_DIR).
- A file is a capture when its extension is a camera-RAW one (it is then
  tried, and reported failed when LibRaw cannot read it), when it is a
  ``.png`` / ``.raw`` mosaic with a JSON sidecar, or when an unknown
  extension starts with a RAW container signature.
- Outputs mirror the relative layout. Inputs of one folder that would share
  an output name (``a.dng`` and ``a.nef``) all keep their extension in the
  output name (``a.dng.jpg``, ``a.nef.jpg``), deterministically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BatchError, ISPError
from ..io.capture import capture_kind

__all__ = ["BatchError", "Job", "FORMATS", "discover", "plan_outputs", "safe_output", "read_source"]

MANIFEST_NAME = "ispkit-manifest.jsonl"
GALLERY_NAME = "index.html"
THUMBS_DIR = ".thumbs"

#: ``--format`` value → (output extension, bit depth).
FORMATS: dict[str, tuple[str, int]] = {"jpg": (".jpg", 8), "png": (".png", 8), "png16": (".png", 16),
                                       "tif16": (".tif", 16)}

#: Camera RAW extensions LibRaw reads (lower case); files with these are always tried.
RAW_EXTENSIONS = frozenset(
    ".3fr .ari .arw .bay .braw .cap .cr2 .cr3 .crw .dcr .dcs .dng .drf .eip .erf .fff .gpr .iiq .k25 .kdc "
    ".mdc .mef .mos .mrw .nef .nrw .orf .pef .ptx .pxn .r3d .raf .raw .rw2 .rwl .rwz .sr2 .srf .srw .sti .x3f"
    .split())

#: Extensions never taken for captures by content (ordinary images, sidecars, documents).
NOT_RAW = frozenset(".jpg .jpeg .png .tif .tiff .webp .gif .bmp .json .xmp .pp3 .txt .md .html .htm .pdf "
                    ".jsonl .toml .csv .py .heic .mp4 .mov .zip".split())

#: Leading bytes of RAW containers met under other extensions.
_SIGNATURES = (b"II*\x00", b"MM\x00*", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00", b"\x00MRM", b"FOVb",
               b"FUJIFILM", b"ARRI")


@dataclass(frozen=True)
class Job:
    """One capture to render: where it is and where its output goes.

    Attributes
    ----------
    source : absolute path of the capture (a symlink is kept as given).
    rel : its path relative to IN_DIR, POSIX style (the manifest key).
    output : output path relative to OUT_DIR, POSIX style.
    """

    source: str
    rel: str
    output: str


def _sniff(path: Path) -> bool:
    """True when ``path`` begins with a RAW container signature (TIFF, ORF, RW2, MRW, X3F, RAF, ARRI, CR3)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head.startswith(_SIGNATURES) or head[4:11] == b"ftypcrx"


def is_capture(path: Path) -> bool:
    """Whether ``path`` is a capture the batch renders (see the module policy)."""
    suffix = path.suffix.lower()
    if suffix in (".png", ".raw"):
        try:
            if capture_kind(path) in ("ntire", "bayer"):
                return True
        except ISPError:
            return False
        return suffix == ".raw"
    if suffix in RAW_EXTENSIONS:
        return True
    return suffix not in NOT_RAW and _sniff(path)


def read_source(source: str) -> Any:
    """Read one capture with :func:`~ispkit.io.read_capture` (camera RAWs, challenge pairs, sidecar mosaics)."""
    from ..io.capture import read_capture
    return read_capture(Path(source))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(in_dir: Path, skip: Path | None) -> list[Path]:
    found: list[Path] = []
    for top, dirs, files in os.walk(in_dir, followlinks=False):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (skip is not None and _inside((here / d).resolve(), skip)))
        found.extend(here / f for f in sorted(files) if not f.startswith("."))
    return found


def discover(in_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Every capture under ``in_dir`` (sorted, recursive), never looking inside ``out_dir``."""
    skip = out_dir.resolve() if out_dir is not None else None
    return [p for p in _walk(in_dir, skip) if p.is_file() and is_capture(p)]


def _base(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel


def _duplicates(names: dict[str, str]) -> set[str]:
    """Keys whose value appears more than once (case-insensitively)."""
    seen: dict[str, list[str]] = {}
    for key, name in names.items():
        seen.setdefault(name.lower(), []).append(key)
    return {k for keys in seen.values() if len(keys) > 1 for k in keys}


def plan_outputs(in_dir: Path, sources: list[Path], ext: str) -> list[Job]:
    """Pair each source with its output name; colliding names keep their extensions.

    ``a.dng`` alone → ``a.jpg``; ``a.dng`` + ``a.nef`` → ``a.dng.jpg`` + ``a.nef.jpg``
    (repeated until no two outputs share a name, e.g. with ``a.dng.nef`` beside them).
    """
    rels = [p.relative_to(in_dir).as_posix() for p in sources]
    full: set[str] = set()
    while True:
        outs = {r: (r if r in full else _base(r)) + ext for r in rels}
        clash = _duplicates(outs) - full
        if not clash:
            break
        full |= clash
    return [Job(source=str(src.absolute()), rel=rel, output=outs[rel]) for src, rel in zip(sources, rels)]


def safe_output(out_dir: Path, rel_output: str) -> Path:
    """The absolute output path, after checking it cannot land outside ``out_dir``.

    Raises :class:`BatchError` when a component is ``..`` or absolute, when a
    folder on the way resolves outside OUT_DIR (a symlink), or when the output
    itself is a symlink (never written through).
    """
    parts = Path(rel_output).parts
    if not parts or Path(rel_output).is_absolute() or ".." in parts:
        raise BatchError(f"batch: output name {rel_output!r} would leave OUT_DIR {str(out_dir)!r}")
    path = out_dir / rel_output
    root = out_dir.resolve()
    if not _inside(path.parent.resolve(), root):
        raise BatchError(f"batch: output {str(path)!r} resolves outside OUT_DIR {str(root)!r} "
                         "(a symlinked folder?); refusing to write there")
    if path.is_symlink():
        raise BatchError(f"batch: output {str(path)!r} is a symlink; refusing to write through it "
                         "(remove the link)")
    return path
