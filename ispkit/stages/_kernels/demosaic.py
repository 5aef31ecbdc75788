"""Numba kernels of the Bayer demosaicing methods (bilinear, Malvar 2004, Menon 2007, RCD 2017).

Layout shared by every kernel
-----------------------------
* ``x`` is the H×W mosaic in the compute dtype (float32, or float64 for
  float64 input); ``out`` is a C-contiguous H×W×3 float32 array that the
  kernels fill completely (RGB interleaved).
* ``cfa`` is the 2×2 table of colour indices (0 = R, 1 = G, 2 = B) of the
  pattern, so all four Bayer layouts run through one code path: a row of
  parity ``p`` holds green at the columns where ``isg[p]`` is true and one
  chroma colour (``cfa[p]`` without the 1) elsewhere. Rows holding red are
  "red rows", the others "blue rows".
* ``kc`` holds the filter constants in the compute dtype (see
  :func:`filter_constants`), which keeps every product in that dtype.
* Each kernel returns the number of non-finite input values it met: the
  check rides along with the rows already in cache instead of costing a
  separate pass over the mosaic.
* Inner loops run over unsigned column indices: Numba then emits no
  negative-index wraparound, and LLVM vectorises the loops (AVX-512 here).
  Each loop computes the green-site and the chroma-site formula for every
  column and selects by ``isg`` — branch-free, unit stride — and writes RGB
  interleaved with compile-time offsets.
* Borders are mirrored (whole-sample symmetric, scipy's ``mode="mirror"``):
  mirroring keeps the Bayer parity, so the same formulas hold up to the
  edge. Rows are mirrored by choosing row views; the one or two border
  columns of bilinear and Malvar use a scalar per-pixel routine with the
  same formulas; Menon mirror-pads its row buffers.
* Menon streams each band of rows through rings of padded row buffers (8
  rows per plane, mirror-padded by two columns), one stage per row function
  and at most 7 rows of lag, so every intermediate stays in cache and no
  full-frame temporary exists. Its direction classifier (green estimates,
  gradients, decision) always runs in float64 in scipy's summation order,
  so its decisions equal colour-demosaicing's on the same mosaic.
* RCD processes tiles of RCD_TILE_ROWS rows plus a mirrored halo of
  RCD_PAD rows and columns in planar tile buffers (one per parallel slot),
  step by step as the published algorithm is written. Its row functions use
  ``error_model="numpy"``: Python's model tests every division for a zero
  divisor, which keeps LLVM from vectorising the loops (the denominators
  here are ≥ 1e-5 by construction).

References
----------
Malvar, H. S., He, L.-W., Cutler, R., "High-quality linear interpolation for
demosaicing of Bayer-patterned color images", ICASSP 2004.

Menon, D., Andriani, S., Calvagno, G., "Demosaicing With Directional
Filtering and a posteriori Decision", IEEE Trans. Image Processing 16(1),
2007.

Sanz Rodríguez, L., "Ratio Corrected Demosaicing" (RCD), release 2.2/2.3,
2017, https://github.com/LuisSR/RCD-Demosaicing (the default demosaicing of
RawTherapee and darktable).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "filter_constants",
    "color_masks",
    "bilinear_kernel",
    "malvar2004_kernel",
    "menon2007_kernel",
    "menon2007_workspace",
    "MENON_PAD",
    "MENON_RING",
    "rcd_constants",
    "rcd2017_kernel",
    "rcd2017_workspace",
    "RCD_PAD",
    "RCD_TILE_ROWS",
]

_U1 = np.uintp(1)
_U2 = np.uintp(2)
_U3 = np.uintp(3)

#: Columns of mirror padding on each side of a Menon row buffer.
MENON_PAD = 2
#: Rows kept per plane in the Menon ring buffers (a power of two).
MENON_RING = 8
_UP = np.uintp(MENON_PAD)
_RMASK = MENON_RING - 1

# indices into kc
_K_HALF = 0      # 1/2
_K_QUART = 1     # 1/4
_K_EIGHTH = 2    # 1/8
_K_5_8 = 3       # 5/8
_K_16TH = 4      # 1/16
_K_3_4 = 5       # 3/4
_K_3_16 = 6      # 3/16
_K_THIRD = 7     # 1/3
_K_THREE = 8     # 3
_K_ONE = 9       # 1


def filter_constants(dtype) -> np.ndarray:
    """Return the filter constants the kernels use, in ``dtype``."""
    return np.array([0.5, 0.25, 0.125, 0.625, 0.0625, 0.75, 0.1875, 1.0 / 3.0, 3.0, 1.0], dtype=dtype)


def color_masks(cfa: np.ndarray, width: int, pad: int = 0) -> np.ndarray:
    """Return the (2, width + 2·pad) bool table "column is green" per row parity.

    Column ``k`` of the table is image column ``k - pad`` (parity kept for
    negative columns, as mirror padding keeps it).
    """
    cols = (np.arange(width + 2 * pad) - pad) & 1
    return np.stack([cfa[0][cols] == 1, cfa[1][cols] == 1])


# ---------------------------------------------------------------------------
# index helper
@njit(cache=True)
def _mirror(k, n):
    """scipy ``mirror`` (whole-sample symmetric): d c b | a b c d | c b a."""
    if n == 1:
        return 0
    p = 2 * n - 2
    k = k % p
    if k >= n:
        k = p - k
    return k


@njit(cache=True)
def _count_nonfinite(row):
    """Number of NaN/±inf values in a row (v - v is NaN exactly for those)."""
    n = 0
    for j in range(row.shape[0]):
        d = row[j] - row[j]
        n += d != d
    return n


@njit(cache=True)
def _is_red_row(cfa, p):
    return cfa[p, 0] == 0 or cfa[p, 1] == 0


# ---------------------------------------------------------------------------
# bilinear
@njit(cache=True)
def _bilinear_row(xm, x0, x1, o, isg, red, j0, j1, kc):
    """Interior bilinear row: columns [j0, j1) with j0 ≥ 1 and j1 ≤ W - 1."""
    h = kc[_K_HALF]
    q = kc[_K_QUART]
    if red:
        for j in range(np.uintp(j0), np.uintp(j1)):
            c = x0[j]
            lr = x0[j - _U1] + x0[j + _U1]
            ud = xm[j] + x1[j]
            diag = (xm[j - _U1] + xm[j + _U1]) + (x1[j - _U1] + x1[j + _U1])
            g = isg[j]
            o[_U3 * j] = h * lr if g else c
            o[_U3 * j + _U1] = c if g else q * (lr + ud)
            o[_U3 * j + _U2] = h * ud if g else q * diag
    else:
        for j in range(np.uintp(j0), np.uintp(j1)):
            c = x0[j]
            lr = x0[j - _U1] + x0[j + _U1]
            ud = xm[j] + x1[j]
            diag = (xm[j - _U1] + xm[j + _U1]) + (x1[j - _U1] + x1[j + _U1])
            g = isg[j]
            o[_U3 * j + _U2] = h * lr if g else c
            o[_U3 * j + _U1] = c if g else q * (lr + ud)
            o[_U3 * j] = h * ud if g else q * diag


@njit(cache=True)
def _bilinear_pixel(x, cfa, i, j, out, kc):
    """Bilinear at one pixel with mirrored neighbours (the row formulas, scalar)."""
    H, W = x.shape
    rm = _mirror(i - 1, H)
    rp = _mirror(i + 1, H)
    cm = _mirror(j - 1, W)
    cp = _mirror(j + 1, W)
    c = x[i, j]
    lr = x[i, cm] + x[i, cp]
    ud = x[rm, j] + x[rp, j]
    diag = (x[rm, cm] + x[rm, cp]) + (x[rp, cm] + x[rp, cp])
    p = i & 1
    own = 0 if _is_red_row(cfa, p) else 2
    if cfa[p, j & 1] == 1:
        out[i, j, own] = kc[_K_HALF] * lr
        out[i, j, 1] = c
        out[i, j, 2 - own] = kc[_K_HALF] * ud
    else:
        out[i, j, own] = c
        out[i, j, 1] = kc[_K_QUART] * (lr + ud)
        out[i, j, 2 - own] = kc[_K_QUART] * diag


@njit(cache=True, parallel=True)
def bilinear_kernel(x, cfa, isg, kc, out, nbands):
    """Bilinear demosaicing of ``x`` into ``out`` (mirrored borders); return the count of non-finite inputs."""
    H, W = x.shape
    of = out.reshape(H, 3 * W)
    nbad = 0
    for b in prange(nbands):
        r0 = b * H // nbands
        r1 = (b + 1) * H // nbands
        for i in range(r0, r1):
            nbad += _count_nonfinite(x[i])
            p = i & 1
            if W >= 3:
                _bilinear_row(x[_mirror(i - 1, H)], x[i], x[_mirror(i + 1, H)], of[i], isg[p],
                              _is_red_row(cfa, p), 1, W - 1, kc)
                _bilinear_pixel(x, cfa, i, 0, out, kc)
                _bilinear_pixel(x, cfa, i, W - 1, out, kc)
            else:
                for j in range(W):
                    _bilinear_pixel(x, cfa, i, j, out, kc)
    return nbad


# ---------------------------------------------------------------------------
# Malvar, He, Cutler (2004)
@njit(cache=True)
def _malvar_row(xm2, xm1, x0, xp1, xp2, o, isg, red, j0, j1, kc):
    """Malvar row over columns [j0, j1) with j0 ≥ 2, j1 ≤ W - 2 (rows already mirrored)."""
    k_h = kc[_K_HALF]
    k_q = kc[_K_QUART]
    k_e = kc[_K_EIGHTH]
    k_58 = kc[_K_5_8]
    k_16 = kc[_K_16TH]
    k_34 = kc[_K_3_4]
    k_316 = kc[_K_3_16]
    if red:
        for j in range(np.uintp(j0), np.uintp(j1)):
            c = x0[j]
            w1e1 = x0[j - _U1] + x0[j + _U1]
            n1s1 = xm1[j] + xp1[j]
            w2e2 = x0[j - _U2] + x0[j + _U2]
            n2s2 = xm2[j] + xp2[j]
            dg = (xm1[j - _U1] + xm1[j + _U1]) + (xp1[j - _U1] + xp1[j + _U1])
            cross = k_h * c + k_q * (n1s1 + w1e1) - k_e * (n2s2 + w2e2)
            horiz = k_58 * c + k_h * w1e1 - k_e * (w2e2 + dg) + k_16 * n2s2
            vert = k_58 * c + k_h * n1s1 - k_e * (n2s2 + dg) + k_16 * w2e2
            rbd = k_34 * c + k_q * dg - k_316 * (n2s2 + w2e2)
            g = isg[j]
            o[_U3 * j] = horiz if g else c
            o[_U3 * j + _U1] = c if g else cross
            o[_U3 * j + _U2] = vert if g else rbd
    else:
        for j in range(np.uintp(j0), np.uintp(j1)):
            c = x0[j]
            w1e1 = x0[j - _U1] + x0[j + _U1]
            n1s1 = xm1[j] + xp1[j]
            w2e2 = x0[j - _U2] + x0[j + _U2]
            n2s2 = xm2[j] + xp2[j]
            dg = (xm1[j - _U1] + xm1[j + _U1]) + (xp1[j - _U1] + xp1[j + _U1])
            cross = k_h * c + k_q * (n1s1 + w1e1) - k_e * (n2s2 + w2e2)
            horiz = k_58 * c + k_h * w1e1 - k_e * (w2e2 + dg) + k_16 * n2s2
            vert = k_58 * c + k_h * n1s1 - k_e * (n2s2 + dg) + k_16 * w2e2
            rbd = k_34 * c + k_q * dg - k_316 * (n2s2 + w2e2)
            g = isg[j]
            o[_U3 * j + _U2] = horiz if g else c
            o[_U3 * j + _U1] = c if g else cross
            o[_U3 * j] = vert if g else rbd


@njit(cache=True)
def _malvar_pixel(x, cfa, i, j, out, kc):
    """Malvar at one pixel with mirrored neighbours (the row formulas, scalar)."""
    H, W = x.shape
    rm2 = _mirror(i - 2, H)
    rm1 = _mirror(i - 1, H)
    rp1 = _mirror(i + 1, H)
    rp2 = _mirror(i + 2, H)
    cm2 = _mirror(j - 2, W)
    cm1 = _mirror(j - 1, W)
    cp1 = _mirror(j + 1, W)
    cp2 = _mirror(j + 2, W)
    c = x[i, j]
    w1e1 = x[i, cm1] + x[i, cp1]
    n1s1 = x[rm1, j] + x[rp1, j]
    w2e2 = x[i, cm2] + x[i, cp2]
    n2s2 = x[rm2, j] + x[rp2, j]
    dg = (x[rm1, cm1] + x[rm1, cp1]) + (x[rp1, cm1] + x[rp1, cp1])
    cross = kc[_K_HALF] * c + kc[_K_QUART] * (n1s1 + w1e1) - kc[_K_EIGHTH] * (n2s2 + w2e2)
    horiz = kc[_K_5_8] * c + kc[_K_HALF] * w1e1 - kc[_K_EIGHTH] * (w2e2 + dg) + kc[_K_16TH] * n2s2
    vert = kc[_K_5_8] * c + kc[_K_HALF] * n1s1 - kc[_K_EIGHTH] * (n2s2 + dg) + kc[_K_16TH] * w2e2
    rbd = kc[_K_3_4] * c + kc[_K_QUART] * dg - kc[_K_3_16] * (n2s2 + w2e2)
    p = i & 1
    own = 0 if _is_red_row(cfa, p) else 2
    if cfa[p, j & 1] == 1:
        out[i, j, own] = horiz
        out[i, j, 1] = c
        out[i, j, 2 - own] = vert
    else:
        out[i, j, own] = c
        out[i, j, 1] = cross
        out[i, j, 2 - own] = rbd


@njit(cache=True, parallel=True)
def malvar2004_kernel(x, cfa, isg, kc, out, nbands):
    """Malvar (2004) demosaicing of ``x`` into ``out`` (mirrored borders); return the count of non-finite inputs."""
    H, W = x.shape
    of = out.reshape(H, 3 * W)
    nbad = 0
    for b in prange(nbands):
        r0 = b * H // nbands
        r1 = (b + 1) * H // nbands
        for i in range(r0, r1):
            nbad += _count_nonfinite(x[i])
            p = i & 1
            if W >= 5:
                _malvar_row(x[_mirror(i - 2, H)], x[_mirror(i - 1, H)], x[i], x[_mirror(i + 1, H)],
                            x[_mirror(i + 2, H)], of[i], isg[p], _is_red_row(cfa, p), 2, W - 2, kc)
                for j in (0, 1, W - 2, W - 1):
                    _malvar_pixel(x, cfa, i, j, out, kc)
            else:
                for j in range(W):
                    _malvar_pixel(x, cfa, i, j, out, kc)
    return nbad


# ---------------------------------------------------------------------------
# Menon, Andriani, Calvagno (2007) — DDFAPD with the refining step
#
# Ring planes in the compute dtype (each MENON_RING rows of W + 2·MENON_PAD):
_XP = 0    # the mosaic row, mirror-padded
_G = 1     # green after the directional decision
_R1 = 2    # R after the green-site interpolation (chroma site of the other colour: 0)
_B1 = 3
_R1P = 4   # R, B complete (before refining)
_B1P = 5
_G2 = 6    # refined green
_R2 = 7    # refined R, B at green sites
_B2 = 8
_NPLANES = 9
# Ring planes of the direction classifier, always float64: its decision is
# discontinuous, and float32 rounding would break exact-arithmetic ties
# differently from a float64 evaluation of the same mosaic.
_GH = 0    # horizontal green estimate
_GV = 1    # vertical green estimate
_DH = 2    # |C_H(i,j) - C_H(i,j+2)|, zero-padded
_DV = 3    # |C_V(i,j) - C_V(i+2,j)|, zero-padded
_ZERO = 4  # an all-zero row (constant-mode rows outside the image); only row 0 used
_NPLANES64 = 5


def menon2007_workspace(nbands: int, width: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Allocate the ring buffers of :func:`menon2007_kernel` for ``nbands`` bands."""
    shape = (nbands, MENON_RING, width + 2 * MENON_PAD)
    ws = np.empty((nbands, _NPLANES) + shape[1:], dtype=dtype)
    wd = np.empty((nbands, _NPLANES64) + shape[1:], dtype=np.float64)
    wm = np.empty(shape, dtype=np.bool_)
    return ws, wd, wm


