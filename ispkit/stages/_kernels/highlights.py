"""Highlight kernels on white-balanced camera RGB (H×W×3 float32, rows in parallel).

Each kernel returns whether it met a non-finite input value (the caller raises).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "clip_highlights_rows", "blend_highlights_rows", "clipped_channels", "tile_statistics",
    "propagate_tile_ratios", "reconstruct_highlights_rows",
]


@numba.njit(cache=True, parallel=True, fastmath={"reassoc"})
def clip_highlights_rows(rows, level, out):  # pragma: no cover - compiled
    """``out = min(rows, level)`` elementwise (dcraw ``-H 0``) on H×(3W) row views."""
    h = rows.shape[0]
    n = rows.shape[1]
    zero = np.float32(0.0)
    bad = np.zeros(h, dtype=np.uint8)
    for y in numba.prange(h):
        acc = zero
        for i in range(n):
            v = rows[y, i]
            acc += v * zero
            out[y, i] = min(v, level)
        if acc != acc:
            bad[y] = 1
    return bad.any()


@numba.njit(cache=True, parallel=True, fastmath={"reassoc"})
def blend_highlights_rows(image, inv_white, threshold, out):  # pragma: no cover - compiled
    """Blend each pixel toward the grey of its mean as its most saturated channel nears white.

    ``s = max_c image_c · inv_white_c``; weight ``w = smoothstep((s - threshold) / (1 - threshold))``;
    ``out = image + w · (mean(image) - image)``. Pixels with ``s <= threshold`` are copied.
    """
    h = image.shape[0]
    w = image.shape[1]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    third = np.float32(1.0 / 3.0)
    t = np.float32(threshold)
    span = np.float32(1.0 / max(1.0 - threshold, 1e-6))
    i0 = np.float32(inv_white[0])
    i1 = np.float32(inv_white[1])
    i2 = np.float32(inv_white[2])
    bad = np.zeros(h, dtype=np.uint8)
    for y in numba.prange(h):
        acc = zero
        for x in range(w):
            r = image[y, x, 0]
            g = image[y, x, 1]
            b = image[y, x, 2]
            acc += (r + g + b) * zero
            s = max(r * i0, max(g * i1, b * i2))
            if s > t:
                f = min((s - t) * span, one)
                f = f * f * (np.float32(3.0) - np.float32(2.0) * f)
                m = (r + g + b) * third
                r = r + f * (m - r)
                g = g + f * (m - g)
                b = b + f * (m - b)
            out[y, x, 0] = r
            out[y, x, 1] = g
            out[y, x, 2] = b
        if acc != acc:
            bad[y] = 1
    return bad.any()


@numba.njit(cache=True, parallel=True)
def clipped_channels(image, clip_level, out):  # pragma: no cover - compiled
    """Write ``out[y, x, c] = image[y, x, c] >= clip_level[c]`` (uint8); return whether any
    input value was non-finite."""
    h = image.shape[0]
    w = image.shape[1]
    zero = np.float32(0.0)
    bad = np.zeros(h, dtype=np.uint8)
    for y in numba.prange(h):
        acc = zero
        for x in range(w):
            for c in range(3):
                v = image[y, x, c]
                acc += v * zero
                out[y, x, c] = np.uint8(v >= clip_level[c])
        if acc != acc:
            bad[y] = 1
    return bad.any()


@numba.njit(cache=True, parallel=True)
def tile_statistics(image, clip_level, clipped, near, suspect, bright, block, code):  # pragma: no cover
    """Classify pixels and sum the reference pixels per ``block``×``block`` tile.

    ``clipped`` H×W×3 uint8 marks channels at or above ``clip_level``;
    ``near`` is ``clipped`` dilated by the demosaicing smear radius. A channel
    is *to rebuild* when clipped, or when it is clipped nearby and reaches
    ``suspect × clip_level`` (demosaicing spreads a clipped channel into
    neighbours slightly below the clip level). ``code[y, x]`` gets the bits
    of the channels to rebuild. A *reference* pixel has no clipped channel
    within the smear radius and reaches ``bright × clip_level`` in some
    channel (the clean, bright surround of a highlight).

    Returns ``ceil(H/block)×ceil(W/block)×5`` float64: sums of R, G, B and
    count over the reference pixels, and the count of pixels to rebuild.
    """
    h = image.shape[0]
    w = image.shape[1]
    hb = (h + block - 1) // block
    wb = (w + block - 1) // block
    tiles = np.zeros((hb, wb, 5))
    for ty in numba.prange(hb):
        for y in range(ty * block, min(h, (ty + 1) * block)):
            for x in range(w):
                tx = x // block
                bits = 0
                is_near = False
                rel = np.float32(0.0)
                for c in range(3):
                    v = image[y, x, c]
                    rel = max(rel, v / clip_level[c])
                    if near[y, x, c]:
                        is_near = True
                        if clipped[y, x, c] or v >= suspect * clip_level[c]:
                            bits |= 1 << c
                code[y, x] = bits
                if bits:
                    tiles[ty, tx, 4] += 1.0
                elif not is_near and rel >= bright:
                    tiles[ty, tx, 0] += image[y, x, 0]
                    tiles[ty, tx, 1] += image[y, x, 1]
                    tiles[ty, tx, 2] += image[y, x, 2]
                    tiles[ty, tx, 3] += 1.0
    return tiles


@numba.njit(cache=True)
def propagate_tile_ratios(tiles, min_count):  # pragma: no cover - compiled
    """Give every tile of a clipped region a channel ratio grown from its unclipped border.

    ``tiles`` is the Hb×Wb×5 output of :func:`tile_statistics`. A tile is *known*
    when it holds at least ``min_count`` reference pixels; its ratio is
    ``(S_R, S_G, S_B) / (S_R + S_G + S_B)``. Unknown tiles holding clipped
    pixels (to rebuild) are filled in breadth-first order (8-neighbours,
    growing through such tiles only): each takes the mean ratio of its neighbours one step
    nearer to a known tile, so a clipped region inherits the colour of its
    own unclipped border. Tiles no known tile reaches keep grey (1/3 each).
    Returns (ratio Hb×Wb×3 float64, weight Hb×Wb: 1 for known or clipped tiles).
    """
    hb = tiles.shape[0]
    wb = tiles.shape[1]
    n = hb * wb
    ratio = np.full((hb, wb, 3), 1.0 / 3.0)
    weight = np.zeros((hb, wb))
    dist = np.full((hb, wb), -1, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for ty in range(hb):
        for tx in range(wb):
            cnt = tiles[ty, tx, 3]
            total = tiles[ty, tx, 0] + tiles[ty, tx, 1] + tiles[ty, tx, 2]
            if tiles[ty, tx, 4] > 0.0:
                weight[ty, tx] = 1.0
            if cnt >= min_count and total > 0.0:
                weight[ty, tx] = 1.0
                for c in range(3):
                    ratio[ty, tx, c] = tiles[ty, tx, c] / total
                dist[ty, tx] = 0
                queue[tail] = ty * wb + tx
                tail += 1
    known = tail
    head = 0
    while head < tail:
        t = queue[head]
        head += 1
        ty = t // wb
        tx = t - ty * wb
        for dy in range(-1, 2):
            ny = ty + dy
            if ny < 0 or ny >= hb:
                continue
            for dx in range(-1, 2):
                nx = tx + dx
                if nx < 0 or nx >= wb or dist[ny, nx] >= 0 or tiles[ny, nx, 4] <= 0.0:
                    continue
                dist[ny, nx] = dist[ty, tx] + 1
                queue[tail] = ny * wb + nx
                tail += 1
    for k in range(known, tail):
        t = queue[k]
        ty = t // wb
        tx = t - ty * wb
        want = dist[ty, tx] - 1
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        m = 0.0
        for dy in range(-1, 2):
            ny = ty + dy
            if ny < 0 or ny >= hb:
                continue
            for dx in range(-1, 2):
                nx = tx + dx
                if nx < 0 or nx >= wb or dist[ny, nx] != want:
                    continue
                a0 += ratio[ny, nx, 0]
                a1 += ratio[ny, nx, 1]
                a2 += ratio[ny, nx, 2]
                m += 1.0
        ratio[ty, tx, 0] = a0 / m
        ratio[ty, tx, 1] = a1 / m
        ratio[ty, tx, 2] = a2 / m
    return ratio, weight


@numba.njit(cache=True, parallel=True)
def reconstruct_highlights_rows(image, code, ratio, weight, block, out):  # pragma: no cover
    """Rebuild clipped channels from the unclipped ones with the local channel ratio.

    ``code`` holds the bits of the channels to rebuild (:func:`tile_statistics`);
    ``ratio`` and ``weight`` come from :func:`propagate_tile_ratios`; the
    ratio is interpolated bilinearly between tile centres over the tiles of
    weight 1 (known or clipped tiles; the pixel's own tile if none). A pixel
    with channels C to rebuild and the others U takes, for c in C,
    ``max(x_c, ratio_c / Σ_U ratio_u · Σ_U x_u)`` (never below the clipped
    value); a pixel with all three channels to rebuild becomes grey at its
    largest channel; the other pixels are copied.
    """
    h = image.shape[0]
    w = image.shape[1]
    hb = ratio.shape[0]
    wb = ratio.shape[1]
    inv_block = 1.0 / block
    for y in numba.prange(h):
        fy = (y + 0.5) * inv_block - 0.5
        y0 = min(max(int(np.floor(fy)), 0), hb - 1)
        y1 = min(y0 + 1, hb - 1)
        wy = min(max(fy - y0, 0.0), 1.0)
        for x in range(w):
            v0 = image[y, x, 0]
            v1 = image[y, x, 1]
            v2 = image[y, x, 2]
            bits = code[y, x]
            k0 = (bits & 1) != 0
            k1 = (bits & 2) != 0
            k2 = (bits & 4) != 0
            nclip = np.int64(k0) + np.int64(k1) + np.int64(k2)
            if nclip == 0:
                out[y, x, 0] = v0
                out[y, x, 1] = v1
                out[y, x, 2] = v2
                continue
            if nclip == 3:
                m = max(v0, max(v1, v2))
                out[y, x, 0] = m
                out[y, x, 1] = m
                out[y, x, 2] = m
                continue
            fx = (x + 0.5) * inv_block - 0.5
            x0 = min(max(int(np.floor(fx)), 0), wb - 1)
            x1 = min(x0 + 1, wb - 1)
            wx = min(max(fx - x0, 0.0), 1.0)
            w00 = (1.0 - wy) * (1.0 - wx) * weight[y0, x0]
            w01 = (1.0 - wy) * wx * weight[y0, x1]
            w10 = wy * (1.0 - wx) * weight[y1, x0]
            w11 = wy * wx * weight[y1, x1]
            wsum = w00 + w01 + w10 + w11
            if wsum <= 0.0:
                ty = min(y // block, hb - 1)
                tx = min(x // block, wb - 1)
                w00 = 1.0
                w01 = 0.0
                w10 = 0.0
                w11 = 0.0
                y0 = ty
                x0 = tx
                wsum = 1.0
            w00 /= wsum
            w01 /= wsum
            w10 /= wsum
            w11 /= wsum
            r0 = w00 * ratio[y0, x0, 0] + w01 * ratio[y0, x1, 0] + w10 * ratio[y1, x0, 0] + w11 * ratio[y1, x1, 0]
            r1 = w00 * ratio[y0, x0, 1] + w01 * ratio[y0, x1, 1] + w10 * ratio[y1, x0, 1] + w11 * ratio[y1, x1, 1]
            r2 = w00 * ratio[y0, x0, 2] + w01 * ratio[y0, x1, 2] + w10 * ratio[y1, x0, 2] + w11 * ratio[y1, x1, 2]
            ref = 0.0
            rref = 0.0
            if not k0:
                ref += v0
                rref += r0
            if not k1:
                ref += v1
                rref += r1
            if not k2:
                ref += v2
                rref += r2
            if rref <= 0.0:  # degenerate ratio: grey, each clipped channel = mean of the unclipped
                rref = 3.0 - nclip
                r0 = 1.0
                r1 = 1.0
                r2 = 1.0
            scale = ref / rref
            o0 = v0
            o1 = v1
            o2 = v2
            if k0:
                o0 = max(v0, np.float32(r0 * scale))
            if k1:
                o1 = max(v1, np.float32(r1 * scale))
            if k2:
                o2 = max(v2, np.float32(r2 * scale))
            out[y, x, 0] = o0
            out[y, x, 1] = o1
            out[y, x, 2] = o2
