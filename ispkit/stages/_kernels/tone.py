"""Numba kernels for global tone operators (pointwise; arrays and scalars in, arrays out).

RGB kernels take C-contiguous (N, 3) float32 views of an H×W×3 image and
write into an ``out`` of the same shape (which may alias the input).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .gamma import fast_pow_f32

__all__ = [
    "lut_apply",
    "luminance",
    "log_mean",
    "reinhard_rgb",
    "hable_rgb",
    "narkowicz_rgb",
    "night_tone_rgb",
    "night_ratio_table",
    "gain_night_tone_oetf_rgb",
    "count_nonfinite",
]


@numba.njit(parallel=True, cache=True)
def count_nonfinite(x):
    """Number of NaN / inf values in a flat float array."""
    bad = 0
    for i in prange(x.size):
        v = x[i]
        bad += (v - v) != 0.0
    return bad


@numba.njit(parallel=True, cache=True, fastmath={"contract"})
def lut_apply(x, out, lut, x0, x1, slope_lo, slope_hi):
    """Evaluate a uniformly sampled curve with linear interpolation.

    Notes
    -----
    ``lut`` samples the curve at ``x0 + i * (x1 - x0) / (n - 1)``; inputs
    outside [x0, x1] continue along straight lines of slope ``slope_lo`` /
    ``slope_hi`` from the end samples. ``x``/``out`` are flat float32.
    """
    n = lut.size
    scale = np.float32((n - 1) / (x1 - x0))
    fx0 = np.float32(x0)
    fx1 = np.float32(x1)
    slo = np.float32(slope_lo)
    shi = np.float32(slope_hi)
    ylo = lut[0]
    yhi = lut[n - 1]
    for i in prange(x.size):
        v = x[i]
        pos = (v - fx0) * scale
        pos_c = min(max(pos, np.float32(0.0)), np.float32(n - 1))
        j = min(np.int64(pos_c), n - 2)
        f = pos_c - np.float32(j)
        y = lut[j] + (lut[j + 1] - lut[j]) * f
        y = ylo + (v - fx0) * slo if v < fx0 else y
        y = yhi + (v - fx1) * shi if v > fx1 else y
        out[i] = y


@numba.njit(parallel=True, cache=True)
def luminance(rgb, out, wr, wg, wb):
    """Weighted sum of the three channels of an (N, 3) array into ``out`` (N,)."""
    r = np.float32(wr)
    g = np.float32(wg)
    b = np.float32(wb)
    for i in prange(rgb.shape[0]):
        out[i] = r * rgb[i, 0] + g * rgb[i, 1] + b * rgb[i, 2]


@numba.njit(parallel=True, cache=True)
def log_mean(rgb, wr, wg, wb, delta):
    """exp(mean(log(delta + max(L, 0)))): the log-average luminance of Reinhard et al."""
    n = rgb.shape[0]
    acc = 0.0
    for i in prange(n):
        lum = wr * rgb[i, 0] + wg * rgb[i, 1] + wb * rgb[i, 2]
        acc += np.log(delta + max(lum, 0.0))
    return np.exp(acc / max(n, 1))


@numba.njit(parallel=True, cache=True)
def reinhard_rgb(rgb, out, wr, wg, wb, scale, inv_white2):
    """Reinhard global operator on luminance, applied as an RGB ratio (hue kept).

    ``L = scale * Y``; ``Ld = L (1 + L / white²) / (1 + L)``; RGB × Ld / Y.
    """
    r = np.float32(wr)
    g = np.float32(wg)
    b = np.float32(wb)
    s = np.float32(scale)
    iw = np.float32(inv_white2)
    for i in prange(rgb.shape[0]):
        y = r * rgb[i, 0] + g * rgb[i, 1] + b * rgb[i, 2]
        lum = s * max(y, np.float32(0.0))
        ratio = s * (np.float32(1.0) + lum * iw) / (np.float32(1.0) + lum)
        out[i, 0] = rgb[i, 0] * ratio
        out[i, 1] = rgb[i, 1] * ratio
        out[i, 2] = rgb[i, 2] * ratio


@numba.njit(inline="always")
def _hable(x):
    a = np.float32(0.15)
    b = np.float32(0.50)
    c = np.float32(0.10)
    d = np.float32(0.20)
    e = np.float32(0.02)
    f = np.float32(0.30)
    return (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f


@numba.njit(parallel=True, cache=True)
def hable_rgb(x, out, exposure, white):
    """Hable's Uncharted 2 curve per value, normalised so ``white`` maps to 1, clipped to [0, 1]."""
    ex = np.float32(exposure)
    inv_w = np.float32(1.0) / _hable(np.float32(white))
    for i in prange(x.size):
        v = max(x[i], np.float32(0.0)) * ex
        out[i] = min(_hable(v) * inv_w, np.float32(1.0))