@njit(cache=True)
def _mirror_pad(row, W):
    """Fill the MENON_PAD columns on each side of a padded row by mirroring."""
    for d in range(1, MENON_PAD + 1):
        row[MENON_PAD - d] = row[MENON_PAD + _mirror(-d, W)]
        row[MENON_PAD + W - 1 + d] = row[MENON_PAD + _mirror(W - 1 + d, W)]


@njit(cache=True)
def _menon_green_row(xm2, xm1, x0, xp1, xp2, xp, gh, gv, dh, isg, W, kd):
    """Row r: padded copy of x, G_H, G_V (Menon eq. 4 filters, float64) and D_H."""
    h = kd[_K_HALF]
    q = kd[_K_QUART]
    for j in range(np.uintp(W)):
        xp[j + _UP] = x0[j]
    _mirror_pad(xp, W)
    for j in range(np.uintp(W)):
        jj = j + _UP
        c = np.float64(xp[jj])
        g = isg[jj]
        # convolve1d(h_0) + convolve1d(h_1) in scipy's summation order, in float64
        est_h = (h * (np.float64(xp[jj - _U1]) + np.float64(xp[jj + _U1]))
                 + (h * c - q * (np.float64(xp[jj - _U2]) + np.float64(xp[jj + _U2]))))
        est_v = (h * (np.float64(xm1[j]) + np.float64(xp1[j]))
                 + (h * c - q * (np.float64(xm2[j]) + np.float64(xp2[j]))))
        gh[jj] = c if g else est_h
        gv[jj] = c if g else est_v
    _mirror_pad(gh, W)
    for j in range(np.uintp(W)):
        jj = j + _UP
        dh[jj] = abs((np.float64(xp[jj]) - gh[jj]) - (np.float64(xp[jj + _U2]) - gh[jj + _U2]))


