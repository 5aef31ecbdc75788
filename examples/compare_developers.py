"""Contact sheet: the real RAW files rendered by ispkit `default` beside other raw developers.

Columns: ispkit's ``default`` preset, rawpy's default ``postprocess()``
(LibRaw: AHD, daylight multipliers, no highlight recovery),
RawTherapee's neutral profile (``rawtherapee-cli`` with no profile) and
darktable's defaults (``darktable-cli``, scene-referred). A tool that is not
installed is skipped with a printed note. Rows: the files.

Run:
    python examples/compare_developers.py [OUTPUT_DIR] [--files F ...] [--width PX]
                                          [--developers ispkit,rawpy,rawtherapee,darktable]
    python examples/compare_developers.py OUT --fast   # ispkit + rawpy only, small (what the tests run)

Without ``--files`` it uses the Blackmagic DNG and the Kodak DC50 file in
../shared/data/raw; when those are absent it writes a synthetic capture as a
DNG and compares on that.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import ispkit
from ispkit.io.image import apply_orientation

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
DEFAULT_FILES = ("blackmagic_pocket4k.dng", "kodak_dc50.kdc")
DEVELOPERS = ("ispkit", "rawpy", "rawtherapee", "darktable")


def render_ispkit(path: Path, work: Path, fast: bool) -> np.ndarray:
    """ispkit's default preset, 8-bit sRGB, turned upright."""
    frame = ispkit.read_raw(path)
    codes = ispkit.render(frame, ispkit.load_preset("default"), bit_depth=8)
    return apply_orientation(codes, frame.meta.orientation)


def render_rawpy(path: Path, work: Path, fast: bool) -> np.ndarray:
    """rawpy's default postprocess() (half size in --fast mode)."""
    import rawpy

    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(half_size=fast)


