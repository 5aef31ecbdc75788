"""Denoising of a Bayer mosaic on its four half-resolution CFA planes.

The pipeline of :func:`denoise_bayer`:

1. split the mosaic into the planes R, Gr, Gb, B (h×w each);
2. resolve a noise model per plane — an explicit ``sigma``, a DNG
   ``NoiseProfile`` (variance = scale·x + offset, normalised units), or one
   estimated from the data (:func:`estimate_noise_profile`);
3. stabilise the variance (generalised Anscombe transform for
   signal-dependent noise, a plain division for constant noise) so every
   plane carries unit-variance Gaussian noise;
4. denoise the four planes jointly with a method from
   :data:`BAYER_DENOISE_METHODS` at noise level ``strength``;
5. invert the transform (exact unbiased inverse) and re-interleave.

Plug-in methods (e.g. the neural ``"unet"``) registered with
:func:`register_bayer_denoise_method` receive the normalised mosaic and a
noise level instead and do all of this themselves.

References
----------
Adobe, *DNG Specification* 1.6, "NoiseProfile".
M. Mäkitalo, A. Foi, "Optimal inversion of the generalized Anscombe
transformation for Poisson-Gaussian noise", IEEE TIP 22(1), 2013.
X. Liu, M. Tanaka, M. Okutomi, "Single-image noise level estimation for blind
denoising", IEEE TIP 22(12), 2013.
J. Immerkær, "Fast noise variance estimation", CVIU 64(2), 1996.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage
from ..pipeline.models import (add_model_record, announce_fallback, check_weights_param, model_record,
                               require_weights, resolve_weights)
from ._kernels import denoise as _k
from ._kernels._parallel import readonly, threads_for
from ._kernels.white_balance import finite_probe as _finite_probe
from .black_level import BLACK_LEVEL_PATTERN_KEY, subtract_black_level
from ._kernels.scratch import recycled_empty, scratch

__all__ = [
    "BAYER_DENOISE_METHODS",
    "BayerDenoiseMethod",
    "register_bayer_denoise_method",
    "denoise_bayer",
    "estimate_noise_profile",
    "split_cfa_planes",
    "merge_cfa_planes",
    "BayerDenoise",
]


@dataclass(frozen=True)
class BayerDenoiseMethod:
    """An entry of :data:`BAYER_DENOISE_METHODS`.

    Attributes
    ----------
    fn : plug-ins: ``fn(mosaic, cfa_pattern, sigma, **params) -> H×W
        float32``; built-ins: ``fn(planes, level, **params) -> planes`` on
        the stabilised 4×h×w planes with unit noise × ``level``.
    params : keyword names ``fn`` accepts (for plug-ins, the
        :class:`BayerDenoise` fields passed to it, e.g. ``("weights", "device")``).
    planes : True for the built-in methods working on stabilised planes.
    model : the registered model a learned method runs (its ``weights="auto"``
        looks for ``<model>.pth``); None for classical methods.
    mosaic_fn : optional fast path of a built-in method doing steps 3–5 in
        one go: ``mosaic_fn(mosaic, scale, offset, silent, level, **params)
        -> mosaic`` on the even-sized mosaic with the per-plane noise model;
        it must give what ``fn`` between :func:`gat_forward` and
        :func:`gat_inverse` gives.
    """

    fn: Callable[..., np.ndarray]
    params: tuple[str, ...] = ()
    planes: bool = False
    model: str | None = None
    mosaic_fn: Callable[..., np.ndarray] | None = None


#: name → :class:`BayerDenoiseMethod`; filled below and by plug-ins.
BAYER_DENOISE_METHODS: dict[str, BayerDenoiseMethod] = {}

# Orthonormal transform of (R, Gr, Gb, B): luma, R−B, G−(R+B), Gr−Gb. It
# keeps unit white noise unit and white, and concentrates the signal.
_DECORRELATE = np.array([[0.5, 0.5, 0.5, 0.5],
                         [math.sqrt(0.5), 0.0, 0.0, -math.sqrt(0.5)],
                         [-0.5, 0.5, 0.5, -0.5],
                         [0.0, math.sqrt(0.5), -math.sqrt(0.5), 0.0]], dtype=np.float32)


# ---------------------------------------------------------------------------
# planes
# ---------------------------------------------------------------------------

def split_cfa_planes(mosaic: np.ndarray) -> np.ndarray:
    """Return the four 2×2-phase planes of an even-sized mosaic as a 4×h×w array.

    Notes
    -----
    Planes are in raster order of the 2×2 block (top-left, top-right,
    bottom-left, bottom-right) — whatever colours the CFA puts there.
    """
    x = np.asarray(mosaic)
    views = (x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2])
    if len({v.shape for v in views}) > 1:
        return np.stack(views).astype(np.float32)  # raises: odd sizes
    out = np.empty((4,) + views[0].shape, dtype=np.float32)
    for k, view in enumerate(views):
        out[k] = view
    return out


def merge_cfa_planes(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_cfa_planes`: interleave 4×h×w planes into a 2h×2w mosaic."""
    p = np.asarray(planes)
    _, h, w = p.shape
    out = np.empty((2 * h, 2 * w), dtype=np.float32)
    out[0::2, 0::2] = p[0]
    out[0::2, 1::2] = p[1]
    out[1::2, 0::2] = p[2]
    out[1::2, 1::2] = p[3]
    return out


