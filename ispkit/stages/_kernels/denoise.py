"""Numba kernels for Bayer-plane denoising.

All kernels work on the four half-resolution CFA planes stacked as a
4×h×w float32 array (order R, Gr, Gb, B), after the variance-stabilising
transform has made the noise unit-variance.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

__all__ = [
    "gat_forward",
    "gat_inverse",
    "joint_bilateral",
    "atrous_smooth",
    "local_bayes_shrink",
    "mix_planes",
    "box3",
    "gat_value",
    "gat_split_padded",
    "gat_inverse_merge",
    "nlm_joint",
]

_SQ32 = math.sqrt(1.5)


@numba.njit(cache=True, inline="always")
def _mirror(i, n):
    """Reflect an index into [0, n) (…, 2, 1, 0, 1, 2, …, n-2, n-1, n-2, …)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = abs(i) % period
    return period - i if i >= n else i


@numba.njit(cache=True, parallel=True)
def gat_forward(z, scale, offset, out):
    """Generalised Anscombe transform of each plane to unit noise variance.

    Notes
    -----
    Plane ``k`` has variance ``scale[k] * x + offset[k]``. With
    ``scale[k] > 0``: ``(2 / a) * sqrt(max(a z + 3/8 a² + b, 0))``; with
    ``scale[k] == 0`` (signal-independent noise): ``z / sqrt(b)``.

    References
    ----------
    M. Mäkitalo, A. Foi, "Optimal inversion of the generalized Anscombe
    transformation for Poisson-Gaussian noise", IEEE TIP 22(1), 2013.
    """
    n, h, w = z.shape
    for r in prange(n * h):
        k = r // h
        i = r - k * h
        a = scale[k]
        b = offset[k]
        if a > 0.0:
            c0 = 0.375 * a * a + b
            f = 2.0 / a
            for j in range(w):
                v = a * np.float64(z[k, i, j]) + c0
                out[k, i, j] = f * math.sqrt(v) if v > 0.0 else 0.0
        else:
            f = 1.0 / math.sqrt(b)
            for j in range(w):
                out[k, i, j] = np.float64(z[k, i, j]) * f


@numba.njit(cache=True, parallel=True)
def gat_inverse(d, scale, offset, out):
    """Closed-form approximation of the exact unbiased inverse of :func:`gat_forward`.

    Notes
    -----
    ``I(D) = D²/4 + √(3/2)/4 D⁻¹ − 11/8 D⁻² + 5/8 √(3/2) D⁻³ − 1/8 − σ²``
    with ``σ² = b / a²``, clipped at 0, times ``a``; below ``D = 1`` (where
    the expansion no longer holds) the result is 0.

    References
    ----------
    M. Mäkitalo, A. Foi, IEEE TIP 22(1), 2013, eq. (8)–(9).
    """
    n, h, w = d.shape
    for r in prange(n * h):
        k = r // h
        i = r - k * h
        a = scale[k]
        b = offset[k]
        if a > 0.0:
            s2 = b / (a * a)
            for j in range(w):
                x = np.float64(d[k, i, j])
                if x < 1.0:
                    out[k, i, j] = 0.0
                    continue
                ix = 1.0 / x
                v = (0.25 * x * x + 0.25 * _SQ32 * ix - 1.375 * ix * ix
                     + 0.625 * _SQ32 * ix * ix * ix - 0.125 - s2)
                out[k, i, j] = a * v if v > 0.0 else 0.0
        else:
            f = math.sqrt(b)
            for j in range(w):
                out[k, i, j] = np.float64(d[k, i, j]) * f


@numba.njit(cache=True, parallel=True)
def box3(x, out):
    """3×3 mean of each plane of a C×h×w array (mirrored borders)."""
    n, h, w = x.shape
    for r in prange(n * h):
        k = r // h
        i = r - k * h
        i0 = _mirror(i - 1, h)
        i2 = _mirror(i + 1, h)
        for j in range(w):
            j0 = _mirror(j - 1, w)
            j2 = _mirror(j + 1, w)
            s = (x[k, i0, j0] + x[k, i0, j] + x[k, i0, j2]
                 + x[k, i, j0] + x[k, i, j] + x[k, i, j2]
                 + x[k, i2, j0] + x[k, i2, j] + x[k, i2, j2])
            out[k, i, j] = s * np.float32(1.0 / 9.0)