@njit(cache=True)
def _menon_dv_row(x0, gv0, x2, gv2, dv, W):
    """D_V of row r from C_V rows r and mirror(r + 2)."""
    for j in range(np.uintp(W)):
        jj = j + _UP
        dv[jj] = abs((np.float64(x0[j]) - gv0[jj]) - (np.float64(x2[j]) - gv2[jj]))


@njit(cache=True)
def _menon_decide_row(dhm2, dhm1, dh0, dhp1, dhp2, dvm2, dvm1, dv0, gh, gv, gout, mout, W, kd):
    """Classifiers d_H, d_V (zero-padded 5×5 sums, float64), decision M = d_V ≥ d_H and G."""
    three = kd[_K_THREE]
    for j in range(np.uintp(W)):
        jj = j + _UP
        d_h = (dhm2[jj - _U2] + dhm2[jj] + dhm1[jj - _U1] + dh0[jj - _U2] * three + dh0[jj] * three
               + dhp1[jj - _U1] + dhp2[jj - _U2] + dhp2[jj])
        d_v = (dvm2[jj - _U2] + dvm2[jj] * three + dvm2[jj + _U2] + dvm1[jj - _U1] + dvm1[jj + _U1]
               + dv0[jj - _U2] + dv0[jj] * three + dv0[jj + _U2])
        m = d_v >= d_h
        a = gh[jj]
        b = gv[jj]
        mout[jj] = m
        gout[jj] = a if m else b
    _mirror_pad(gout, W)