@numba.njit(parallel=True, cache=True)
def narkowicz_rgb(x, out, exposure):
    """Narkowicz's fit of the ACES RRT+ODT curve per value, clipped to [0, 1]."""
    ex = np.float32(exposure)
    for i in prange(x.size):
        v = max(x[i], np.float32(0.0)) * ex
        y = (v * (np.float32(2.51) * v + np.float32(0.03))) / (
            v * (np.float32(2.43) * v + np.float32(0.59)) + np.float32(0.14))
        out[i] = min(max(y, np.float32(0.0)), np.float32(1.0))


_BELOW_ONE = np.float32(1.0 - 2.0 ** -24)


#: samples of the night-tone lift ratio on Y in [0, 1] (linear interpolation: relative error < 1e-8)
NIGHT_RATIO_SAMPLES = 4097


def night_ratio_table(lift):
    """``asinh(lift·Y) / (asinh(lift)·Y)`` at ``Y = linspace(0, 1, NIGHT_RATIO_SAMPLES)`` (float64; the Y → 0 limit at 0)."""
    y = np.linspace(0.0, 1.0, NIGHT_RATIO_SAMPLES)
    if lift <= 0:
        return np.ones_like(y)
    norm = np.arcsinh(lift)
    out = np.empty_like(y)
    out[0] = lift / norm
    out[1:] = np.arcsinh(lift * y[1:]) / (norm * y[1:])
    return out


@numba.njit(inline="always")
def _night_ratio_px(v0, v1, v2, r, g, b, a, norm, slope0, table, nseg):
    """The lift ratio of :func:`night_tone_rgb` for one pixel, as float32."""
    y = np.float64(r * v0 + g * v1 + b * v2)
    ym = max(y, 0.0)
    if ym <= 1.0:
        pos = ym * nseg
        j = min(np.int64(pos), nseg - 1)
        f = pos - j
        ratio = table[j] + (table[j + 1] - table[j]) * f
    elif a > 0:
        ratio = np.arcsinh(a * ym) / (norm * ym)
    else:
        ratio = slope0
    return np.float32(ratio)


@numba.njit(inline="always")
def _shoulder_px(u, k, span, inv_span):
    """The highlight shoulder of :func:`night_tone_rgb` for one value."""
    if u > k:
        u = k + span * (np.float32(1.0) - np.exp(-(u - k) * inv_span))
        u = min(u, _BELOW_ONE)
    return u


@numba.njit(parallel=True, cache=True)
def night_tone_rgb(rgb, out, wr, wg, wb, lift, knee, table):
    """Shadow lift on luminance (asinh, hue kept) then a per-channel exponential shoulder.

    Notes
    -----
    ``u = rgb * asinh(lift·Y) / (asinh(lift) · Y)`` (slope ``lift/asinh(lift)``
    at Y → 0; ``lift = 0`` is the identity), then for each channel
    ``y = u`` below ``knee`` and ``knee + (1-knee)(1 - exp(-(u-knee)/(1-knee)))``
    above: C¹, increasing, below 1 for every finite input (float32 output
    saturates at 1 - 2⁻²⁴).
    Negative values pass the shoulder unchanged. For ``0 <= Y <= 1`` the
    ratio is interpolated in ``table`` (:func:`night_ratio_table`, float64),
    above it is computed.
    """
    r = np.float32(wr)
    g = np.float32(wg)
    b = np.float32(wb)
    a = np.float64(lift)
    norm = np.arcsinh(a) if a > 0 else 1.0
    slope0 = a / norm if a > 0 else 1.0
    k = np.float32(knee)
    span = np.float32(1.0) - k
    inv_span = np.float32(1.0) / span
    nseg = table.size - 1
    for i in prange(rgb.shape[0]):
        fr = _night_ratio_px(rgb[i, 0], rgb[i, 1], rgb[i, 2], r, g, b, a, norm, slope0, table, nseg)
        for c in range(3):
            out[i, c] = _shoulder_px(rgb[i, c] * fr, k, span, inv_span)