def _pad_even(x: np.ndarray) -> np.ndarray:
    """Pad odd sizes with the row/column two back (same CFA phase)."""
    h, w = x.shape
    if h % 2:
        x = np.concatenate([x, x[h - 2:h - 1]], axis=0) if h > 1 else np.concatenate([x, x], axis=0)
    if w % 2:
        x = np.concatenate([x, x[:, w - 2:w - 1]], axis=1) if w > 1 else np.concatenate([x, x], axis=1)
    return x


# ---------------------------------------------------------------------------
# noise estimation
# ---------------------------------------------------------------------------

_PATCH = 2  # 2×2 patch per plane → 16-D joint patches
_MAX_PATCHES = 60_000  # sampled 2×2×4 patches: halving from 120k left the σ spread over seeds at ~1 %


@functools.lru_cache(maxsize=1)
def _texture_threshold() -> tuple[float, np.ndarray]:
    """99th percentile of the patch-gradient energy of unit white noise, and a DC-free basis."""
    rng = np.random.default_rng(20130101)
    z = rng.standard_normal((200_000, 4, _PATCH, _PATCH))
    tau = float(np.quantile(_texture(z.reshape(len(z), -1)), 0.99))
    d = 4 * _PATCH * _PATCH
    # orthonormal basis of the complement of the all-ones (DC) direction
    q, _ = np.linalg.qr(np.concatenate([np.ones((d, 1)), np.eye(d)[:, : d - 1]], axis=1))
    return tau, q[:, 1:]


def _texture(x: np.ndarray) -> np.ndarray:
    q = x.reshape(len(x), 4, _PATCH, _PATCH)
    return (np.square(np.diff(q, axis=2)).sum(axis=(1, 2, 3))
            + np.square(np.diff(q, axis=3)).sum(axis=(1, 2, 3)))


def _split_variance(x: np.ndarray, y: np.ndarray, na: int, basis: np.ndarray) -> tuple[float, float]:
    """Noise variance along the weakest principal direction, measured on held-out patches.

    ``x`` are the patches, ``y = x @ basis`` their DC-free coordinates, the
    first ``na`` rows from one half of the image and the rest from the other
    (spatially disjoint) half. The direction is found on one half and its
    variance measured on the other, so the estimate is not biased low by the
    eigenvalue selection; returns (variance, effective intensity = mean of
    Σ v_i² x_i, the level that variance belongs to).
    """
    ya, yb = y[:na], y[na:]
    va = np.linalg.eigh(np.cov(ya, rowvar=False))[1][:, 0]
    vb = np.linalg.eigh(np.cov(yb, rowvar=False))[1][:, 0]
    var = 0.5 * (float(np.var(yb @ va)) + float(np.var(ya @ vb)))
    wa, wb = np.square(basis @ va), np.square(basis @ vb)
    level = 0.5 * (float((x[na:] @ wa).mean()) + float((x[:na] @ wb).mean()))
    return var, level


def _immerkaer_sigma(planes: np.ndarray) -> float:
    """Constant noise σ by Immerkær's Laplacian-difference estimator (small inputs)."""
    p = planes.astype(np.float64)
    if p.shape[1] < 3 or p.shape[2] < 3:
        return 0.0
    lap = (p[:, :-2, :-2] - 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:]
           - 2 * p[:, 1:-1, :-2] + 4 * p[:, 1:-1, 1:-1] - 2 * p[:, 1:-1, 2:]
           + p[:, 2:, :-2] - 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:])
    return float(math.sqrt(math.pi / 2.0) * np.abs(lap).mean() / 6.0)


def estimate_noise_profile(mosaic: np.ndarray, *, white_level: float | None = 1.0) -> tuple[float, float]:
    """Estimate the noise model ``variance = scale·x + offset`` of a mosaic.

    Parameters
    ----------
    mosaic : H×W black-subtracted, normalised mosaic (all four CFA planes
        are assumed to share one noise model, true before white balance).
    white_level : patches holding a sample ``>= 0.98 * white_level``
        (clipped, noise-free) are left out; None keeps all.

    Returns
    -------
    (scale, offset), both >= 0, in the DNG NoiseProfile convention.

    Notes
    -----
    Joint 2×2×4 patches of the four planes are binned by intensity; in each
    bin the noise variance is the variance along the weakest principal
    direction (texture lives in few directions, noise in all), found on one
    half of the patches and measured on the other, after iteratively
    dropping patches whose gradient energy exceeds the 99th percentile of
    pure noise. A line is fitted to (intensity, variance) by iteratively
    re-weighted least squares that drops bins lying well above the line
    (texture only ever adds variance). Inputs too small for patch statistics fall
    back to Immerkær's constant-σ estimator.

    References
    ----------
    X. Liu, M. Tanaka, M. Okutomi, "Single-image noise level estimation for
    blind denoising", IEEE TIP 22(12), 2013; J. Immerkær, "Fast noise
    variance estimation", CVIU 64(2), 1996; A. Foi et al., "Practical
    Poissonian-Gaussian noise modeling and fitting for single-image raw-data",
    IEEE TIP 17(10), 2008.
    """
    with threads_for(int(np.size(mosaic))):
        return _estimate_noise_profile(mosaic, white_level=white_level)