@njit(cache=True)
def _menon_chroma_green_row(gm, g0, gp, xm, x0, xp, own, oth, isg, W, kc):
    """R and B at the green sites: own colour along the row, the other along the column."""
    h = kc[_K_HALF]
    zero = kc[_K_ONE] - kc[_K_ONE]
    for j in range(np.uintp(W)):
        jj = j + _UP
        c = x0[jj]
        gc = g0[jj]
        g = isg[jj]
        e_own = (gc + (x0[jj - _U1] + x0[jj + _U1]) * h) - (g0[jj - _U1] + g0[jj + _U1]) * h
        e_oth = (gc + (xm[jj] + xp[jj]) * h) - (gm[jj] + gp[jj]) * h
        own[jj] = e_own if g else c
        oth[jj] = e_oth if g else zero
    _mirror_pad(own, W)
    _mirror_pad(oth, W)


@njit(cache=True)
def _menon_chroma_chroma_row(ownm, own0, ownp, othm, oth0, othp, m, own_out, oth_out, isg, W, kc):
    """The other chroma colour at the chroma sites, along the decided direction."""
    h = kc[_K_HALF]
    for j in range(np.uintp(W)):
        jj = j + _UP
        c = own0[jj]
        e_h = (c + (oth0[jj - _U1] + oth0[jj + _U1]) * h) - (own0[jj - _U1] + own0[jj + _U1]) * h
        e_v = (c + (othm[jj] + othp[jj]) * h) - (ownm[jj] + ownp[jj]) * h
        e = e_h if m[jj] else e_v
        keep = oth0[jj]
        own_out[jj] = c
        oth_out[jj] = keep if isg[jj] else e
    _mirror_pad(own_out, W)
    _mirror_pad(oth_out, W)


@njit(cache=True)
def _menon_refine_green_row(ownm, own0, ownp, gm, g0, gp, m, g2, isg, W, kc):
    """Refining step 1: green at the chroma sites from the 3-tap mean of (chroma - G)."""
    t = kc[_K_THIRD]
    for j in range(np.uintp(W)):
        jj = j + _UP
        c = own0[jj]
        d0 = c - g0[jj]
        b_h = d0 * t + ((own0[jj - _U1] - g0[jj - _U1]) + (own0[jj + _U1] - g0[jj + _U1])) * t
        b_v = d0 * t + ((ownm[jj] - gm[jj]) + (ownp[jj] - gp[jj])) * t
        e = c - (b_h if m[jj] else b_v)
        keep = g0[jj]
        g2[jj] = keep if isg[jj] else e
    _mirror_pad(g2, W)


@njit(cache=True)
def _menon_refine_chroma_green_row(ownm, own0, ownp, othm, oth0, othp, gm, g0, gp, own2, oth2, isg, W, kc):
    """Refining step 2: R and B at the green sites from the refined green."""
    h = kc[_K_HALF]
    for j in range(np.uintp(W)):
        jj = j + _UP
        gc = g0[jj]
        e_own = gc + ((own0[jj - _U1] - g0[jj - _U1]) + (own0[jj + _U1] - g0[jj + _U1])) * h
        e_oth = gc + ((othm[jj] - gm[jj]) + (othp[jj] - gp[jj])) * h
        g = isg[jj]
        k_own = own0[jj]
        k_oth = oth0[jj]
        own2[jj] = e_own if g else k_own
        oth2[jj] = e_oth if g else k_oth
    _mirror_pad(own2, W)
    _mirror_pad(oth2, W)


@njit(cache=True)
def _menon_refine_chroma_row(ownm, own0, ownp, othm, oth0, othp, g0, m, o, isg, red, W, kc):
    """Refining step 3: the other chroma at the chroma sites; writes the RGB output row."""
    t = kc[_K_THIRD]
    if red:
        for j in range(np.uintp(W)):
            jj = j + _UP
            c = own0[jj]
            d0 = c - oth0[jj]
            b_h = d0 * t + ((own0[jj - _U1] - oth0[jj - _U1]) + (own0[jj + _U1] - oth0[jj + _U1])) * t
            b_v = d0 * t + ((ownm[jj] - othm[jj]) + (ownp[jj] - othp[jj])) * t
            e = c - (b_h if m[jj] else b_v)
            gc = g0[jj]
            keep = oth0[jj]
            o[_U3 * j] = c
            o[_U3 * j + _U1] = gc
            o[_U3 * j + _U2] = keep if isg[jj] else e
    else:
        for j in range(np.uintp(W)):
            jj = j + _UP
            c = own0[jj]
            d0 = c - oth0[jj]
            b_h = d0 * t + ((own0[jj - _U1] - oth0[jj - _U1]) + (own0[jj + _U1] - oth0[jj + _U1])) * t
            b_v = d0 * t + ((ownm[jj] - othm[jj]) + (ownp[jj] - othp[jj])) * t
            e = c - (b_h if m[jj] else b_v)
            gc = g0[jj]
            keep = oth0[jj]
            o[_U3 * j + _U2] = c
            o[_U3 * j + _U1] = gc
            o[_U3 * j] = keep if isg[jj] else e


@njit(cache=True)
def _interleave_row(r, g, b, o, W):
    """Write padded planar rows R, G, B into an interleaved output row."""
    for j in range(np.uintp(W)):
        jj = j + _UP
        o[_U3 * j] = r[jj]
        o[_U3 * j + _U1] = g[jj]
        o[_U3 * j + _U2] = b[jj]