def render_rawtherapee(path: Path, work: Path, fast: bool) -> np.ndarray:
    """rawtherapee-cli without a profile: RawTherapee's neutral processing profile."""
    out = work / f"{path.stem}.rt.png"
    cmd = ["rawtherapee-cli", "-o", str(out), "-n", "-b8", "-Y", "-q", "-c", str(path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return _read_rgb(out)


def render_darktable(path: Path, work: Path, fast: bool) -> np.ndarray:
    """darktable-cli with its defaults (a throw-away config dir and in-memory library)."""
    out = work / f"{path.stem}.dt.png"
    conf = work / "darktable-config"
    conf.mkdir(exist_ok=True)
    cmd = ["darktable-cli", str(path), str(out), "--width", "1600", "--height", "1600", "--hq", "false",
           "--core", "--configdir", str(conf), "--library", ":memory:"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    return _read_rgb(out)


RENDERERS = {"ispkit": render_ispkit, "rawpy": render_rawpy, "rawtherapee": render_rawtherapee,
             "darktable": render_darktable}
TOOLS = {"rawtherapee": "rawtherapee-cli", "darktable": "darktable-cli"}


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError(f"could not read {path}")
    return bgr[..., ::-1]


def _to_u8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    return img.astype(np.uint8)


def _tile(img: np.ndarray, width: int, height: int, label: str) -> np.ndarray:
    """Fit ``img`` into a width × height cell on dark grey, with a label bar above it."""
    img = _to_u8(img)
    scale = min(width / img.shape[1], height / img.shape[0])
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    small = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA)
    bar = 28
    cell = np.full((height + bar, width, 3), 40, np.uint8)
    y0 = bar + (height - size[1]) // 2
    x0 = (width - size[0]) // 2
    cell[y0:y0 + size[1], x0:x0 + size[0]] = small
    cv2.putText(cell, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return cell


def _reason(exc: Exception) -> str:
    """One line saying why a developer failed (the tool's last meaningful stderr line)."""
    if isinstance(exc, subprocess.CalledProcessError):
        lines = [ln.strip() for ln in (exc.stderr or b"").decode(errors="replace").splitlines()
                 + (exc.stdout or b"").decode(errors="replace").splitlines()]
        hits = [ln for ln in lines if "rror" in ln or "could not" in ln or "failed" in ln]
        return f"exit status {exc.returncode}: {(hits or lines or [''])[0][:160]}"
    return f"{type(exc).__name__}: {exc}"[:200]


def _synthetic_dng(work: Path) -> Path:
    from ispkit.io.dng import write_dng
    from ispkit.io.synthetic import synthesize_capture

    m = synthesize_capture(size=(240, 320), seed=0).frame
    meta = m.meta
    path = work / "synthetic.dng"
    write_dng(path, np.rint(m.data).astype(np.uint16), meta.cfa_pattern, black_level=meta.black_level,
              white_level=int(meta.white_level), color_matrix1=meta.color_matrix1,
              calibration_illuminant1=meta.calibration_illuminant1 or 21, as_shot_neutral=1.0 / meta.wb_gains)
    return path


def _stats(img: np.ndarray) -> str:
    u8 = _to_u8(img)
    clipped = float(np.mean(np.any(u8 >= 255, axis=-1)))
    return f"median {float(np.median(u8)):5.1f}, pixels with a channel at 255: {100 * clipped:5.2f} %"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default="example-output", type=Path)
    ap.add_argument("--files", nargs="*", type=Path, help="RAW files (default: the shared Blackmagic and Kodak)")
    ap.add_argument("--width", type=int, default=480, help="cell width in the sheet (px)")
    ap.add_argument("--developers", default=",".join(DEVELOPERS), help="comma-separated subset of " +
                    ", ".join(DEVELOPERS))
    ap.add_argument("--fast", action="store_true", help="ispkit and rawpy only, small cells (for tests)")
    args = ap.parse_args(argv)
    devs = [d.strip() for d in args.developers.split(",") if d.strip()]
    unknown = sorted(set(devs) - set(DEVELOPERS))
    if unknown:
        ap.error(f"unknown developer(s) {unknown}; choose from {list(DEVELOPERS)}")
    width = args.width
    if args.fast:
        devs = [d for d in devs if d in ("ispkit", "rawpy")]
        width = min(width, 240)
    for d in list(devs):
        if d in TOOLS and shutil.which(TOOLS[d]) is None:
            print(f"note: {TOOLS[d]} is not installed; skipping the {d} column "
                  f"(Debian: apt-get install {d})")
            devs.remove(d)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = list(args.files or [])
        if not files:
            files = [DATA / f for f in DEFAULT_FILES if (DATA / f).exists()]
            if args.fast:
                files = files[-1:]  # the small Kodak file only
            if not files:
                print(f"note: no RAW files in {DATA}; comparing on a synthetic capture written as DNG")
                files = [_synthetic_dng(work)]
        height = width * 2 // 3
        rows = []
        for path in files:
            cells = []
            for d in devs:
                t0 = time.perf_counter()
                try:
                    img = RENDERERS[d](path, work, args.fast)
                except Exception as exc:  # a developer failing on one file is a finding, not a crash
                    reason = _reason(exc)
                    print(f"{path.name:28s} {d:12s} failed: {reason}")
                    cell = _tile(np.full((height, width, 3), 64, np.uint8), width, height, f"{d}: failed")
                    for k in range(0, min(len(reason), 6 * (width // 8)), width // 8):
                        cv2.putText(cell, reason[k:k + width // 8], (6, 60 + 2 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                                    (235, 235, 235), 1, cv2.LINE_AA)
                    cells.append(cell)
                    continue
                dt = time.perf_counter() - t0
                print(f"{path.name:28s} {d:12s} {img.shape[1]}x{img.shape[0]} in {dt:5.1f} s; {_stats(img)}")
                cells.append(_tile(img, width, height, f"{d}  ({path.name})"))
            rows.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(rows, axis=0)
    out = args.out_dir / "compare_developers.png"
    cv2.imwrite(str(out), sheet[..., ::-1].copy())
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]}: {len(files)} file(s) x {len(devs)} developer(s))")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
