"""Previews of intermediate frames and contact sheets (``ispkit render --debug-dir``)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from .frame import Domain, Frame, cfa_color_indices

__all__ = ["frame_preview", "contact_sheet", "write_debug_dir"]


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def frame_preview(frame: Frame) -> np.ndarray:
    """A viewable H×W×3 float32 [0, 1] picture of any frame.

    Mosaics are shown as colour-coded CFA samples scaled by their white level;
    linear RGB is sRGB-encoded for viewing; display RGB is shown as is.
    """
    d = np.asarray(frame.data, dtype=np.float32)
    if frame.domain is Domain.RAW_MOSAIC:
        m = frame.meta
        black = float(np.mean(m.black_level))
        scale = max(float(m.white_level) - black, 1e-6)
        v = np.clip((d - black) / scale, 0, 1)
        rgb = np.zeros(d.shape + (3,), np.float32)
        idx = np.tile(cfa_color_indices(m.cfa_pattern or "RGGB"), (d.shape[0] // 2 + 1, d.shape[1] // 2 + 1))
        idx = idx[: d.shape[0], : d.shape[1]]
        for c in range(3):
            rgb[..., c] = np.where(idx == c, v, 0)
        return _srgb_encode(rgb).astype(np.float32)
    if frame.domain is Domain.RAW_PACKED:
        r, g1, g2, b = (d[..., i] for i in range(4))
        return _srgb_encode(np.stack([r, (g1 + g2) / 2, b], axis=-1)).astype(np.float32)
    if frame.domain is Domain.DISPLAY_RGB:
        return np.clip(d, 0, 1)
    return _srgb_encode(d).astype(np.float32)


def contact_sheet(previews: Mapping[str, np.ndarray], *, thumb_width: int = 320, columns: int = 4) -> np.ndarray:
    """Tile labelled thumbnails into one uint8 RGB image."""
    thumbs = []
    for name, img in previews.items():
        h, w = img.shape[:2]
        tw = thumb_width
        th = max(1, int(round(h * tw / max(w, 1))))
        t = cv2.resize(np.ascontiguousarray(img, dtype=np.float32), (tw, th), interpolation=cv2.INTER_AREA)
        t8 = (np.clip(t, 0, 1) * 255 + 0.5).astype(np.uint8)
        label = np.full((22, tw, 3), 32, np.uint8)
        cv2.putText(label, name[:40], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        thumbs.append(np.vstack([label, t8]))
    if not thumbs:
        return np.zeros((1, 1, 3), np.uint8)
    cell_h = max(t.shape[0] for t in thumbs)
    rows = []
    for i in range(0, len(thumbs), columns):
        row = [np.pad(t, ((0, cell_h - t.shape[0]), (0, 0), (0, 0))) for t in thumbs[i:i + columns]]
        while len(row) < columns:
            row.append(np.zeros((cell_h, thumb_width, 3), np.uint8))
        rows.append(np.hstack(row))
    return np.vstack(rows)


def write_debug_dir(intermediates: Mapping[str, Frame], directory: str | Path) -> list[Path]:
    """Write each intermediate as ``NN_name.png`` and a ``contact_sheet.png``; return the paths."""
    from .io.image import write_image

    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    previews = {}
    for i, (name, frame) in enumerate(intermediates.items()):
        prev = frame_preview(frame)
        previews[name] = prev
        written.append(write_image(prev, out_dir / f"{i:02d}_{name}.png", bit_depth=8))
    sheet = contact_sheet(previews).astype(np.float32) / 255.0
    written.append(write_image(sheet, out_dir / "contact_sheet.png", bit_depth=8))
    return written