@njit(cache=True)
def _menon_band(x, cfa, isg, kc, kd, refine, of, y0, y1, ws, wd, wm):
    """Stream rows [y0, y1) of the output through the Menon stages (lag ≤ 7 rows)."""
    H, W = x.shape
    Q = _RMASK
    wd[_DH, :, :] = 0
    wd[_DV, :, :] = 0
    wd[_ZERO, 0, :] = 0
    zero = wd[_ZERO, 0]
    nbad = 0
    for t in range(y0 - 7, y1 + 7):
        # stage 1: G_H, G_V, D_H of row t (needed for rows [y0 - 7, y1 + 7))
        r = t
        if y0 <= r < y1:
            nbad += _count_nonfinite(x[r])
        if 0 <= r < H:
            _menon_green_row(x[_mirror(r - 2, H)], x[_mirror(r - 1, H)], x[r], x[_mirror(r + 1, H)],
                             x[_mirror(r + 2, H)], ws[_XP, r & Q], wd[_GH, r & Q], wd[_GV, r & Q],
                             wd[_DH, r & Q], isg[r & 1], W, kd)
        # stage 1b: D_V of row t - 2 (needs C_V of row t - 2 and mirror(t))
        r = t - 2
        if max(0, y0 - 7) <= r < min(H, y1 + 5):
            r2 = _mirror(r + 2, H)
            _menon_dv_row(x[r], wd[_GV, r & Q], x[r2], wd[_GV, r2 & Q], wd[_DV, r & Q], W)
        # stage 2: decision and green of row t - 2
        if max(0, y0 - 5) <= r < min(H, y1 + 5):
            _menon_decide_row(
                wd[_DH, (r - 2) & Q] if r >= 2 else zero,
                wd[_DH, (r - 1) & Q] if r >= 1 else zero,
                wd[_DH, r & Q],
                wd[_DH, (r + 1) & Q] if r + 1 < H else zero,
                wd[_DH, (r + 2) & Q] if r + 2 < H else zero,
                wd[_DV, (r - 2) & Q] if r >= 2 else zero,
                wd[_DV, (r - 1) & Q] if r >= 1 else zero,
                wd[_DV, r & Q],
                wd[_GH, r & Q], wd[_GV, r & Q], ws[_G, r & Q], wm[r & Q], W, kd)
        # stage 3a: R, B at the green sites of row t - 3
        r = t - 3
        if max(0, y0 - 4) <= r < min(H, y1 + 4):
            rm = _mirror(r - 1, H) & Q
            rp = _mirror(r + 1, H) & Q
            rq = r & Q
            if _is_red_row(cfa, r & 1):
                own, oth = ws[_R1, rq], ws[_B1, rq]
            else:
                own, oth = ws[_B1, rq], ws[_R1, rq]
            _menon_chroma_green_row(ws[_G, rm], ws[_G, rq], ws[_G, rp], ws[_XP, rm], ws[_XP, rq],
                                    ws[_XP, rp], own, oth, isg[r & 1], W, kc)
        # stage 3b: the other chroma at the chroma sites of row t - 4
        r = t - 4
        if max(0, y0 - 3) <= r < min(H, y1 + 3):
            rm = _mirror(r - 1, H) & Q
            rp = _mirror(r + 1, H) & Q
            rq = r & Q
            if _is_red_row(cfa, r & 1):
                po, pt, qo, qt = _R1, _B1, _R1P, _B1P
            else:
                po, pt, qo, qt = _B1, _R1, _B1P, _R1P
            _menon_chroma_chroma_row(ws[po, rm], ws[po, rq], ws[po, rp], ws[pt, rm], ws[pt, rq], ws[pt, rp],
                                     wm[rq], ws[qo, rq], ws[qt, rq], isg[r & 1], W, kc)
            if not refine and y0 <= r < y1:
                _interleave_row(ws[_R1P, rq], ws[_G, rq], ws[_B1P, rq], of[r], W)
        if not refine:
            continue
        # stage 4: refined green at the chroma sites of row t - 5
        r = t - 5
        if max(0, y0 - 2) <= r < min(H, y1 + 2):
            rm = _mirror(r - 1, H) & Q
            rp = _mirror(r + 1, H) & Q
            rq = r & Q
            po = _R1P if _is_red_row(cfa, r & 1) else _B1P
            _menon_refine_green_row(ws[po, rm], ws[po, rq], ws[po, rp], ws[_G, rm], ws[_G, rq], ws[_G, rp],
                                    wm[rq], ws[_G2, rq], isg[r & 1], W, kc)
        # stage 5: refined R, B at the green sites of row t - 6
        r = t - 6
        if max(0, y0 - 1) <= r < min(H, y1 + 1):
            rm = _mirror(r - 1, H) & Q
            rp = _mirror(r + 1, H) & Q
            rq = r & Q
            if _is_red_row(cfa, r & 1):
                po, pt, qo, qt = _R1P, _B1P, _R2, _B2
            else:
                po, pt, qo, qt = _B1P, _R1P, _B2, _R2
            _menon_refine_chroma_green_row(ws[po, rm], ws[po, rq], ws[po, rp], ws[pt, rm], ws[pt, rq],
                                           ws[pt, rp], ws[_G2, rm], ws[_G2, rq], ws[_G2, rp],
                                           ws[qo, rq], ws[qt, rq], isg[r & 1], W, kc)
        # stage 6: refined other chroma at the chroma sites of row t - 7, output
        r = t - 7
        if y0 <= r < y1:
            rm = _mirror(r - 1, H) & Q
            rp = _mirror(r + 1, H) & Q
            rq = r & Q
            red = _is_red_row(cfa, r & 1)
            po, pt = (_R2, _B2) if red else (_B2, _R2)
            _menon_refine_chroma_row(ws[po, rm], ws[po, rq], ws[po, rp], ws[pt, rm], ws[pt, rq], ws[pt, rp],
                                     ws[_G2, rq], wm[rq], of[r], isg[r & 1], red, W, kc)
    return nbad


@njit(cache=True, parallel=True)
def menon2007_kernel(x, cfa, isg, kc, kd, refine, out, ws, wd, wm):
    """Menon (2007) DDFAPD demosaicing of ``x`` into ``out``; one band per workspace slot.

    ``isg`` is the padded green table (``color_masks(cfa, W, MENON_PAD)``),
    ``kc``/``kd`` the filter constants in the compute dtype and in float64,
    ``ws``/``wd``/``wm`` come from :func:`menon2007_workspace`. Returns the
    count of non-finite input values (the output is then meaningless).
    """
    H, W = x.shape
    of = out.reshape(H, 3 * W)
    nbands = ws.shape[0]
    nbad = 0
    for b in prange(nbands):
        y0 = b * H // nbands
        y1 = (b + 1) * H // nbands
        if y1 > y0:
            nbad += _menon_band(x, cfa, isg, kc, kd, refine, of, y0, y1, ws[b], wd[b], wm[b])
    return nbad