def _estimate_noise_profile(mosaic: np.ndarray, *, white_level: float | None = 1.0,
                            checked: bool = False) -> tuple[float, float]:
    """:func:`estimate_noise_profile`; ``checked``: the caller has already rejected non-finite values."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(mosaic)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"estimate_noise_profile: expected an H×W mosaic of at least 2×2, got shape {x.shape}")
    xe = np.ascontiguousarray(_pad_even(x), dtype=np.float32)
    if not checked and not np.isfinite(_finite_probe(readonly(xe))):
        raise InputError("estimate_noise_profile: the mosaic holds NaN/inf values; repair them first")
    h, w = xe.shape[0] // 2, xe.shape[1] // 2
    npos = (h - _PATCH + 1) * (w - _PATCH + 1)
    d = 4 * _PATCH * _PATCH
    if npos < 400 * d:
        s = _immerkaer_sigma(split_cfa_planes(xe))
        return 0.0, s * s
    stride = max(1, int(math.ceil(math.sqrt(npos / _MAX_PATCHES))))
    # the planes as a view [di, dj, i, j] of the mosaic: only the sampled patches are copied
    planes = xe.reshape(h, 2, w, 2).transpose(1, 3, 0, 2)
    win = sliding_window_view(planes, (_PATCH, _PATCH), axis=(2, 3))[:, :, ::stride, ::stride]
    nr, nc = win.shape[2], win.shape[3]
    patches = np.ascontiguousarray(win.transpose(2, 3, 0, 1, 4, 5)).reshape(nr * nc, d).astype(np.float64)
    part = ((np.repeat(np.arange(nr), nc) * stride) // 16) % 2
    if white_level is not None:
        keep = patches.max(axis=1) < 0.98 * float(white_level)
        patches, part = patches[keep], part[keep]
    tau, basis = _texture_threshold()
    nbins = int(min(8, len(patches) // (40 * d)))
    if nbins < 1:
        s = _immerkaer_sigma(split_cfa_planes(xe))
        return 0.0, s * s
    coords = patches @ basis
    texture = _texture(patches)
    order = np.argsort(patches.mean(axis=1), kind="stable")
    levels, variances, counts = [], [], []
    for idx in np.array_split(order, nbins):
        # one gather per bin, the two image halves contiguous (each in its original order)
        idx = idx[np.argsort(part[idx], kind="stable")]
        xb, yb, tb = patches[idx], coords[idx], texture[idx]
        na = int(np.count_nonzero(part[idx] == 0))
        if min(na, len(idx) - na) < 2 * d:
            continue
        var, level = _split_variance(xb, yb, na, basis)
        for _ in range(5):
            sel = tb < tau * var
            na_sel = int(np.count_nonzero(sel[:na]))
            if min(na_sel, int(np.count_nonzero(sel)) - na_sel) < 2 * d:
                break
            new, level = _split_variance(xb[sel], yb[sel], na_sel, basis)
            done = abs(new - var) <= 1e-3 * var
            var = new
            if done:
                break
        levels.append(level)
        variances.append(max(var, 0.0))
        counts.append(len(idx))
    if not levels:
        s = _immerkaer_sigma(split_cfa_planes(xe))
        return 0.0, s * s
    lv, vv, nn = np.array(levels), np.array(variances), np.array(counts, dtype=np.float64)
    if len(lv) == 1:
        return 0.0, float(vv[0])
    return _fit_line(lv, vv, nn)


def _fit_line(xv: np.ndarray, yv: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Fit ``y = a x + b`` (a, b >= 0) by IRLS with weights n / fitted².

    Texture can only inflate a bin's variance, so from the third iteration on
    bins more than 20 % above the line are left out (at least two stay).
    """
    base = n.astype(np.float64)
    wts = base.copy()
    a = b = 0.0
    for it in range(6):
        if it >= 2:
            fitted = a * xv + b
            keep = yv <= 1.2 * np.maximum(fitted, 1e-300)
            if np.count_nonzero(keep) >= 2:
                wts = np.where(keep, wts, 0.0)
        sw = np.sqrt(wts)
        design = np.stack([xv, np.ones_like(xv)], axis=1) * sw[:, None]
        a, b = np.linalg.lstsq(design, yv * sw, rcond=None)[0]
        if a < 0:
            a, b = 0.0, float(np.sum(wts * yv) / np.sum(wts))
        elif b < 0:
            b = 0.0
            a = float(np.sum(wts * xv * yv) / max(np.sum(wts * xv * xv), 1e-300))
        wts = base / np.maximum(a * xv + b, 1e-3 * max(float(np.max(yv)), 1e-30)) ** 2
    return float(max(a, 0.0)), float(max(b, 0.0))


# ---------------------------------------------------------------------------
# built-in methods on stabilised planes (unit noise × level)
# ---------------------------------------------------------------------------

