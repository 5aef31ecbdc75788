"""Re-demosaicing next to clipped highlights: the pixels where a linear demosaic leaves false colour.

Malvar–He–Cutler (and bilinear) interpolation adds each missing colour's
neighbours plus a Laplacian correction from the pixel's own colour. Where a
clipped or nearly clipped photosite meets darker ones — a specular point, the
edge of a white car roof — the own colour jumps by a large step and the
correction overshoots, so isolated cyan, yellow and magenta specks ring the
highlight (a display transform with highlight roll-off keeps them visible).
Directional methods (RCD, Menon) interpolate along the edge and do not.

:func:`near_clip_repair` finds the *edge* highlight photosites (at or above
their colour's level, with a photosite below its level among their 8
neighbours), marks every pixel within ``radius`` of one, and returns the
values a directional method gives there.
The work is sparse: only the 32×32 tiles holding marked pixels are demosaiced,
each in a window with a margin of the method's stencil reach, so the values
equal a full-frame run of that method (the frame border mirrors the same
way); the windows go through the method in one call, stacked.
Inside a large blown area nothing is marked (no unclipped neighbour), so the
cost follows the highlights' outline, not their area.

The caller supplies the window reader, so the same numbers come out of the
:class:`~ispkit.stages.demosaic.Demosaic` stage (slices of its input) and the
fused render (raw samples normalised and rebuilt on the fly).

References
----------
The specks and their cause: Malvar, H. S., He, L.-W., Cutler, R., "High-quality
linear interpolation for demosaicing of Bayer-patterned color images", ICASSP
2004 (the gain-corrected kernels); darktable and RawTherapee use RCD by
default for this reason (Sanz Rodríguez, "Ratio Corrected Demosaicing", 2017).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ..frame import cfa_color_indices

__all__ = ["NEAR_CLIP_TILE", "near_clip_repair"]

#: Side of the tiles the repair visits (even, so every tile starts on the CFA's own parity).
NEAR_CLIP_TILE = 32


def _tiles_near(rows: np.ndarray, cols: np.ndarray, reach: int, shape: tuple[int, int]) -> np.ndarray:
    """(ty, tx) of every tile that holds a pixel within ``reach`` of a listed photosite."""
    t = NEAR_CLIP_TILE
    ty_max, tx_max = (shape[0] - 1) // t, (shape[1] - 1) // t
    found = []
    for dy in (-reach, reach):
        for dx in (-reach, reach):
            ty = np.clip((rows + dy) // t, 0, ty_max)
            tx = np.clip((cols + dx) // t, 0, tx_max)
            found.append(ty * (tx_max + 1) + tx)
    ids = np.unique(np.concatenate(found))
    return np.stack([ids // (tx_max + 1), ids % (tx_max + 1)], axis=1)


def _padded_window(window: Callable[[int, int, int, int], np.ndarray], shape: tuple[int, int],
                   y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``[y0:y1, x0:x1]`` of the mosaic, mirrored whole-sample (Bayer parity kept) beyond the frame."""
    h, w = shape
    cy0, cy1, cx0, cx1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    win = window(cy0, cy1, cx0, cx1)
    pads = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1))
    if any(p for pair in pads for p in pair):
        win = np.pad(win, pads, mode="reflect")
    return win


def near_clip_repair(shape: tuple[int, int], cfa_pattern: str, clip_levels: np.ndarray, rows: np.ndarray,
                     cols: np.ndarray, window: Callable[[int, int, int, int], np.ndarray],
                     demosaic_window: Callable[[np.ndarray], np.ndarray], halo: int,
                     radius: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The directional method's values at every pixel within ``radius`` of an edge highlight photosite.

    Parameters
    ----------
    shape : (H, W) of the mosaic (each at least ``NEAR_CLIP_TILE`` + 2 px, so the
        mirrored margins stay inside the frame).
    cfa_pattern : the mosaic's CFA pattern (read from its top-left pixel).
    clip_levels : (3,) per-colour level from which a photosite counts as a highlight.
    rows, cols : the highlight photosites (any order; photosites listed that
        are below their level are ignored) — the candidates, so nothing is scanned.
    window : ``window(y0, y1, x0, x1)`` → the float32 mosaic ``[y0:y1, x0:x1]``
        (``y0``, ``x0`` even, inside the frame).
    demosaic_window : float32 mosaic (same CFA pattern, whole-sample mirrored
        borders) → H×W×3 RGB. It is called once, on the marked tiles' windows
        stacked into one tall mosaic: each window keeps a margin of ``halo``
        rows, so what one reads of its neighbour in the stack never reaches the
        tile inside it.
    halo : the method's stencil reach in pixels: a window this much larger
        than a tile gives the full-frame values inside the tile.
    radius : pixels farther than this from every edge highlight photosite keep
        the caller's values.

    Returns
    -------
    (ys, xs, rgb): pixel coordinates (int64) and their (N, 3) float32 values,
    each pixel once; empty when there is no highlight edge.
    """
    h, w = shape
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.size == 0 or h < 2 or w < 2:
        return empty
    t = NEAR_CLIP_TILE
    reach = radius + 1            # an edge photosite lies within 1 px of a darker one
    margin = max(reach + 1, halo)
    margin += margin % 2          # even: windows keep the CFA parity
    side = t + 2 * margin
    levels = np.asarray(clip_levels, dtype=np.float32)[cfa_color_indices(cfa_pattern)]  # 2×2
    level_map = np.tile(levels, (side // 2, side // 2))
    ker_edge = np.ones((3, 3), np.uint8)
    ker_near = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    wins, marks, origins = [], [], []
    for ty, tx in _tiles_near(rows, cols, reach, shape):
        y0, x0 = int(ty) * t, int(tx) * t
        win = _padded_window(window, shape, y0 - margin, y0 + t + margin, x0 - margin, x0 + t + margin)
        high = (win >= level_map).astype(np.uint8)
        if not high.any():
            continue
        # edge highlights: with an 8-neighbour below its level (beyond the frame border: mirrored)
        edge = high & (1 - cv2.erode(high, ker_edge, borderType=cv2.BORDER_REPLICATE))
        near = cv2.dilate(edge, ker_near)[margin:margin + t, margin:margin + t].astype(bool)
        near[max(0, h - y0):, :] = False   # the last tiles may reach past the frame
        near[:, max(0, w - x0):] = False
        if not near.any():
            continue
        wins.append(win)
        marks.append(near)
        origins.append((y0, x0))
    if not wins:
        return empty
    rgb = demosaic_window(np.concatenate(wins, axis=0))
    ys_out, xs_out, rgb_out = [], [], []
    for k, (near, (y0, x0)) in enumerate(zip(marks, origins)):
        yy, xx = np.nonzero(near)
        ys_out.append(yy + y0)
        xs_out.append(xx + x0)
        rgb_out.append(rgb[k * side + margin + yy, margin + xx])
    return (np.concatenate(ys_out), np.concatenate(xs_out),
            np.concatenate(rgb_out).astype(np.float32, copy=False))