# ---------------------------------------------------------------------------
# Ratio Corrected Demosaicing (Sanz Rodríguez, 2017)
#
# Each band of rows is copied, with a halo of RCD_PAD mirrored rows and
# columns, into a tile of planar buffers; the steps run over the tile with
# ranges that shrink by each step's reach (1.1 → 3, 1.2 → 4, 3 → 5, 4.1 → 4,
# 4.2 → 7, 4.3 → 10), so the RCD_PAD = 10 halo makes every output pixel
# exact. RCD_PAD is even, so a tile pixel's CFA colour is that of the image
# pixel at the same row/column parity offset by the band start.
#: Rows and columns of mirrored halo around an RCD tile.
RCD_PAD = 10
#: Rows of output per RCD tile (the halo costs 2·RCD_PAD extra rows).
RCD_TILE_ROWS = 128
_RCD_X = 0     # the mosaic
_RCD_VH = 1    # V/H discrimination V_Stat / (V_Stat + H_Stat)
_RCD_LP = 2    # low-pass filter at chroma sites, later the P/Q discrimination
_RCD_R = 3
_RCD_G = 4
_RCD_B = 5
_RCD_T1 = 6    # squared vertical (then P-diagonal) high-pass response
_RCD_T2 = 7    # squared horizontal (then Q-diagonal) high-pass response
_RCD_NPLANES = 8
# in kr
_R_EPS = 0         # 1e-5, keeps divisions finite
_R_EPSSQ = 1       # 1e-10, floor of the directional statistics
_R_THREE = 2
_R_SIX = 3
_R_QUART = 4
_R_EIGHTH = 5
_R_16TH = 6
_R_HALF = 7
_R_ONE = 8
_R_ZERO = 9


def rcd_constants(dtype) -> np.ndarray:
    """Return the RCD constants (epsilon, epsilon², filter weights) in ``dtype``."""
    return np.array([1e-5, 1e-10, 3.0, 6.0, 0.25, 0.125, 0.0625, 0.5, 1.0, 0.0], dtype=dtype)


def rcd2017_workspace(nslots: int, width: int, dtype) -> np.ndarray:
    """Allocate the tile buffers of :func:`rcd2017_kernel`: one tile per slot."""
    # zeros: the branch-free row loops also evaluate (and discard) the formulas at sites whose planes
    # hold no sample, which must not be uninitialised memory (NaN, denormals)
    return np.zeros((nslots, _RCD_NPLANES, RCD_TILE_ROWS + 2 * RCD_PAD, width + 2 * RCD_PAD), dtype=dtype)


@njit(cache=True)
def _rcd_fill(x, y0, nrows, t):
    """Step 0: the mirrored tile of the mosaic; R and B planes start as copies of it.

    Only their own sites matter (the other sites are computed in steps 4.2
    and 4.3 before anything reads them); whole-row copies keep the loop
    unit-stride.
    """
    H, W = x.shape
    P = RCD_PAD
    for a in range(nrows + 2 * P):
        xr = x[_mirror(y0 - P + a, H)]
        row = t[_RCD_X, a]
        for j in range(np.uintp(W)):
            row[j + np.uintp(P)] = xr[j]
        for d in range(P):
            row[d] = xr[_mirror(d - P, W)]
            row[P + W + d] = xr[_mirror(W + d, W)]
        r = t[_RCD_R, a]
        b = t[_RCD_B, a]
        for j in range(np.uintp(W + 2 * P)):
            v = row[j]
            r[j] = v
            b[j] = v


_U4 = np.uintp(4)


@njit(cache=True, error_model="numpy")
def _disc(c, nb, h):
    """Refined discrimination: the diagonal-neighbour mean ``nb`` when it is further from 1/2 than ``c``."""
    return nb if abs(h - c) < abs(h - nb) else c


@njit(cache=True, error_model="numpy")
def _rcd_hv_row(xm3, xm2, xm1, x0, xp1, xp2, xp3, t1, t2, M, kr):
    """1.1 squared vertical / horizontal (1, -3, -1, 6, -1, -3, 1) responses, columns [3, M - 3)."""
    k3 = kr[_R_THREE]
    k6 = kr[_R_SIX]
    for j in range(_U3, np.uintp(M - 3)):
        c6 = k6 * x0[j]
        v = (xm3[j] - xm1[j] - xp1[j] + xp3[j]) - k3 * (xm2[j] + xp2[j]) + c6
        h = (x0[j - _U3] - x0[j - _U1] - x0[j + _U1] + x0[j + _U3]) - k3 * (x0[j - _U2] + x0[j + _U2]) + c6
        t1[j] = v * v
        t2[j] = h * h


@njit(cache=True, error_model="numpy")
def _rcd_vh_row(t1m, t10, t1p, t20, vh, M, kr):
    """1.2 V/H discrimination V_Stat / (V_Stat + H_Stat), columns [4, M - 4)."""
    e = kr[_R_EPSSQ]
    for j in range(_U4, np.uintp(M - 4)):
        vs = max(e, (t1m[j] + t10[j]) + t1p[j])
        hs = max(e, (t20[j - _U1] + t20[j]) + t20[j + _U1])
        vh[j] = vs / (vs + hs)


@njit(cache=True, error_model="numpy")
def _rcd_lp_row(xm, x0, xp, lp, M, kr):
    """2 low-pass filter (1/4 centre, 1/8 cross, 1/16 diagonal) floored at 0, columns [1, M - 1)."""
    q = kr[_R_QUART]
    e8 = kr[_R_EIGHTH]
    s16 = kr[_R_16TH]
    zero = kr[_R_ZERO]
    for j in range(_U1, np.uintp(M - 1)):
        v = (q * x0[j] + e8 * ((xm[j] + xp[j]) + (x0[j - _U1] + x0[j + _U1]))
             + s16 * ((xm[j - _U1] + xm[j + _U1]) + (xp[j - _U1] + xp[j + _U1])))
        lp[j] = max(v, zero)


@njit(cache=True, error_model="numpy")
def _rcd_grad_row(f4, f3, f2, f1, x0, b1, out, M, kr):
    """3 cardinal gradient toward ``f1`` (``f4`` farthest, ``b1`` the opposite neighbour), [5, M - 5)."""
    eps = kr[_R_EPS]
    for j in range(np.uintp(5), np.uintp(M - 5)):
        out[j] = eps + abs(f1[j] - b1[j]) + abs(x0[j] - f2[j]) + abs(f1[j] - f3[j]) + abs(f2[j] - f4[j])