def _bilateral(planes: np.ndarray, level: float, *, radius: int = 3, spatial_sigma: float = 1.2,
               range_scale: float = 1.0) -> np.ndarray:
    """Cross-plane bilateral filter: range distance summed over the four planes."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    spatial = np.exp(-(yy * yy + xx * xx) / (2.0 * spatial_sigma ** 2)).astype(np.float32)
    # noise-only pixel pairs differ by 2·4·level² in squared distance on average
    h2 = 8.0 * (range_scale * level) ** 2
    padded = np.pad(planes, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    out = np.empty_like(planes)
    _k.joint_bilateral(padded, padded, spatial, np.float32(1.0 / (2.0 * h2)), out)
    return out


_NLM_LUT_SIZE = 4096
_NLM_WEIGHT_FLOOR = 1e-3  # weights below this are 0 (OpenCV's fastNlMeans threshold)


def _nlm_weights(level: float, template_size: int, h_scale: float, channels: int) -> tuple[np.ndarray, np.float32]:
    """Weight table of :func:`_k.nlm_joint`: ``exp(-(D / t²)² / (C h²))`` for patch L1 distance ``D``.

    ``t`` the template size, ``C`` the channels and ``h = h_scale · level``:
    OpenCV's ``fastNlMeansDenoising`` weight with ``normType=NORM_L1``
    (the mean absolute difference per patch pixel, summed over channels).
    """
    hh = max(float(h_scale) * float(level), 1e-12)
    t2 = float(template_size * template_size)
    dmax = t2 * hh * math.sqrt(channels * -math.log(_NLM_WEIGHT_FLOOR))
    d = np.arange(_NLM_LUT_SIZE) * (dmax / (_NLM_LUT_SIZE - 1))
    wts = np.exp(-np.square(d / t2) / (channels * hh * hh))
    wts[wts < _NLM_WEIGHT_FLOOR] = 0.0
    wts[-1] = 0.0
    return wts.astype(np.float32), np.float32((_NLM_LUT_SIZE - 1) / dmax)


def _nlm_padded(padded: np.ndarray, shape: tuple[int, int], level: float, template_size: int, search_size: int,
                h_scale: float, out: np.ndarray | None = None) -> np.ndarray:
    lut, lut_scale = _nlm_weights(level, template_size, h_scale, padded.shape[0])
    if out is None:
        out = np.empty((padded.shape[0],) + shape, dtype=np.float32)
    _k.nlm_joint(padded, search_size // 2, template_size // 2, lut, lut_scale, out)
    return out


def _nlm(planes: np.ndarray, level: float, *, template_size: int = 3, search_size: int = 9,
         h_scale: float = 1.8) -> np.ndarray:
    """Non-local means of the four planes jointly (one weight per pixel pair, L1 patch distance).

    The weighting is OpenCV's ``fastNlMeansDenoising`` with ``NORM_L1`` on
    the planes as one 4-channel image (``h = h_scale · level``), computed in
    float32 by :func:`_k.nlm_joint` on mirrored borders.
    """
    p = search_size // 2 + template_size // 2
    _, h, w = planes.shape
    if p >= h or p >= w:
        mode = "symmetric" if h > 1 and w > 1 else "edge"
        padded = np.pad(planes, ((0, 0), (p, p), (p, p)), mode=mode).astype(np.float32)
    else:
        padded = np.pad(planes, ((0, 0), (p, p), (p, p)), mode="reflect").astype(np.float32)
    return _nlm_padded(padded, (h, w), level, template_size, search_size, h_scale)


def _nlm_mosaic(mosaic: np.ndarray, scale: np.ndarray, offset: np.ndarray, silent: np.ndarray, level: float, *,
                template_size: int = 3, search_size: int = 9, h_scale: float = 1.8) -> np.ndarray:
    """:func:`_nlm` between the GAT and its inverse, straight from and back to the mosaic.

    The planes are split, stabilised and mirror-padded in one kernel pass,
    and inverted and re-interleaved in another: the numbers of the
    plane-by-plane path without its full-frame temporaries.
    """
    h, w = mosaic.shape[0] // 2, mosaic.shape[1] // 2
    p = search_size // 2 + template_size // 2
    if p >= h or p >= w:  # tiny: the plane path pads these
        planes = split_cfa_planes(mosaic)
        stab = np.empty_like(planes)
        _k.gat_forward(planes, scale, offset, stab)
        den = _nlm(stab, level, template_size=template_size, search_size=search_size, h_scale=h_scale)
    else:
        padded = scratch("bayer_denoise.padded", (4, h + 2 * p, w + 2 * p))
        _k.gat_split_padded(mosaic, scale, offset, p, padded)
        den = _nlm_padded(padded, (h, w), level, template_size, search_size, h_scale,
                          out=scratch("bayer_denoise.nlm", (4, h, w)))
    out = recycled_empty(mosaic.shape, np.float32)
    _k.gat_inverse_merge(den, scale, offset, silent, mosaic, out)
    return out


@functools.lru_cache(maxsize=8)
def _starlet_noise_levels(levels: int) -> tuple[float, ...]:
    """L2 norm of each starlet detail band's impulse response (unit white noise σ per band)."""
    size = 4 * 2 ** levels + 1
    c = np.zeros((size, size), dtype=np.float32)
    c[size // 2, size // 2] = 1.0
    out = []
    for j in range(levels):
        nxt, tmp = np.empty_like(c), np.empty_like(c)
        _k.atrous_smooth(c, 2 ** j, tmp, nxt)
        out.append(float(np.sqrt(np.sum(np.square(c.astype(np.float64) - nxt)))))
        c = nxt
    return tuple(out)


def _wavelet(planes: np.ndarray, level: float, *, levels: int = 4, window: int = 5) -> np.ndarray:
    """Locally adaptive BayesShrink of the starlet coefficients of decorrelated planes."""
    noise = _starlet_noise_levels(levels)
    chans = np.empty_like(planes)
    _k.mix_planes(_DECORRELATE, planes, chans)
    out = np.empty_like(chans)
    tmp, detail, tmp2, ping, pong = (np.empty_like(chans[0]) for _ in range(5))
    for k in range(4):
        c = chans[k]
        acc = out[k]
        acc[...] = 0.0
        for j in range(levels):
            nxt = ping if j % 2 == 0 else pong  # never the buffer `c` lives in
            _k.atrous_smooth(c, 2 ** j, tmp, nxt)
            _k.local_bayes_shrink(c, nxt, window // 2, float((level * noise[j]) ** 2), detail, tmp2, acc)
            c = nxt
        acc += c
    _k.mix_planes(np.ascontiguousarray(_DECORRELATE.T), out, chans)
    return chans


BAYER_DENOISE_METHODS.update({
    "bilateral": BayerDenoiseMethod(_bilateral, ("radius", "spatial_sigma", "range_scale"), planes=True),
    "nlm": BayerDenoiseMethod(_nlm, ("template_size", "search_size", "h_scale"), planes=True,
                              mosaic_fn=_nlm_mosaic),
    "wavelet": BayerDenoiseMethod(_wavelet, ("levels", "window"), planes=True),
})


def register_bayer_denoise_method(name: str, fn: Callable[..., np.ndarray], *,
                                  params: tuple[str, ...] = (), model: str | None = None) -> None:
    """Add a mosaic denoiser to :data:`BAYER_DENOISE_METHODS`.

    Parameters
    ----------
    name : lowercase key, e.g. ``"unet"``.
    fn : ``fn(mosaic, cfa_pattern, sigma, **params) -> H×W float32``.
        ``mosaic`` is H×W float32 with even H and W (odd inputs are padded
        and the result cropped), black-subtracted and normalised to
        [0, 1]; ``sigma`` is the noise standard deviation already multiplied
        by ``strength``: a float when a constant ``sigma`` was given,
        otherwise an H×W float32 map ``sqrt(scale·x + offset)`` (x = 3×3
        local mean of each CFA plane) from the noise profile — the frame's
        or one estimated with :func:`estimate_noise_profile`.
    params : which :class:`BayerDenoise` fields (e.g. ``("weights", "device")``)
        are passed to ``fn`` as keywords.
    model : for a learned method, the model name whose weights
        ``weights="auto"`` resolves (see :mod:`ispkit.pipeline.models`);
        the stage then records the model in ``meta.extra["models"]``.
    """
    if not isinstance(name, str) or not name or name != name.lower() or not name.replace("_", "").isalnum():
        raise ParameterError(f"register_bayer_denoise_method: name must be a lowercase identifier, got {name!r}")
    if not callable(fn):
        raise ParameterError(f"register_bayer_denoise_method({name!r}): fn must be callable, got {type(fn).__name__}")
    if isinstance(params, str) or not all(isinstance(s, str) and s.isidentifier() for s in params):
        raise ParameterError(f"register_bayer_denoise_method({name!r}): params must be a tuple of keyword names, got {params!r}")
    old = BAYER_DENOISE_METHODS.get(name)
    if old is not None and (old.planes or (getattr(old.fn, "__module__", None), getattr(old.fn, "__qualname__", None))
                            != (getattr(fn, "__module__", None), getattr(fn, "__qualname__", None))):
        raise ParameterError(f"register_bayer_denoise_method: {name!r} is already registered")
    BAYER_DENOISE_METHODS[name] = BayerDenoiseMethod(fn, tuple(params), planes=False, model=model)


def _lookup(name: str, where: str) -> BayerDenoiseMethod:
    if not isinstance(name, str) or name not in BAYER_DENOISE_METHODS:
        from ..pipeline.registry import load_providers

        load_providers()  # plug-ins (e.g. the neural denoisers) register on import
    if not isinstance(name, str) or name not in BAYER_DENOISE_METHODS:
        raise unknown_name("Bayer denoise method", name, BAYER_DENOISE_METHODS, where)
    return BAYER_DENOISE_METHODS[name]


# ---------------------------------------------------------------------------
# noise model
# ---------------------------------------------------------------------------

def _per_plane(values: Any, cfa_pattern: str, what: str) -> np.ndarray:
    """Map 1, 3 (R, G, B) or 4 (R, Gr, Gb, B) values to the 4 raster-order planes."""
    from ..frame import cfa_position_of

    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0] if v.ndim else 1
    v = v.reshape(n, *v.shape[1:]) if v.ndim else v.reshape(1)
    pos = cfa_position_of(cfa_pattern)
    names = ("R", "Gr", "Gb", "B")
    if n == 1:
        return np.repeat(v, 4, axis=0)
    if n == 3:
        src = {"R": v[0], "Gr": v[1], "Gb": v[1], "B": v[2]}
    elif n == 4:
        src = dict(zip(names, v))
    else:
        raise ParameterError(f"denoise_bayer: {what} needs 1, 3 (R, G, B) or 4 (R, Gr, Gb, B) entries, got {n}")
    out = np.empty((4,) + v.shape[1:], dtype=np.float64)
    for name in names:
        r, c = pos[name]
        out[2 * r + c] = src[name]
    return out


def _noise_model(cfa_pattern: str, sigma: Any, noise_profile: Any,
                 white_level: float | None, mosaic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-plane (scale, offset) of ``variance = scale·x + offset``."""
    if sigma is not None:
        s = _per_plane(sigma, cfa_pattern, "sigma")
        if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ParameterError(f"denoise_bayer: sigma must be finite and >= 0, got {np.ravel(sigma).tolist()}")
        return np.zeros(4), s * s
    if noise_profile is not None:
        prof = np.asarray(noise_profile, dtype=np.float64)
        if prof.ndim == 1 and prof.shape == (2,):
            prof = prof[None, :]
        if prof.ndim != 2 or prof.shape[1] != 2 or not np.all(np.isfinite(prof)) or np.any(prof < 0):
            raise ParameterError(
                "denoise_bayer: noise_profile must be (scale, offset) pairs >= 0 (DNG NoiseProfile), "
                f"got {np.asarray(noise_profile).tolist()}"
            )
        p = _per_plane(prof, cfa_pattern, "noise_profile")
        return p[:, 0].copy(), p[:, 1].copy()
    a, b = _estimate_noise_profile(mosaic, white_level=white_level, checked=True)
    return np.full(4, a), np.full(4, b)


def _stabilisable(scale: np.ndarray, offset: np.ndarray, mosaic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Use the GAT only where float32 keeps precision; otherwise constant noise (``mosaic`` even-sized)."""
    a, b = scale.copy(), offset.copy()
    for k in range(4):
        if a[k] > 0 and (b[k] <= 0 or 2.0 * math.sqrt(b[k]) / a[k] < 1e5):
            continue
        plane = np.ascontiguousarray(mosaic[k // 2::2, k % 2::2])
        b[k] = b[k] + a[k] * max(float(plane.mean()), 0.0)
        a[k] = 0.0
    return a, b


def denoise_bayer(mosaic: np.ndarray, cfa_pattern: str, method: str = "bilateral", *,
                  sigma: Any = None, strength: float = 1.0, noise_profile: Any = None,
                  white_level: float | None = 1.0, **params: Any) -> np.ndarray:
    """Denoise a Bayer mosaic on its four half-resolution CFA planes.

    Parameters
    ----------
    mosaic : H×W float32 mosaic, black-subtracted and normalised (nominally [0, 1]).
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG".
    method : ``"bilateral"`` (cross-plane bilateral), ``"nlm"`` (non-local
        means), ``"wavelet"`` (starlet + local BayesShrink) or a plug-in.
    sigma : noise standard deviation in normalised units — a float, or 3
        (R, G, B) / 4 (R, Gr, Gb, B) values; overrides ``noise_profile``.
        None: use ``noise_profile``, else estimate it from the data.
    strength : multiplies the noise level (0 returns the input).
    noise_profile : DNG NoiseProfile ``((scale, offset), …)`` with 1, 3 or
        4 pairs: variance = scale·x + offset.
    white_level : saturation of the normalised data (clipped patches are
        ignored when estimating the noise).
    **params : method parameters — bilateral: ``radius`` (3),
        ``spatial_sigma`` (1.2), ``range_scale`` (1.0); nlm:
        ``template_size`` (3), ``search_size`` (9), ``h_scale`` (1.8);
        wavelet: ``levels`` (4), ``window`` (5); plug-ins: their own.

    Returns
    -------
    H×W float32.

    Notes
    -----
    RAW_MOSAIC, H×W float32 normalised in → H×W float32 out. Signal-dependent
    noise is stabilised by the generalised Anscombe transform and restored
    with its exact unbiased inverse (closed form).

    References
    ----------
    M. Mäkitalo, A. Foi, IEEE TIP 22(1), 2013; C. Tomasi, R. Manduchi, ICCV
    1998; A. Buades, B. Coll, J.-M. Morel, "A non-local algorithm for image
    denoising", CVPR 2005; S. G. Chang, B. Yu, M. Vetterli, "Adaptive wavelet
    thresholding for image denoising and compression", IEEE TIP 9(9), 2000;
    J.-L. Starck, F. Murtagh, J. Fadili, *Sparse Image and Signal Processing*, 2010.
    """
    with threads_for(int(np.size(mosaic))):
        return _denoise_bayer(mosaic, cfa_pattern, method, sigma=sigma, strength=strength,
                              noise_profile=noise_profile, white_level=white_level, **params)


def _denoise_bayer(mosaic: np.ndarray, cfa_pattern: str, method: str = "bilateral", *,
                  sigma: Any = None, strength: float = 1.0, noise_profile: Any = None,
                  white_level: float | None = 1.0, **params: Any) -> np.ndarray:
    where = f"denoise_bayer({method!r})"
    entry = _lookup(method, "denoise_bayer")
    bad = sorted(set(params) - set(entry.params))
    if bad:
        raise ParameterError(
            f"{where}: unknown parameter(s) {', '.join(map(repr, bad))}; "
            f"this method takes: {', '.join(entry.params) or '(none)'}"
        )
    cfa = check_cfa_pattern(cfa_pattern, "denoise_bayer")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (math.isfinite(strength) and strength >= 0):
        raise ParameterError(f"{where}: strength must be a finite number >= 0, got {strength!r}")
    x = np.asarray(mosaic)
    if x.ndim != 2:
        raise InputError(f"{where}: expected an H×W mosaic, got shape {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"{where}: a mosaic needs at least one 2×2 block, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{where}: expected real values, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if np.isnan(_finite_probe(readonly(x))):
        raise InputError(
            f"{where}: the mosaic holds {int(np.count_nonzero(~np.isfinite(x)))} non-finite (NaN/inf) "
            "values; repair them first"
        )
    _check_method_params(method, params)
    h, w = x.shape
    xe = _pad_even(x)

    if not entry.planes:
        sig = _plugin_sigma(split_cfa_planes(xe), cfa, sigma, noise_profile, strength, xe, white_level)
        res = np.asarray(entry.fn(xe, cfa, sig, **params), dtype=np.float32)
        if res.shape != xe.shape:
            raise InputError(f"{where}: the plug-in returned shape {res.shape}, expected {xe.shape}")
        return np.ascontiguousarray(res[:h, :w])

    if strength == 0:
        return x.copy()
    scale, offset = _noise_model(cfa, sigma, noise_profile, white_level, xe)
    if np.all(scale == 0) and np.all(offset == 0):
        return x.copy()  # noise-free
    scale, offset = _stabilisable(scale, offset, xe)
    # a plane without noise is passed through untouched
    silent = (scale == 0) & (offset == 0)
    offset = np.where(silent, 1.0, offset)
    if entry.mosaic_fn is not None:
        return entry.mosaic_fn(xe, scale, offset, silent, float(strength), **params)[:h, :w]
    planes = split_cfa_planes(xe)
    stab = np.empty_like(planes)
    _k.gat_forward(planes, scale, offset, stab)
    den = np.ascontiguousarray(entry.fn(stab, float(strength), **params), dtype=np.float32)
    out_planes = np.empty_like(planes)
    _k.gat_inverse(den, scale, offset, out_planes)
    if silent.any():
        out_planes[silent] = planes[silent]
    return merge_cfa_planes(out_planes)[:h, :w]


def _check_method_params(method: str, params: dict[str, Any]) -> None:
    def bad(name: str, want: str) -> ParameterError:
        return ParameterError(f"denoise_bayer({method!r}): {name} must be {want}, got {params[name]!r}")

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_pos(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0

    if method == "bilateral":
        if "radius" in params and not (is_int(params["radius"]) and 1 <= params["radius"] <= 10):
            raise bad("radius", "an integer in [1, 10]")
        for name in ("spatial_sigma", "range_scale"):
            if name in params and not is_pos(params[name]):
                raise bad(name, "a finite number > 0")
    elif method == "nlm":
        for name in ("template_size", "search_size"):
            if name in params and not (is_int(params[name]) and params[name] >= 1 and params[name] % 2 == 1):
                raise bad(name, "an odd positive integer")
        if "h_scale" in params and not is_pos(params["h_scale"]):
            raise bad("h_scale", "a finite number > 0")
    elif method == "wavelet":
        if "levels" in params and not (is_int(params["levels"]) and 1 <= params["levels"] <= 8):
            raise bad("levels", "an integer in [1, 8]")
        if "window" in params and not (is_int(params["window"]) and params["window"] >= 1 and params["window"] % 2 == 1):
            raise bad("window", "an odd positive integer")


def _plugin_sigma(planes: np.ndarray, cfa: str, sigma: Any, noise_profile: Any, strength: float,
                  mosaic: np.ndarray, white_level: float | None) -> Any:
    """The noise level handed to a plug-in: a float, or an H×W σ map (mosaic layout)."""
    if sigma is not None:
        s = _per_plane(sigma, cfa, "sigma")
        if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ParameterError(f"denoise_bayer: sigma must be finite and >= 0, got {np.ravel(sigma).tolist()}")
        if np.all(s == s[0]):
            return float(s[0] * strength)
        smap = np.broadcast_to(s[:, None, None], planes.shape).astype(np.float32)
    else:
        a, b = _noise_model(cfa, None, noise_profile, white_level, mosaic)
        local = np.empty_like(planes)
        _k.box3(np.ascontiguousarray(planes), local)
        smap = np.sqrt(np.maximum(a[:, None, None] * np.maximum(local, 0) + b[:, None, None], 0)).astype(np.float32)
    return merge_cfa_planes(smap * np.float32(strength))


# ---------------------------------------------------------------------------
# stage
# ---------------------------------------------------------------------------

_STAGE_FIELDS = ("sigma", "strength", "weights", "device")


@register_stage
@dataclass(frozen=True)
class BayerDenoise(Stage):
    """Denoise the RAW mosaic on its four CFA planes.

    Parameters
    ----------
    method : a key of :data:`BAYER_DENOISE_METHODS` (``"bilateral"``,
        ``"nlm"``, ``"wavelet"``, plug-ins such as ``"unet"``).
    sigma : constant noise σ in normalised units; None uses
        ``meta.noise_profile`` or estimates the noise from the frame.
    strength : multiplies the noise level.
    weights, device : for plug-in (neural) methods: a checkpoint path
        (checked when the stage is built) or ``"auto"``, which looks for
        ``<model>.pth`` in ``$ISPKIT_WEIGHTS``; a learned method without
        weights refuses to run (MissingWeightsError).
    fallback : a classical method run when a learned ``method`` has
        ``weights="auto"`` and no file is found (announced once with a
        FallbackWarning); None raises instead. Learned methods record
        ``{"stage", "model", "weights", "sha256", "fallback",
        "random_weights"}`` in ``meta.extra["models"]``.
    random_weights : let a learned method run on random initial weights
        when it has none (warned once, recorded).

    Notes
    -----
    RAW_MOSAIC → RAW_MOSAIC, float32. A frame still in raw counts (black
    level not subtracted) is normalised with its black/white level for the
    denoiser and mapped back afterwards.

    References
    ----------
    See :func:`denoise_bayer`.
    """

    type_name = "bayer_denoise"
    method: str = "bilateral"
    sigma: float | None = None
    strength: float = 1.0
    weights: str | None = None
    device: str = "auto"
    fallback: str | None = None
    random_weights: bool = False

    def __post_init__(self) -> None:
        name = self.type_name
        _lookup(self.method, f"stage {name!r}")
        if self.fallback is not None and _lookup(self.fallback, f"stage {name!r} parameter 'fallback'").model:
            raise ParameterError(f"stage {name!r}: parameter fallback must be a classical method "
                                 f"(e.g. 'nlm'), got the learned method {self.fallback!r}")
        if self.sigma is not None and (isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float))
                                       or not (math.isfinite(self.sigma) and self.sigma >= 0)):
            raise ParameterError(f"stage {name!r}: parameter sigma must be None or a finite number >= 0, got {self.sigma!r}")
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) or not (
                math.isfinite(self.strength) and self.strength >= 0):
            raise ParameterError(f"stage {name!r}: parameter strength must be a finite number >= 0, got {self.strength!r}")
        if self.weights is not None and not isinstance(self.weights, str):
            raise ParameterError(f"stage {name!r}: parameter weights must be a path / model name string or None, got {self.weights!r}")
        check_weights_param(self.weights, f"stage {name!r}")  # an explicit path must exist when the stage is built
        if not isinstance(self.random_weights, bool):
            raise ParameterError(f"stage {name!r}: parameter random_weights must be True or False, "
                                 f"got {self.random_weights!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ParameterError(f"stage {name!r}: parameter device must be a device string such as 'auto' or 'cpu', got {self.device!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.RAW_MOSAIC, requires=("cfa_pattern",))

    @property
    def learned_model(self) -> str | None:
        """The model a learned ``method`` runs (None for classical methods): without weights it refuses."""
        return _lookup(self.method, f"stage {self.type_name!r}").model

    def process(self, frame: Frame) -> Frame:
        m = frame.meta
        method, weights, record = self.method, self.weights, None
        entry = _lookup(method, f"stage {self.type_name!r}")
        if entry.model is not None:
            method, weights, record = self._learned_choice(entry.model)
            entry = _lookup(method, f"stage {self.type_name!r}")
        kwargs = {k: weights if k == "weights" else getattr(self, k) for k in entry.params
                  if k in ("weights", "device", "random_weights")}
        pattern = m.extra.get(BLACK_LEVEL_PATTERN_KEY)
        black = np.asarray(m.black_level, dtype=np.float64)
        raw_counts = pattern is not None or m.white_level != 1.0 or np.any(black != 0)
        x = frame.data
        if raw_counts:
            x = subtract_black_level(x, black, m.white_level, black_level_pattern=pattern)
        wp = m.white_point
        white = float(np.min(wp)) if wp is not None else 1.0
        out = denoise_bayer(x, m.cfa_pattern, method, sigma=self.sigma, strength=float(self.strength),
                            noise_profile=m.noise_profile, white_level=white, **kwargs)
        if raw_counts:
            pat = np.array(pattern, dtype=np.float64) if pattern is not None else black.reshape(2, 2)
            h, w = out.shape
            tiled = np.tile(pat, (h // pat.shape[0] + 1, w // pat.shape[1] + 1))[:h, :w]
            out = (out * (m.white_level - tiled) + tiled).astype(np.float32)
        if record is not None:
            return frame.replace(data=out, extra=add_model_record(m.extra, record))
        return frame.replace(data=out)

    def _learned_choice(self, model: str) -> tuple[str, str | None, dict[str, Any]]:
        """(method, weights path, model record): the learned method, or the fallback when 'auto' found nothing."""
        where = f"stage {self.type_name!r}"
        path, missing = resolve_weights(model, self.weights, where)
        if missing is None or self.fallback is None:
            hint = f"{missing}; or set fallback (e.g. 'nlm')" if missing else None
            rand = require_weights(model, path, random_weights=self.random_weights, where=where, reason=hint)
            return self.method, path, model_record(self.type_name, model, path, random_weights=rand)
        text = f"{self.fallback} ({missing})"
        announce_fallback(self.type_name, model, text)
        return self.fallback, None, model_record(self.type_name, model, None, text)
