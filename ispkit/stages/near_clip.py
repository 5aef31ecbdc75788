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
way); the windows go through the method in one call, laid out in a grid.
Inside a large blown area nothing is marked (no unclipped neighbour), so the
cost follows the highlights' outline, not their area.

The caller says how to read the samples, so the same numbers come out of the
:class:`~ispkit.stages.demosaic.Demosaic` stage (its input as it is) and the
fused render (raw samples normalised and rebuilt on the fly, as its kernel
loads them).

References
----------
The specks and their cause: Malvar, H. S., He, L.-W., Cutler, R., "High-quality
linear interpolation for demosaicing of Bayer-patterned color images", ICASSP
2004 (the gain-corrected kernels); darktable and RawTherapee use RCD by
default for this reason (Sanz Rodríguez, "Ratio Corrected Demosaicing", 2017).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..frame import cfa_color_indices
from ._kernels.near_clip import gather_windows, mark_near

__all__ = ["NEAR_CLIP_TILE", "near_clip_repair"]

#: Side of the tiles the repair visits (even, so every tile starts on the CFA's own parity).
NEAR_CLIP_TILE = 32
_GRID_COLUMNS = 16


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


def near_clip_repair(x: np.ndarray, cfa_pattern: str, clip_levels: np.ndarray, rows: np.ndarray,
                     cols: np.ndarray, demosaic_window: Callable[[np.ndarray], np.ndarray], halo: int,
                     radius: int = 6, *, black: np.ndarray | None = None, scale: np.ndarray | None = None,
                     lo: float = -np.inf, hi: float = np.inf,
                     patches: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The directional method's values at every pixel within ``radius`` of an edge highlight photosite.

    Parameters
    ----------
    x : H×W mosaic; its samples are read as ``clip((x − black) · scale, lo, hi)``
        with the 2×2 ``black`` (default 0) and ``scale`` (default 1) of their
        CFA site, then ``patches`` = ``(row_ptr, cols, values)`` (row y's
        replaced samples at ``cols[row_ptr[y]:row_ptr[y + 1]]``) — the stage
        passes its input as it is, the fused render the raw samples.
    cfa_pattern : the mosaic's CFA pattern (read from its top-left pixel).
    clip_levels : (3,) per-colour level from which a photosite counts as a highlight.
    rows, cols : the highlight photosites (any order; photosites listed that
        are below their level are ignored) — the candidates, so nothing is scanned.
    demosaic_window : float32 mosaic (same CFA pattern, whole-sample mirrored
        borders) → H×W×3 RGB. It is called once, on the marked tiles' windows
        laid out in a grid: each window keeps a margin of ``halo`` pixels, so
        what one reads of its neighbours never reaches the tile inside it.
    halo : the method's stencil reach in pixels: a window this much larger
        than a tile gives the full-frame values inside the tile.
    radius : pixels farther than this from every edge highlight photosite keep
        the caller's values.

    Returns
    -------
    (ys, xs, rgb): pixel coordinates (int64) and their (N, 3) float32 values,
    each pixel once; empty when there is no highlight edge.
    """
    h, w = x.shape
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
    tiles = _tiles_near(rows, cols, reach, (h, w))
    oy = tiles[:, 0] * t - margin
    ox = tiles[:, 1] * t - margin
    f32 = np.float32
    black2 = np.zeros((2, 2), f32) if black is None else np.ascontiguousarray(black, dtype=f32).reshape(2, 2)
    scale2 = np.ones((2, 2), f32) if scale is None else np.ascontiguousarray(scale, dtype=f32).reshape(2, 2)
    if patches is None:
        row_ptr, pcols, pvals = np.zeros(h + 1, np.int64), np.zeros(1, np.int64), np.zeros(1, f32)
    else:
        row_ptr, pcols, pvals = (np.ascontiguousarray(a, dtype=d) for a, d in zip(patches, (np.int64, np.int64, f32)))
    wins = np.empty((tiles.shape[0] * side, side), f32)
    gather_windows(x, black2, scale2, f32(lo), f32(hi), row_ptr, pcols, pvals, oy, ox, side, wins)
    levels = np.ascontiguousarray(np.asarray(clip_levels, dtype=f32)[cfa_color_indices(cfa_pattern)])
    near = np.empty((tiles.shape[0], t, t), np.bool_)
    counts = mark_near(wins, levels, side, margin, t, radius, np.minimum(h - tiles[:, 0] * t, t),
                       np.minimum(w - tiles[:, 1] * t, t), near)
    keep = np.flatnonzero(counts)
    if keep.size == 0:
        return empty
    # a grid of windows, _GRID_COLUMNS wide (wide rows keep the method's row loops efficient);
    # the last row is completed with empty windows
    g = min(_GRID_COLUMNS, keep.size)
    nrow = -(-keep.size // g)
    grid = np.zeros((nrow * g, side, side), f32)
    grid[:keep.size] = wins.reshape(-1, side, side)[keep]
    mosaic = grid.reshape(nrow, g, side, side).transpose(0, 2, 1, 3).reshape(nrow * side, g * side)
    rgb = demosaic_window(mosaic).reshape(nrow, side, g, side, 3).transpose(0, 2, 1, 3, 4)
    rgb = rgb.reshape(nrow * g, side, side, 3)[:keep.size, margin:margin + t, margin:margin + t]
    kk, yy, xx = np.nonzero(near[keep])
    return (yy + tiles[keep[kk], 0] * t, xx + tiles[keep[kk], 1] * t,
            np.ascontiguousarray(rgb[kk, yy, xx], dtype=f32))