@njit(cache=True, error_model="numpy")
def _rcd_vest_row(ng, sg, xm1, xp1, lpm2, lp0, lpp2, out, M, kr):
    """3 the vertical green estimate from the ratio-corrected N and S neighbours, [5, M - 5)."""
    eps = kr[_R_EPS]
    one = kr[_R_ONE]
    for j in range(np.uintp(5), np.uintp(M - 5)):
        lc = lp0[j]
        ne = xm1[j] * (one + (lc - lpm2[j]) / (eps + lc + lpm2[j]))
        se = xp1[j] * (one + (lc - lpp2[j]) / (eps + lc + lpp2[j]))
        out[j] = (sg[j] * ne + ng[j] * se) / (ng[j] + sg[j])


@njit(cache=True, error_model="numpy")
def _rcd_green_row(x0, lp0, v_est, vhm, vh0, vhp, g, isg, M, kr):
    """3 green at the chroma sites: horizontal estimate, blend with ``v_est``; green sites keep x. [5, M - 5)."""
    eps = kr[_R_EPS]
    one = kr[_R_ONE]
    q = kr[_R_QUART]
    h = kr[_R_HALF]
    for j in range(np.uintp(5), np.uintp(M - 5)):
        c = x0[j]
        wg = (eps + abs(x0[j - _U1] - x0[j + _U1]) + abs(c - x0[j - _U2]) + abs(x0[j - _U1] - x0[j - _U3])
              + abs(x0[j - _U2] - x0[j - _U4]))
        eg = (eps + abs(x0[j + _U1] - x0[j - _U1]) + abs(c - x0[j + _U2]) + abs(x0[j + _U1] - x0[j + _U3])
              + abs(x0[j + _U2] - x0[j + _U4]))
        lc = lp0[j]
        we = x0[j - _U1] * (one + (lc - lp0[j - _U2]) / (eps + lc + lp0[j - _U2]))
        ee = x0[j + _U1] * (one + (lc - lp0[j + _U2]) / (eps + lc + lp0[j + _U2]))
        h_est = (wg * ee + eg * we) / (eg + wg)
        ve = v_est[j]
        d = _disc(vh0[j], q * ((vhm[j - _U1] + vhm[j + _U1]) + (vhp[j - _U1] + vhp[j + _U1])), h)
        est = d * (h_est - ve) + ve
        g[j] = c if isg[j] else est


@njit(cache=True, error_model="numpy")
def _rcd_pq_diff_row(xm3, xm2, xm1, x0, xp1, xp2, xp3, t1, t2, M, kr):
    """4.1 squared P (↘) and Q (↙) diagonal responses, columns [3, M - 3)."""
    k3 = kr[_R_THREE]
    k6 = kr[_R_SIX]
    for j in range(_U3, np.uintp(M - 3)):
        c6 = k6 * x0[j]
        pd = ((xm3[j - _U3] - xm1[j - _U1] - xp1[j + _U1] + xp3[j + _U3])
              - k3 * (xm2[j - _U2] + xp2[j + _U2]) + c6)
        qd = ((xm3[j + _U3] - xm1[j + _U1] - xp1[j - _U1] + xp3[j - _U3])
              - k3 * (xm2[j + _U2] + xp2[j - _U2]) + c6)
        t1[j] = pd * pd
        t2[j] = qd * qd


@njit(cache=True, error_model="numpy")
def _rcd_pq_row(t1m, t10, t1p, t2m, t20, t2p, pq, M, kr):
    """4.1 P/Q discrimination P_Stat / (P_Stat + Q_Stat), columns [4, M - 4)."""
    e = kr[_R_EPSSQ]
    for j in range(_U4, np.uintp(M - 4)):
        ps = max(e, (t1m[j - _U1] + t10[j]) + t1p[j + _U1])
        qs = max(e, (t2m[j + _U1] + t20[j]) + t2p[j - _U1])
        pq[j] = ps / (ps + qs)


@njit(cache=True, error_model="numpy")
def _rcd_chroma_row(cm3, cm1, c0, cp1, cp3, gm2, gm1, g0, gp1, gp2, pqm, pq0, pqp, isg, M, kr):
    """4.2 the missing chroma ``c`` at the other chroma's sites (diagonal colour differences), [7, M - 7)."""
    eps = kr[_R_EPS]
    q = kr[_R_QUART]
    h = kr[_R_HALF]
    for j in range(np.uintp(7), np.uintp(M - 7)):
        gc = g0[j]
        nw = cm1[j - _U1]
        ne = cm1[j + _U1]
        sw = cp1[j - _U1]
        se = cp1[j + _U1]
        nwg = eps + abs(nw - se) + abs(nw - cm3[j - _U3]) + abs(gc - gm2[j - _U2])
        neg = eps + abs(ne - sw) + abs(ne - cm3[j + _U3]) + abs(gc - gm2[j + _U2])
        swg = eps + abs(sw - ne) + abs(sw - cp3[j - _U3]) + abs(gc - gp2[j - _U2])
        seg = eps + abs(se - nw) + abs(se - cp3[j + _U3]) + abs(gc - gp2[j + _U2])
        nwe = nw - gm1[j - _U1]
        nee = ne - gm1[j + _U1]
        swe = sw - gp1[j - _U1]
        see = se - gp1[j + _U1]
        p_est = (nwg * see + seg * nwe) / (nwg + seg)
        q_est = (neg * swe + swg * nee) / (neg + swg)
        d = _disc(pq0[j], q * ((pqm[j - _U1] + pqm[j + _U1]) + (pqp[j - _U1] + pqp[j + _U1])), h)
        est = gc + (d * (q_est - p_est) + p_est)
        keep = c0[j]
        c0[j] = keep if isg[j] else est


@njit(cache=True, error_model="numpy")
def _rcd_at_green(cm3, cm1, c0, cp1, cp3, gm1, g0, gp1, j, n1, s1, w1, e1, d):
    """4.3 one chroma at a green site from the cardinal colour differences."""
    cn = cm1[j]
    cs = cp1[j]
    cw = c0[j - _U1]
    ce = c0[j + _U1]
    ng = n1 + abs(cn - cs) + abs(cn - cm3[j])
    sg = s1 + abs(cs - cn) + abs(cs - cp3[j])
    wg = w1 + abs(cw - ce) + abs(cw - c0[j - _U3])
    eg = e1 + abs(ce - cw) + abs(ce - c0[j + _U3])
    v_est = (ng * (cs - gp1[j]) + sg * (cn - gm1[j])) / (ng + sg)
    h_est = (eg * (cw - g0[j - _U1]) + wg * (ce - g0[j + _U1])) / (eg + wg)
    return g0[j] + (d * (h_est - v_est) + v_est)