@numba.njit(cache=True, parallel=True, fastmath=True)
def joint_bilateral(src, guide, spatial, inv_two_h2, out):
    """Cross-plane bilateral filter: one range weight shared by the four planes.

    Parameters
    ----------
    src : C×(h+2r)×(w+2r) float32 planes to filter, padded by ``r`` on every
        side (e.g. ``np.pad(..., mode="reflect")``).
    guide : planes the range distance is measured on, padded the same way.
    spatial : (2r+1)×(2r+1) float32 spatial weights.
    inv_two_h2 : ``1 / (2 h²)`` of the range kernel (distance summed over planes).
    out : C×h×w float32.

    Notes
    -----
    Loops run tap by tap over whole rows, so the inner loops are contiguous
    and vectorise.

    References
    ----------
    C. Tomasi, R. Manduchi, "Bilateral filtering for gray and color images",
    ICCV 1998; E. Eisemann, F. Durand, "Flash photography enhancement via
    intrinsic relighting", SIGGRAPH 2004 (joint/cross bilateral).
    """
    nc = src.shape[0]
    rad = spatial.shape[0] // 2
    h = out.shape[1]
    w = out.shape[2]
    for i in prange(h):
        acc = np.zeros((nc, w), dtype=np.float32)
        wsum = np.zeros(w, dtype=np.float32)
        wt = np.empty(w, dtype=np.float32)
        for di in range(2 * rad + 1):
            for dj in range(2 * rad + 1):
                sw = spatial[di, dj]
                for j in range(w):
                    wt[j] = 0.0
                for c in range(nc):
                    g0 = guide[c, i + rad]
                    g1 = guide[c, i + di]
                    for j in range(w):
                        t = g1[j + dj] - g0[j + rad]
                        wt[j] += t * t
                for j in range(w):
                    wt[j] = sw * np.float32(math.exp(-wt[j] * inv_two_h2))
                    wsum[j] += wt[j]
                for c in range(nc):
                    s1 = src[c, i + di]
                    a = acc[c]
                    for j in range(w):
                        a[j] += wt[j] * s1[j + dj]
        for c in range(nc):
            for j in range(w):
                out[c, i, j] = acc[c, j] / wsum[j]


@numba.njit(cache=True, parallel=True)
def atrous_smooth(x, step, tmp, out):
    """One à-trous B3-spline smoothing ``[1, 4, 6, 4, 1] / 16`` with holes of ``step``.

    Notes
    -----
    h×w float32 in, ``tmp`` and ``out`` h×w float32; mirrored borders.

    References
    ----------
    J.-L. Starck, F. Murtagh, J. Fadili, *Sparse Image and Signal
    Processing*, Cambridge 2010, §3.5 (starlet transform).
    """
    h, w = x.shape
    c0 = np.float32(6.0 / 16.0)
    c1 = np.float32(4.0 / 16.0)
    c2 = np.float32(1.0 / 16.0)
    s2 = 2 * step
    lo = min(s2, w)
    hi = max(lo, w - s2)
    for i in prange(h):
        xr = x[i]
        tr = tmp[i]
        for j in range(lo):
            tr[j] = (c0 * xr[j] + c1 * (xr[_mirror(j - step, w)] + xr[_mirror(j + step, w)])
                     + c2 * (xr[_mirror(j - s2, w)] + xr[_mirror(j + s2, w)]))
        for j in range(lo, hi):
            tr[j] = c0 * xr[j] + c1 * (xr[j - step] + xr[j + step]) + c2 * (xr[j - s2] + xr[j + s2])
        for j in range(hi, w):
            tr[j] = (c0 * xr[j] + c1 * (xr[_mirror(j - step, w)] + xr[_mirror(j + step, w)])
                     + c2 * (xr[_mirror(j - s2, w)] + xr[_mirror(j + s2, w)]))
    for i in prange(h):
        r0 = tmp[i]
        rm1 = tmp[_mirror(i - step, h)]
        rp1 = tmp[_mirror(i + step, h)]
        rm2 = tmp[_mirror(i - s2, h)]
        rp2 = tmp[_mirror(i + s2, h)]
        orow = out[i]
        for j in range(w):
            orow[j] = c0 * r0[j] + c1 * (rm1[j] + rp1[j]) + c2 * (rm2[j] + rp2[j])


