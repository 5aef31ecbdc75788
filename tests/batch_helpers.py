"""Small capture folders for the ``ispkit batch`` tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from ispkit.io.dng import write_dng
from ispkit.io.synthetic import synthesize_capture
from tests.conftest import DATA

SIZE = (128, 192)


def make_dng(path: Path, seed: int = 0, size: tuple[int, int] = SIZE) -> Path:
    """A small synthetic ColorChecker DNG (as ``ispkit demo`` writes one)."""
    frame = synthesize_capture(size=size, seed=seed).frame
    m = frame.meta
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(write_dng(path, frame.data.round().astype("uint16"), m.cfa_pattern, black_level=m.black_level,
                          white_level=m.white_level, color_matrix1=m.color_matrix1,
                          calibration_illuminant1=m.calibration_illuminant1 or 21,
                          as_shot_neutral=1.0 / m.wb_gains, make="ispkit", model="Synthetic"))


def make_ntire(folder: Path, stem: str = "night_pair") -> Path | None:
    """A challenge PNG + JSON pair (None when ../shared/data/night is absent)."""
    src = DATA / "night" / "nightimaging24_test_huawei.json"
    if not src.is_file():
        return None
    shutil.copy(src, folder / f"{stem}.json")
    mosaic = np.random.default_rng(3).integers(200, 9000, size=(64, 96), dtype=np.uint16)
    assert cv2.imwrite(str(folder / f"{stem}.png"), mosaic)
    return folder / f"{stem}.png"


def good_folder(root: Path, n: int) -> list[Path]:
    """``n`` good DNGs, half of them in a sub-folder with an odd name."""
    return [make_dng(root / ("sub dir é" if i % 2 else ".") / f"img {i:02d}.dng", seed=i) for i in range(n)]


def mixed_folder(root: Path) -> dict[str, list[str]]:
    """Good RAWs, a collision, an NTIRE pair, a truncated DNG, a text .dng, a non-CFA RAW, stubs.

    Returns the relative input names expected to render ("good") and to fail ("bad").
    """
    good = [make_dng(root / "a.dng", 0), make_dng(root / "deep" / "er" / "c.dng", 2)]
    shutil.copy(good[0], root / "a.nef")  # collides with a.dng
    good.append(root / "a.nef")
    bad = [root / "truncated.dng", root / "text.dng"]
    (root / "truncated.dng").write_bytes(good[0].read_bytes()[:4000])
    (root / "text.dng").write_text("this is not a RAW file\n")
    pair = make_ntire(root)
    if pair is not None:
        good.append(pair)
    for extra in [DATA / "raw" / "nikon_coolscan_filmscan.nef", *sorted((DATA / "raw" / "stubs").glob("*"))[:2]]:
        if extra.is_file():
            shutil.copy(extra, root / extra.name)
            bad.append(root / extra.name)
    (root / ".hidden.dng").write_text("hidden, never read")
    (root / "notes.txt").write_text("not a capture")
    return {"good": [p.relative_to(root).as_posix() for p in good],
            "bad": [p.relative_to(root).as_posix() for p in bad]}


def manifest(out: Path) -> list[dict]:
    """The manifest lines."""
    import json
    return [json.loads(line) for line in (out / "ispkit-manifest.jsonl").read_text().splitlines()]


def leftovers(out: Path) -> list[Path]:
    """Temporary files an interrupted write could leave."""
    return [p for p in out.rglob("*") if p.name.endswith(".part") or ".ispkit-write-test" in p.name]