@njit(cache=True, error_model="numpy")
def _rcd_green_sites_row(rm3, rm1, r0, rp1, rp3, bm3, bm1, b0, bp1, bp3, gm2, gm1, g0, gp1, gp2,
                         vhm, vh0, vhp, isg, M, kr):
    """4.3 red and blue at the green sites, columns [10, M - 10)."""
    eps = kr[_R_EPS]
    q = kr[_R_QUART]
    h = kr[_R_HALF]
    for j in range(np.uintp(10), np.uintp(M - 10)):
        gc = g0[j]
        n1 = eps + abs(gc - gm2[j])
        s1 = eps + abs(gc - gp2[j])
        w1 = eps + abs(gc - g0[j - _U2])
        e1 = eps + abs(gc - g0[j + _U2])
        d = _disc(vh0[j], q * ((vhm[j - _U1] + vhm[j + _U1]) + (vhp[j - _U1] + vhp[j + _U1])), h)
        er = _rcd_at_green(rm3, rm1, r0, rp1, rp3, gm1, g0, gp1, j, n1, s1, w1, e1, d)
        eb = _rcd_at_green(bm3, bm1, b0, bp1, bp3, gm1, g0, gp1, j, n1, s1, w1, e1, d)
        kr_ = r0[j]
        kb = b0[j]
        g = isg[j]
        r0[j] = er if g else kr_
        b0[j] = eb if g else kb


@njit(cache=True, error_model="numpy")
def _rcd_tile(t, cfa, isg, y0, L, M, kr):
    """Steps 1–4 of RCD over a filled tile of L × M pixels (``isg``: green columns per row parity)."""
    X = t[_RCD_X]
    VH = t[_RCD_VH]
    LP = t[_RCD_LP]
    R = t[_RCD_R]
    G = t[_RCD_G]
    B = t[_RCD_B]
    T1 = t[_RCD_T1]
    T2 = t[_RCD_T2]
    for a in range(3, L - 3):
        _rcd_hv_row(X[a - 3], X[a - 2], X[a - 1], X[a], X[a + 1], X[a + 2], X[a + 3], T1[a], T2[a], M, kr)
    for a in range(4, L - 4):
        _rcd_vh_row(T1[a - 1], T1[a], T1[a + 1], T2[a], VH[a], M, kr)
    for a in range(1, L - 1):
        _rcd_lp_row(X[a - 1], X[a], X[a + 1], LP[a], M, kr)
    # T1, T2 are free between steps 1 and 4.1: rows 0-2 of T1 hold the vertical terms of step 3
    ng, sg, ve = T1[0], T1[1], T1[2]
    for a in range(5, L - 5):
        _rcd_grad_row(X[a - 4], X[a - 3], X[a - 2], X[a - 1], X[a], X[a + 1], ng, M, kr)
        _rcd_grad_row(X[a + 4], X[a + 3], X[a + 2], X[a + 1], X[a], X[a - 1], sg, M, kr)
        _rcd_vest_row(ng, sg, X[a - 1], X[a + 1], LP[a - 2], LP[a], LP[a + 2], ve, M, kr)
        _rcd_green_row(X[a], LP[a], ve, VH[a - 1], VH[a], VH[a + 1], G[a], isg[(y0 + a) & 1], M, kr)
    for a in range(3, L - 3):
        _rcd_pq_diff_row(X[a - 3], X[a - 2], X[a - 1], X[a], X[a + 1], X[a + 2], X[a + 3], T1[a], T2[a], M, kr)
    for a in range(4, L - 4):  # the low-pass rows are no longer needed: LP now holds P/Q
        _rcd_pq_row(T1[a - 1], T1[a], T1[a + 1], T2[a - 1], T2[a], T2[a + 1], LP[a], M, kr)
    for a in range(7, L - 7):
        C = B if _is_red_row(cfa, (y0 + a) & 1) else R
        _rcd_chroma_row(C[a - 3], C[a - 1], C[a], C[a + 1], C[a + 3], G[a - 2], G[a - 1], G[a], G[a + 1],
                        G[a + 2], LP[a - 1], LP[a], LP[a + 1], isg[(y0 + a) & 1], M, kr)
    for a in range(10, L - 10):
        _rcd_green_sites_row(R[a - 3], R[a - 1], R[a], R[a + 1], R[a + 3], B[a - 3], B[a - 1], B[a], B[a + 1],
                             B[a + 3], G[a - 2], G[a - 1], G[a], G[a + 1], G[a + 2], VH[a - 1], VH[a], VH[a + 1],
                             isg[(y0 + a) & 1], M, kr)


@njit(cache=True)
def _rcd_store(t, of, y0, nrows, W):
    """Write the tile's central rows into the interleaved output."""
    for a in range(nrows):
        o = of[y0 + a]
        r = t[_RCD_R, a + RCD_PAD]
        g = t[_RCD_G, a + RCD_PAD]
        bl = t[_RCD_B, a + RCD_PAD]
        for j in range(np.uintp(W)):
            jj = j + np.uintp(RCD_PAD)
            o[_U3 * j] = r[jj]
            o[_U3 * j + _U1] = g[jj]
            o[_U3 * j + _U2] = bl[jj]


@njit(cache=True, parallel=True)
def rcd2017_kernel(x, cfa, isg, kr, out, ws):
    """RCD demosaicing of ``x`` into ``out`` (mirrored borders); return the count of non-finite inputs.

    ``isg`` is ``color_masks(cfa, W, RCD_PAD)`` (green columns of a tile per
    row parity), ``kr`` comes from :func:`rcd_constants` in the compute dtype and ``ws``
    from :func:`rcd2017_workspace` (one slot per tile run at once: tile
    ``k`` uses slot ``k % ws.shape[0]``, and tiles sharing a slot run in
    sequence inside one parallel iteration).
    """
    H, W = x.shape
    of = out.reshape(H, 3 * W)
    nslots = ws.shape[0]
    ntiles = (H + RCD_TILE_ROWS - 1) // RCD_TILE_ROWS
    nbad = 0
    for s in prange(nslots):
        t = ws[s]
        for k in range(s, ntiles, nslots):
            y0 = k * RCD_TILE_ROWS
            nrows = min(RCD_TILE_ROWS, H - y0)
            for i in range(y0, y0 + nrows):
                nbad += _count_nonfinite(x[i])
            _rcd_fill(x, y0, nrows, t)
            _rcd_tile(t, cfa, isg, y0, nrows + 2 * RCD_PAD, W + 2 * RCD_PAD, kr)
            _rcd_store(t, of, y0, nrows, W)
    return nbad