@numba.njit(cache=True, parallel=True)
def local_bayes_shrink(fine, coarse, radius, noise_var, detail, tmp, acc):
    """Soft-threshold one starlet band with a locally adaptive BayesShrink threshold.

    Parameters
    ----------
    fine, coarse : h×w float32 consecutive smoothing levels; the band is
        ``detail = fine - coarse``.
    radius : half-width of the square window the signal variance is measured in.
    noise_var : noise variance of the band.
    detail, tmp : h×w float32 work buffers.
    acc : h×w float32; the shrunk band is added to it.

    Notes
    -----
    ``T = noise_var / sqrt(max(E[d²] - noise_var, ε))`` with ``E[d²]`` the
    window mean of ``d²`` (mirrored borders), then ``soft(d, T)``.

    References
    ----------
    S. G. Chang, B. Yu, M. Vetterli, "Adaptive wavelet thresholding for
    image denoising and compression", IEEE TIP 9(9), 2000; "Spatially
    adaptive wavelet thresholding with context modeling for image
    denoising", IEEE TIP 9(9), 2000.
    """
    h, w = fine.shape
    inv = np.float32(1.0 / (2 * radius + 1))
    nv = np.float32(noise_var)
    lo = min(radius, w)
    hi = max(lo, w - radius)
    for i in prange(h):
        fr = fine[i]
        cr = coarse[i]
        dr = detail[i]
        for j in range(w):
            dr[j] = fr[j] - cr[j]
        tr = tmp[i]
        for j in range(lo):
            s = np.float32(0.0)
            for k in range(-radius, radius + 1):
                v = dr[_mirror(j + k, w)]
                s += v * v
            tr[j] = s
        for j in range(lo, hi):
            s = np.float32(0.0)
            for k in range(-radius, radius + 1):
                v = dr[j + k]
                s += v * v
            tr[j] = s
        for j in range(hi, w):
            s = np.float32(0.0)
            for k in range(-radius, radius + 1):
                v = dr[_mirror(j + k, w)]
                s += v * v
            tr[j] = s
    for i in prange(h):
        e = np.zeros(w, dtype=np.float32)
        for k in range(-radius, radius + 1):
            rr = tmp[_mirror(i + k, h)]
            for j in range(w):
                e[j] += rr[j]
        dr = detail[i]
        ar = acc[i]
        for j in range(w):
            ex = e[j] * inv * inv - nv
            thr = nv / math.sqrt(max(ex, np.float32(1e-12)))
            d = dr[j]
            mag = abs(d) - thr
            ar[j] += math.copysign(mag, d) if mag > 0 else np.float32(0.0)


@numba.njit(cache=True, parallel=True)
def mix_planes(m, src, out):
    """``out[k] = Σ_c m[k, c] · src[c]`` for C×h×w float32 planes (a per-pixel colour matrix)."""
    nc, h, w = src.shape
    nk = m.shape[0]
    for i in prange(h):
        for k in range(nk):
            orow = out[k, i]
            for j in range(w):
                orow[j] = 0.0
            for c in range(nc):
                f = m[k, c]
                srow = src[c, i]
                for j in range(w):
                    orow[j] += f * srow[j]