@numba.njit(cache=True, fastmath={"contract"})
def _oetf_clip_inplace(x, t, k, u, v, q, w, z):
    """``piecewise_power_f32(x, x, ..., clip=True)`` on a flat float32 array, serially (same arithmetic and flags)."""
    for i in range(x.size):
        xi = min(max(x[i], np.float32(0.0)), np.float32(1.0))
        a = abs(xi)
        lin = a * k
        pw = fast_pow_f32(a * u + v, q) * w + z
        y = lin if a < t else pw
        x[i] = np.copysign(y, xi)


_TAIL_CHUNK = 4096


@numba.njit(parallel=True, cache=True)
def gain_night_tone_oetf_rgb(rgb, out, gain, wr, wg, wb, lift, knee, table, t, k, u, v, q, w, z):
    """``oetf(clip(night_tone(gain · rgb)))`` in one pass: auto exposure's gain, :func:`night_tone_rgb`, the OETF.

    Notes
    -----
    ``rgb``/``out`` (N, 3) float32; ``t … z`` float32 coefficients of
    :func:`ispkit.stages._kernels.gamma.piecewise_power_f32` (with ``clip``).
    Each step uses the arithmetic (and fast-math flags) of the stage kernel
    it replaces, so the result equals running them one after another.
    Returns the number of
    non-finite values of ``gain · rgb`` (the caller then runs the stages,
    which raise).
    """
    g32 = np.float32(gain)
    r = np.float32(wr)
    gg = np.float32(wg)
    b = np.float32(wb)
    a = np.float64(lift)
    norm = np.arcsinh(a) if a > 0 else 1.0
    slope0 = a / norm if a > 0 else 1.0
    kn = np.float32(knee)
    span = np.float32(1.0) - kn
    inv_span = np.float32(1.0) / span
    nseg = table.size - 1
    t = np.float32(t)
    k = np.float32(k)
    u = np.float32(u)
    v = np.float32(v)
    q = np.float32(q)
    w = np.float32(w)
    z = np.float32(z)
    n = rgb.shape[0]
    flat = out.reshape(-1)
    nchunk = (n + _TAIL_CHUNK - 1) // _TAIL_CHUNK
    bad = 0
    for ci in prange(nchunk):
        i0 = ci * _TAIL_CHUNK
        i1 = min(n, i0 + _TAIL_CHUNK)
        nb = 0
        for i in range(i0, i1):
            v0 = rgb[i, 0] * g32
            v1 = rgb[i, 1] * g32
            v2 = rgb[i, 2] * g32
            nb += ((v0 - v0) != np.float32(0.0)) | ((v1 - v1) != np.float32(0.0)) | ((v2 - v2) != np.float32(0.0))
            fr = _night_ratio_px(v0, v1, v2, r, gg, b, a, norm, slope0, table, nseg)
            out[i, 0] = _shoulder_px(v0 * fr, kn, span, inv_span)
            out[i, 1] = _shoulder_px(v1 * fr, kn, span, inv_span)
            out[i, 2] = _shoulder_px(v2 * fr, kn, span, inv_span)
        bad += nb
        # the OETF over the chunk as one flat, branch-free (vectorised) loop
        _oetf_clip_inplace(flat[3 * i0:3 * i1], t, k, u, v, q, w, z)
    return bad
