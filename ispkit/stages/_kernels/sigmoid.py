"""Numba kernels of the log-logistic display transform (:mod:`ispkit.stages.display_transform`).

The curve is read from a table over ``u = x / (x + k)`` (which maps scene
values in [0, ∞) onto [0, 1)), linearly interpolated: ``tab[i]`` is a
complex64 (value at ``u = i / n``, slope to the next entry), the last entry
is (the curve's limit, 0). The three steps (:func:`sigmoid_prepare`,
:func:`curve_lookup`, :func:`sigmoid_finish`) are shared by the stage's kernel
and the fused render kernel, so both compute the same numbers; they are
separate loops because the table reads keep LLVM from vectorising the rest.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["sigmoid_prepare", "sigmoid_prepare_span", "curve_lookup", "sigmoid_finish", "sigmoid_finish_span",
           "sigmoid_rgb"]

_TINY = np.float32(1e-30)


_OPTS = {"cache": True, "fastmath": {"contract"}, "error_model": "numpy"}  # numpy: no per-division zero test


@numba.njit(inline="always", **_OPTS)
def sigmoid_prepare(r, g, b, k, n):
    """Step 1 (vectorisable): desaturate negative values toward the pixel mean until the
    smallest channel is 0; return the three values and their table positions ``n·x/(x+k)``."""
    zero = np.float32(0.0)
    avg = np.maximum((r + g + b) * np.float32(1.0 / 3.0), zero)
    lo = np.minimum(r, np.minimum(g, b))
    sat = np.minimum(np.float32(1.0), avg / np.maximum(avg - lo, _TINY))
    r = np.maximum(avg + sat * (r - avg), zero)
    g = np.maximum(avg + sat * (g - avg), zero)
    b = np.maximum(avg + sat * (b - avg), zero)
    return r, g, b, r / (r + k) * n, g / (g + k) * n, b / (b + k) * n


@numba.njit(inline="always", **_OPTS)
def sigmoid_prepare_span(r, g, b, k, n):
    """Step 1 for full hue preservation: as :func:`sigmoid_prepare`, but only the positions
    of the smallest and largest channel (the middle one follows from them)."""
    r, g, b, _, _, _ = sigmoid_prepare(r, g, b, k, n)
    lo = np.minimum(r, np.minimum(g, b))
    hi = np.maximum(r, np.maximum(g, b))
    return r, g, b, lo / (lo + k) * n, hi / (hi + k) * n


@numba.njit(inline="always", **_OPTS)
def sigmoid_finish_span(r, g, b, ylo, yhi):
    """Step 3 for full hue preservation: every channel at its input's place between
    the mapped smallest and largest channel."""
    lo = np.minimum(r, np.minimum(g, b))
    span = np.maximum(r, np.maximum(g, b)) - lo
    scale = (yhi - ylo) / np.maximum(span, _TINY)
    return ylo + scale * (r - lo), ylo + scale * (g - lo), ylo + scale * (b - lo)


@numba.njit(**_OPTS)
def curve_lookup(t, count, tab):
    """Step 2 (table reads): replace positions ``t[:count]`` by the interpolated curve, in place."""
    top = np.float32(tab.shape[0] - 1)
    zero = np.float32(0.0)
    for j in range(count):
        p = t[j]
        p = p if p < top else top  # NaN (non-finite input, counted by the callers) → the last entry
        p = p if p > zero else zero
        i = np.uint32(p)
        vs = tab[i]
        t[j] = vs.real + (p - np.float32(i)) * vs.imag


@numba.njit(inline="always", **_OPTS)
def sigmoid_finish(r, g, b, yr, yg, yb, hue):
    """Step 3 (vectorisable): move each mapped channel ``hue`` of the way to where it keeps
    its input's place between the pixel's smallest and largest channel."""
    lo = np.minimum(r, np.minimum(g, b))
    span = np.maximum(r, np.maximum(g, b)) - lo
    ylo = np.minimum(yr, np.minimum(yg, yb))
    scale = (np.maximum(yr, np.maximum(yg, yb)) - ylo) / np.maximum(span, _TINY)
    yr += hue * (ylo + scale * (r - lo) - yr)
    yg += hue * (ylo + scale * (g - lo) - yg)
    yb += hue * (ylo + scale * (b - lo) - yb)
    return yr, yg, yb


_CHUNK = 1024


@numba.njit(parallel=True, **_OPTS)
def sigmoid_rgb(x, k, tab, hue, out):
    """Map an (N, 3) float32 array of scene-linear RGB into ``out`` (may alias ``x``).

    Per chunk of 1024 pixels: :func:`sigmoid_prepare`, :func:`curve_lookup`,
    :func:`sigmoid_finish` — the three steps the fused render kernel runs on
    its half rows, so both compute the same numbers. With ``hue == 1`` only the
    smallest and largest channel are looked up (the ``_span`` steps).
    """
    n = np.float32(tab.shape[0] - 1)
    npx = x.shape[0]
    nchunks = (npx + _CHUNK - 1) // _CHUNK
    for c in prange(nchunks):
        i0 = c * _CHUNK
        m = min(npx, i0 + _CHUNK) - i0
        v = np.empty((3, _CHUNK), np.float32)
        t = np.empty(3 * _CHUNK, np.float32)
        if hue == 1.0:
            for j in range(m):
                v[0, j], v[1, j], v[2, j], t[j], t[_CHUNK + j] = sigmoid_prepare_span(
                    x[i0 + j, 0], x[i0 + j, 1], x[i0 + j, 2], k, n)
            curve_lookup(t, m, tab)
            curve_lookup(t[_CHUNK:], m, tab)
            for j in range(m):
                yr, yg, yb = sigmoid_finish_span(v[0, j], v[1, j], v[2, j], t[j], t[_CHUNK + j])
                out[i0 + j, 0] = yr
                out[i0 + j, 1] = yg
                out[i0 + j, 2] = yb
            continue
        for j in range(m):
            v[0, j], v[1, j], v[2, j], t[j], t[_CHUNK + j], t[2 * _CHUNK + j] = sigmoid_prepare(
                x[i0 + j, 0], x[i0 + j, 1], x[i0 + j, 2], k, n)
        for q in range(3):
            curve_lookup(t[q * _CHUNK:], m, tab)
        for j in range(m):
            yr, yg, yb = sigmoid_finish(v[0, j], v[1, j], v[2, j], t[j], t[_CHUNK + j], t[2 * _CHUNK + j], hue)
            out[i0 + j, 0] = yr
            out[i0 + j, 1] = yg
            out[i0 + j, 2] = yb