@numba.njit(cache=True, inline="always")
def gat_value(z, a, b):
    """One sample of :func:`gat_forward` (float32 result, same arithmetic)."""
    if a > 0.0:
        v = a * np.float64(z) + (0.375 * a * a + b)
        return np.float32((2.0 / a) * math.sqrt(v)) if v > 0.0 else np.float32(0.0)
    return np.float32(np.float64(z) * (1.0 / math.sqrt(b)))


@numba.njit(cache=True, parallel=True)
def gat_split_padded(x, scale, offset, pad, out):
    """Split a mosaic into its CFA planes, stabilise them (:func:`gat_value`) and mirror-pad them by ``pad``.

    Notes
    -----
    ``x`` 2h×2w float32; ``out`` 4×(h+2·pad)×(w+2·pad) float32, plane
    ``2 di + dj`` is ``x[di::2, dj::2]``; borders reflect without repeating
    the edge (``np.pad(mode="reflect")``, OpenCV's BORDER_REFLECT_101).
    Needs ``pad < h`` and ``pad < w``.
    """
    h = x.shape[0] // 2
    w = x.shape[1] // 2
    for r in prange(4 * (h + 2 * pad)):
        k = r // (h + 2 * pad)
        ip = r - k * (h + 2 * pad)
        i = _mirror(ip - pad, h)
        di = k // 2
        dj = k - 2 * di
        row = x[2 * i + di]
        orow = out[k, ip]
        a = scale[k]
        b = offset[k]
        for jp in range(w + 2 * pad):
            j = _mirror(jp - pad, w)
            orow[jp] = gat_value(row[2 * j + dj], a, b)


@numba.njit(cache=True, parallel=True)
def gat_inverse_merge(d, scale, offset, keep, x, out):
    """:func:`gat_inverse` of C×h×w planes written straight into the 2h×2w mosaic ``out``.

    ``keep`` (4,) bool: planes copied from the input mosaic ``x`` instead.
    """
    h = d.shape[1]
    w = d.shape[2]
    for r in prange(2 * h):
        i = r // 2
        di = r - 2 * i
        orow = out[r]
        xrow = x[r]
        for dj in range(2):
            k = 2 * di + dj
            if keep[k]:
                for j in range(w):
                    orow[2 * j + dj] = xrow[2 * j + dj]
                continue
            a = scale[k]
            b = offset[k]
            drow = d[k, i]
            if a > 0.0:
                s2 = b / (a * a)
                for j in range(w):
                    v = np.float64(drow[j])
                    if v < 1.0:
                        orow[2 * j + dj] = 0.0
                        continue
                    ix = 1.0 / v
                    q = (0.25 * v * v + 0.25 * _SQ32 * ix - 1.375 * ix * ix
                         + 0.625 * _SQ32 * ix * ix * ix - 0.125 - s2)
                    orow[2 * j + dj] = a * q if q > 0.0 else 0.0
            else:
                f = math.sqrt(b)
                for j in range(w):
                    orow[2 * j + dj] = np.float64(drow[j]) * f


_NLM_BLOCK = 32


@numba.njit(cache=True, parallel=True, fastmath=True)
def nlm_joint(padded, search_radius, template_radius, lut, lut_scale, out):
    """Non-local means of C planes with one weight per pixel pair (L1 patch distance summed over planes).

    Parameters
    ----------
    padded : C×(h+2p)×(w+2p) float32, ``p = search_radius + template_radius``,
        mirrored borders.
    search_radius, template_radius : half-widths of the search window and
        the square patch.
    lut : float32 weights ``lut[m]`` for a patch distance ``D = m / lut_scale``
        (D: sum of ``|a - b|`` over the patch's pixels and the planes);
        distances beyond the table weigh its last entry (0).
    out : C×h×w float32.

    Notes
    -----
    Offset by offset over blocks of rows: the channel-summed differences,
    a separable box sum, the weight looked up, and the weighted sums — all
    contiguous row loops. Each output pixel sums the same terms in the same
    order whatever the thread count.

    References
    ----------
    A. Buades, B. Coll, J.-M. Morel, "A non-local algorithm for image
    denoising", CVPR 2005; J. Darbon et al., "Fast nonlocal filtering applied
    to electron cryomicroscopy", ISBI 2008 (offset-major evaluation).
    """
    nc = padded.shape[0]
    h = out.shape[1]
    w = out.shape[2]
    sr = search_radius
    tr = template_radius
    p = sr + tr
    tw = 2 * tr + 1
    last = np.float32(lut.size - 1)
    half = np.float32(0.5)
    w0 = lut[0]
    nblk = (h + _NLM_BLOCK - 1) // _NLM_BLOCK
    for bi in prange(nblk):
        r0 = bi * _NLM_BLOCK
        nr = min(h, r0 + _NLM_BLOCK) - r0
        acc = np.zeros((nc, nr, w), dtype=np.float32)
        wsum = np.zeros((nr, w), dtype=np.float32)
        diff = np.empty((nr + sr + 2 * tr, w + sr + 2 * tr), dtype=np.float32)
        hsum = np.empty((nr + sr + 2 * tr, w + sr), dtype=np.float32)
        wts = np.empty((nr + sr, w + sr), dtype=np.float32)
        # the pixel itself (distance 0)
        for y in range(nr):
            ws = wsum[y]
            for x in range(w):
                ws[x] += w0
            for c in range(nc):
                src = padded[c, r0 + y + p, p:p + w]
                ar = acc[c, y]
                for x in range(w):
                    ar[x] += w0 * src[x]
        # offsets in one half-plane; the weight of pixel p for offset d is also that of p + d for -d
        for dy in range(0, sr + 1):
            for dx in range(-sr, sr + 1):
                if dy == 0 and dx <= 0:
                    continue
                ne = nr + dy                   # weight rows: output rows r0 - dy … r1 - 1
                cx0 = -dx if dx > 0 else 0     # weight columns: cx0 … cx0 + we - 1
                we = w + abs(dx)
                for yy in range(ne + 2 * tr):
                    py = r0 - dy + yy + sr     # padded row of image row r0 - dy - tr + yy
                    drow = diff[yy, :we + 2 * tr]
                    drow[:] = 0.0
                    c0 = cx0 + sr
                    for c in range(nc):
                        a = padded[c, py, c0:c0 + we + 2 * tr]
                        b = padded[c, py + dy, c0 + dx:c0 + dx + we + 2 * tr]
                        for xx in range(we + 2 * tr):
                            drow[xx] += abs(a[xx] - b[xx])
                    hrow = hsum[yy, :we]
                    hrow[:] = drow[:we]
                    for k in range(1, tw):
                        dk = drow[k:k + we]
                        for x in range(we):
                            hrow[x] += dk[x]
                for yy in range(ne):
                    wrow = wts[yy, :we]
                    wrow[:] = hsum[yy, :we]
                    for k in range(1, tw):
                        hk = hsum[yy + k, :we]
                        for x in range(we):
                            wrow[x] += hk[x]
                    for x in range(we):
                        m = np.int32(min(wrow[x] * lut_scale + half, last))
                        wrow[x] = lut[m]
                for y in range(nr):
                    ws = wsum[y]
                    fw = wts[y + dy, -cx0:w - cx0]            # weight of q for +d
                    bw = wts[y, -dx - cx0:w - dx - cx0]       # weight of q - d for +d = of q for -d
                    for x in range(w):
                        ws[x] += fw[x] + bw[x]
                    for c in range(nc):
                        ar = acc[c, y]
                        fsrc = padded[c, r0 + y + p + dy, p + dx:p + dx + w]
                        bsrc = padded[c, r0 + y + p - dy, p - dx:p - dx + w]
                        for x in range(w):
                            ar[x] += fw[x] * fsrc[x] + bw[x] * bsrc[x]
        for c in range(nc):
            for y in range(nr):
                for x in range(w):
                    out[c, r0 + y, x] = acc[c, y, x] / wsum[y, x]
