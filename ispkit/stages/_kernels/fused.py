"""A fused render kernel: black level → WB gains → demosaic → highlight clip → CCM → OETF.

One pass over the mosaic, row by row. Each thread keeps a ring of five
normalised source rows split into even and odd columns (so every stencil
reads at unit stride and LLVM vectorises it), demosaics one output row into
planar half-row buffers, applies the highlight clip and the 3×3 matrix, and
stores through the OETF table as interleaved uint8 (written as uint16 words,
two pixels at a time) or float32. No full-frame temporaries (design.md §5).

Speed notes (measured, 12 MP, see benchmarks/bench_pipeline.py): the inner
loops are written for LLVM's vectoriser — rows passed as explicit arguments,
np.minimum/np.maximum rather than min/max, few arrays per loop, unsigned
table positions. Each of these was worth 2–8× on its loop. The uint8 store
(six table reads per pixel pair) is now half of the time. Separately
vectorised gather and interleave loops, and an arithmetic sRGB curve, both
measured slower here (Zen 4, AVX-512).

Borders are mirrored whole-sample (Bayer parity kept) as
:mod:`ispkit.stages.demosaic` does, so the fused result equals the
stage-by-stage one (and colour-demosaicing run on the mirror-padded mosaic).
Frames must have even height and width ≥ 4 (the caller falls back otherwise).
"""

from __future__ import annotations

import numba
import numpy as np

from ...errors import InputError
from .sigmoid import curve_lookup, sigmoid_finish, sigmoid_finish_span, sigmoid_prepare, sigmoid_prepare_span

__all__ = ["fused_render_u8", "fused_render_f32", "finish_pixels", "METHOD_BILINEAR", "METHOD_MALVAR"]

METHOD_BILINEAR = 0
METHOD_MALVAR = 1
_BLOCK = 32


@numba.njit(cache=True, inline="always")
def _reflect(i, n):
    """Whole-sample mirror (… c b | a b c …): keeps the Bayer parity at the border."""
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * n - 2 - i
    return i


@numba.njit(cache=True, fastmath={"contract"})
def _load_row(mosaic, y, black, scale, wb_lo, wb_clip, ev, od):
    """Normalise source row ``y`` into even/odd half rows padded by one sample each side.

    ``ev[j + 1]`` is full column 2j, ``od[j + 1]`` full column 2j+1; the pads
    hold the mirrored columns -2, -1, w, w+1. Returns the number of
    non-finite samples in the row.
    """
    hw = mosaic.shape[1] // 2
    py = y & 1
    b0 = black[py, 0]
    b1 = black[py, 1]
    s0 = scale[py, 0]
    s1 = scale[py, 1]
    src = mosaic[y]
    bad = 0  # an integer count: LLVM vectorises it without reassociating floats
    for j in range(hw):
        a = np.float32(src[2 * j])
        b = np.float32(src[2 * j + 1])
        bad += np.int32((a - a) != 0) + np.int32((b - b) != 0)
        # Python's min/max here: np.minimum/np.maximum are slower without fastmath's nnan,
        # which this loop cannot have (it counts NaNs)
        ev[j + 1] = min(max((a - b0) * s0, wb_lo), wb_clip)
        od[j + 1] = min(max((b - b1) * s1, wb_lo), wb_clip)
    ev[0] = ev[2]           # column -2 → 2
    od[0] = od[1]           # column -1 → 1
    ev[hw + 1] = ev[hw]     # column w → w-2
    od[hw + 1] = od[hw - 1]  # column w+1 → w-3
    return bad


@numba.njit(cache=True)
def _patch_row(r, row_ptr, pcols, pvals, wb_lo, wb_clip, ev, od, hw):
    """Overwrite the loaded row ``r`` with its rebuilt samples (``pcols``/``pvals`` from
    ``row_ptr[r]`` to ``row_ptr[r + 1]``, normalised values) and refresh the mirrored pads."""
    k0 = row_ptr[r]
    k1 = row_ptr[r + 1]
    if k0 == k1:
        return
    for k in range(k0, k1):
        c = pcols[k]
        v = min(max(pvals[k], wb_lo), wb_clip)
        if c & 1:
            od[(c >> 1) + 1] = v
        else:
            ev[(c >> 1) + 1] = v
    ev[0] = ev[2]
    od[0] = od[1]
    ev[hw + 1] = ev[hw]
    od[hw + 1] = od[hw - 1]


@numba.njit(cache=True, fastmath=True)
def _malvar_g(c0, c1, c2, c3, c4, o1, o2, o3, lo, hw, G, H, V):
    """Malvar 2004 at green sites: G = c, H = horizontal kernel, V = vertical kernel."""
    for j in range(hw):
        k = j + 1
        c = c2[k]
        w_ = o2[k + lo]
        e_ = o2[k + lo + 1]
        diag = o1[k + lo] + o1[k + lo + 1] + o3[k + lo] + o3[k + lo + 1]
        nn = c0[k]
        ss = c4[k]
        ww = c2[k - 1]
        ee = c2[k + 1]
        G[j] = c
        H[j] = (5.0 * c + 4.0 * (w_ + e_) - (ww + ee) - diag + 0.5 * (nn + ss)) * 0.125
        V[j] = (5.0 * c + 4.0 * (c1[k] + c3[k]) - (nn + ss) - diag + 0.5 * (ww + ee)) * 0.125


@numba.njit(cache=True, fastmath=True)
def _malvar_rb(c0, c1, c2, c3, c4, o1, o2, o3, lo, hw, own, G, opp):
    """Malvar 2004 at red/blue sites: own = c, G, and the opposite colour."""
    for j in range(hw):
        k = j + 1
        c = c2[k]
        w_ = o2[k + lo]
        e_ = o2[k + lo + 1]
        diag = o1[k + lo] + o1[k + lo + 1] + o3[k + lo] + o3[k + lo + 1]
        cross = c0[k] + c4[k] + c2[k - 1] + c2[k + 1]
        own[j] = c
        G[j] = (4.0 * c + 2.0 * (c1[k] + c3[k] + w_ + e_) - cross) * 0.125
        opp[j] = (6.0 * c + 2.0 * diag - 1.5 * cross) * 0.125


@numba.njit(cache=True, fastmath=True)
def _bilinear_g(c1, c2, c3, o2, lo, hw, G, H, V):
    for j in range(hw):
        k = j + 1
        G[j] = c2[k]
        H[j] = 0.5 * (o2[k + lo] + o2[k + lo + 1])
        V[j] = 0.5 * (c1[k] + c3[k])


@numba.njit(cache=True, fastmath=True)
def _bilinear_rb(c1, c2, c3, o1, o2, o3, lo, hw, own, G, opp):
    for j in range(hw):
        k = j + 1
        own[j] = c2[k]
        G[j] = 0.25 * (c1[k] + c3[k] + o2[k + lo] + o2[k + lo + 1])
        opp[j] = 0.25 * (o1[k + lo] + o1[k + lo + 1] + o3[k + lo] + o3[k + lo + 1])


@numba.njit(cache=True, fastmath=True)
def _color_half(R, G, B, hw, hl_clip, ccm_pos, bias, lo_pos, hi_pos):
    """Highlight clip, then the 3×3 matrix ``ccm_pos`` (already scaled to table
    positions) plus ``bias``, clamped to [lo_pos, hi_pos]; in place.

    Written so LLVM vectorises it: three arrays, np.minimum/np.maximum, and the
    table scale folded into the matrix by the caller (the same loop with an
    extra scalar factor is left scalar by the cost model, 8× slower).
    """
    m00, m01, m02 = ccm_pos[0, 0], ccm_pos[0, 1], ccm_pos[0, 2]
    m10, m11, m12 = ccm_pos[1, 0], ccm_pos[1, 1], ccm_pos[1, 2]
    m20, m21, m22 = ccm_pos[2, 0], ccm_pos[2, 1], ccm_pos[2, 2]
    for j in range(hw):
        r = np.minimum(R[j], hl_clip)
        g = np.minimum(G[j], hl_clip)
        b = np.minimum(B[j], hl_clip)
        R[j] = np.minimum(np.maximum(m00 * r + m01 * g + m02 * b + bias, lo_pos), hi_pos)
        G[j] = np.minimum(np.maximum(m10 * r + m11 * g + m12 * b + bias, lo_pos), hi_pos)
        B[j] = np.minimum(np.maximum(m20 * r + m21 * g + m22 * b + bias, lo_pos), hi_pos)


@numba.njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _color_half_tone(R, G, B, hw, hl_clip, ccm, tone_k, tone_tab, tone_hue, T):
    """Highlight clip, the 3×3 matrix, then the display curve composed with the OETF
    (the three steps of :mod:`..sigmoid`; ``T`` a 3·hw scratch): encoded values
    clamped to [0, 1], in place."""
    m00, m01, m02 = ccm[0, 0], ccm[0, 1], ccm[0, 2]
    m10, m11, m12 = ccm[1, 0], ccm[1, 1], ccm[1, 2]
    m20, m21, m22 = ccm[2, 0], ccm[2, 1], ccm[2, 2]
    nt = np.float32(tone_tab.shape[0] - 1)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    if tone_hue == 1.0:  # only the smallest and largest channel go through the table
        for j in range(hw):
            r = np.minimum(R[j], hl_clip)
            g = np.minimum(G[j], hl_clip)
            b = np.minimum(B[j], hl_clip)
            R[j], G[j], B[j], T[j], T[hw + j] = sigmoid_prepare_span(
                m00 * r + m01 * g + m02 * b, m10 * r + m11 * g + m12 * b, m20 * r + m21 * g + m22 * b, tone_k, nt)
        curve_lookup(T, 2 * hw, tone_tab)
        for j in range(hw):
            yr, yg, yb = sigmoid_finish_span(R[j], G[j], B[j], T[j], T[hw + j])
            R[j] = np.minimum(np.maximum(yr, zero), one)
            G[j] = np.minimum(np.maximum(yg, zero), one)
            B[j] = np.minimum(np.maximum(yb, zero), one)
        return
    for j in range(hw):
        r = np.minimum(R[j], hl_clip)
        g = np.minimum(G[j], hl_clip)
        b = np.minimum(B[j], hl_clip)
        R[j], G[j], B[j], T[j], T[hw + j], T[2 * hw + j] = sigmoid_prepare(
            m00 * r + m01 * g + m02 * b, m10 * r + m11 * g + m12 * b, m20 * r + m21 * g + m22 * b, tone_k, nt)
    curve_lookup(T, 3 * hw, tone_tab)
    for j in range(hw):
        yr, yg, yb = sigmoid_finish(R[j], G[j], B[j], T[j], T[hw + j], T[2 * hw + j], tone_hue)
        R[j] = np.minimum(np.maximum(yr, zero), one)
        G[j] = np.minimum(np.maximum(yg, zero), one)
        B[j] = np.minimum(np.maximum(yb, zero), one)


@numba.njit(cache=True, fastmath={"contract"})
def _store_codes(P, hw, o):
    """Encoded values in [0, 1] → rounded uint8 codes, two pixels per three uint16 words."""
    for j in range(hw):
        r0 = np.uint16(P[0, 0, j] * np.float32(255.0) + np.float32(0.5))
        g0 = np.uint16(P[0, 1, j] * np.float32(255.0) + np.float32(0.5))
        b0 = np.uint16(P[0, 2, j] * np.float32(255.0) + np.float32(0.5))
        r1 = np.uint16(P[1, 0, j] * np.float32(255.0) + np.float32(0.5))
        g1 = np.uint16(P[1, 1, j] * np.float32(255.0) + np.float32(0.5))
        b1 = np.uint16(P[1, 2, j] * np.float32(255.0) + np.float32(0.5))
        o[3 * j] = r0 | (g0 << 8)
        o[3 * j + 1] = b0 | (r1 << 8)
        o[3 * j + 2] = g1 | (b1 << 8)


@numba.njit(cache=True, parallel=True)
def _render(mosaic, cfa, black, scale, wb_lo, wb_clip, method, hl_clip, ccm, lo, hi,
            n_intervals, tab, lut8, out_u8, out_f32, to_u8, bad_blocks, tone, tone_k, tone_tab, tone_hue,
            row_ptr, pcols, pvals):
    h, w = mosaic.shape
    hw = w // 2
    nblocks = (h + _BLOCK - 1) // _BLOCK
    n = np.uint32(n_intervals)
    lut_max = np.float32(n)
    bias = np.float32(0.5) if to_u8 else np.float32(0.0)  # u8: truncating position + 0.5 rounds
    lo_pos = np.float32(max(lo, 0.0) * lut_max + bias)
    hi_pos = np.float32(min(hi, 1.0) * lut_max + bias)
    ccm_pos = ccm * lut_max
    for bi in numba.prange(nblocks):
        y0 = bi * _BLOCK
        y1 = min(h, y0 + _BLOCK)
        ev = np.empty((5, hw + 2), np.float32)
        od = np.empty((5, hw + 2), np.float32)
        # planar half rows: [parity][channel][j]
        P = np.empty((2, 3, hw), np.float32)
        T = np.empty(3 * hw if tone else 1, np.float32)
        slot_y = np.full(5, -1000000, np.int64)
        order = np.empty(5, np.int64)
        for y in range(y0, y1):
            for k in range(5):
                yy = y + k - 2
                slot = yy % 5
                if slot_y[slot] != yy:
                    r = _reflect(yy, h)
                    nb = _load_row(mosaic, r, black, scale, wb_lo, wb_clip, ev[slot], od[slot])
                    _patch_row(r, row_ptr, pcols, pvals, wb_lo, wb_clip, ev[slot], od[slot], hw)
                    bad_blocks[bi] += nb
                    slot_y[slot] = yy
                order[k] = slot
            e0, e1, e2, e3, e4 = ev[order[0]], ev[order[1]], ev[order[2]], ev[order[3]], ev[order[4]]
            o0, o1, o2, o3, o4 = od[order[0]], od[order[1]], od[order[2]], od[order[3]], od[order[4]]
            py = y & 1
            k_even = cfa[py, 0]
            k_odd = cfa[py, 1]
            red_row = k_even == 0 or k_odd == 0
            if k_even == 1:
                gq = 0
                cq = 1
                colour = k_odd
            else:
                gq = 1
                cq = 0
                colour = k_even
            # horizontal neighbour of a green in a red row is red
            hch = 0 if red_row else 2
            vch = 2 if red_row else 0
            opp = 2 if colour == 0 else 0
            # Explicit row arguments in each branch: rows chosen through a branch
            # (phi nodes of array structs) stop LLVM vectorising the stencils (4× slower).
            if method == 1:
                if gq == 0:
                    _malvar_g(e0, e1, e2, e3, e4, o1, o2, o3, -1, hw, P[0, 1], P[0, hch], P[0, vch])
                    _malvar_rb(o0, o1, o2, o3, o4, e1, e2, e3, 0, hw, P[1, colour], P[1, 1], P[1, opp])
                else:
                    _malvar_g(o0, o1, o2, o3, o4, e1, e2, e3, 0, hw, P[1, 1], P[1, hch], P[1, vch])
                    _malvar_rb(e0, e1, e2, e3, e4, o1, o2, o3, -1, hw, P[0, colour], P[0, 1], P[0, opp])
            else:
                if gq == 0:
                    _bilinear_g(e1, e2, e3, o2, -1, hw, P[0, 1], P[0, hch], P[0, vch])
                    _bilinear_rb(o1, o2, o3, e1, e2, e3, 0, hw, P[1, colour], P[1, 1], P[1, opp])
                else:
                    _bilinear_g(o1, o2, o3, e2, 0, hw, P[1, 1], P[1, hch], P[1, vch])
                    _bilinear_rb(e1, e2, e3, o1, o2, o3, -1, hw, P[0, colour], P[0, 1], P[0, opp])
            if tone:
                # the curve composed with the OETF gives encoded values: codes by rounding, no OETF table
                for q in range(2):
                    _color_half_tone(P[q, 0], P[q, 1], P[q, 2], hw, hl_clip, ccm, tone_k, tone_tab, tone_hue, T)
                if to_u8:
                    _store_codes(P, hw, out_u8[y])
                else:
                    o = out_f32[y]
                    for j in range(hw):
                        for q in range(2):
                            for ch in range(3):
                                o[6 * j + 3 * q + ch] = P[q, ch, j]
                continue
            for q in range(2):
                _color_half(P[q, 0], P[q, 1], P[q, 2], hw, hl_clip, ccm_pos, bias, lo_pos, hi_pos)
            if to_u8:
                # two pixels = six bytes = three uint16 words; unsigned positions skip
                # Numba's negative-index wraparound on every table read. A NaN position
                # (non-finite input: counted, and the caller discards this output)
                # converts to 0 on x86-64 and AArch64, so it stays inside the table.
                o = out_u8[y]
                for j in range(hw):
                    r0 = lut8[np.uint32(P[0, 0, j])]
                    g0 = lut8[np.uint32(P[0, 1, j])]
                    b0 = lut8[np.uint32(P[0, 2, j])]
                    r1 = lut8[np.uint32(P[1, 0, j])]
                    g1 = lut8[np.uint32(P[1, 1, j])]
                    b1 = lut8[np.uint32(P[1, 2, j])]
                    o[3 * j] = np.uint16(r0) | (np.uint16(g0) << 8)
                    o[3 * j + 1] = np.uint16(b0) | (np.uint16(r1) << 8)
                    o[3 * j + 2] = np.uint16(g1) | (np.uint16(b1) << 8)
            else:
                # one (value, slope) pair per table interval in a complex64: one 8-byte
                # read; entry n is (value at 1, 0) so a position of exactly n needs no bound
                o = out_f32[y]
                for j in range(hw):
                    for q in range(2):
                        for ch in range(3):
                            t = P[q, ch, j]
                            i = np.uint32(t)
                            vs = tab[i]
                            o[6 * j + 3 * q + ch] = vs.real + (t - np.float32(i)) * vs.imag

@numba.njit(cache=True, fastmath={"contract"})
def _codes_of(P, out):
    """(3, n) encoded values in [0, 1] → (n, 3) codes, rounded as :func:`_store_codes` rounds."""
    for j in range(P.shape[1]):
        for ch in range(3):
            out[j, ch] = np.uint16(P[ch, j] * np.float32(255.0) + np.float32(0.5))


@numba.njit(cache=True)
def _finish_pixels(P, hl_clip, ccm, n_intervals, tab, lut8, to_u8, tone, tone_k, tone_tab, tone_hue, out):
    """The kernel's steps after demosaicing for a list of pixels: ``P`` (3, n) camera RGB, in place;
    ``out`` (n, 3) receives uint8 codes (``to_u8``) or float32 values, as the render kernel computes them."""
    n = P.shape[1]
    lut_max = np.float32(n_intervals)
    if tone:
        T = np.empty(3 * n, np.float32)
        _color_half_tone(P[0], P[1], P[2], n, hl_clip, ccm, tone_k, tone_tab, tone_hue, T)
        if to_u8:
            _codes_of(P, out)
        else:
            out[:] = P.T
        return
    bias = np.float32(0.5) if to_u8 else np.float32(0.0)
    _color_half(P[0], P[1], P[2], n, hl_clip, ccm * lut_max, bias, bias, lut_max + bias)
    for j in range(n):
        for ch in range(3):
            t = P[ch, j]
            i = np.uint32(t)
            if to_u8:
                out[j, ch] = lut8[i]
            else:
                vs = tab[i]
                out[j, ch] = vs.real + (t - np.float32(i)) * vs.imag


def finish_pixels(rgb, hl_clip, ccm, lut, tone=None, to_u8=True):
    """Colour the (n, 3) camera-RGB pixels ``rgb`` exactly as :func:`fused_render_u8` (``to_u8``;
    ``lut`` its code table) or :func:`fused_render_f32` (``lut`` its OETF values) would:
    highlight clip, matrix, display curve or OETF. Returns (n, 3) uint8 or float32."""
    P = np.ascontiguousarray(np.asarray(rgb, dtype=np.float32).T)
    ccm = np.ascontiguousarray(ccm, dtype=np.float32).reshape(3, 3)
    if to_u8:
        lut8 = np.ascontiguousarray(lut, dtype=np.uint8)
        tab = np.zeros(1, np.complex64)
        n_int = lut8.shape[0] - 1
        out = np.empty((P.shape[1], 3), np.uint8)
    else:
        lut8 = np.zeros(2, np.uint8)
        tab = _value_slope_table(lut)
        n_int = tab.shape[0] - 1
        out = np.empty((P.shape[1], 3), np.float32)
    _finish_pixels(P, np.float32(hl_clip), ccm, n_int, tab, lut8, to_u8, *_tone_args(tone), out)
    return out


def _value_slope_table(lut_values):
    lut = np.asarray(lut_values, dtype=np.float32)
    tab = np.zeros(lut.shape[0], np.complex64)  # (value, slope to the next) per entry; the last slope 0
    tab.real = lut
    tab.imag[:-1] = np.diff(lut)
    return tab


def _prep(cfa, black, scale, ccm):
    return (np.ascontiguousarray(cfa, dtype=np.int64).reshape(2, 2),
            np.ascontiguousarray(black, dtype=np.float32).reshape(2, 2),
            np.ascontiguousarray(scale, dtype=np.float32).reshape(2, 2),
            np.ascontiguousarray(ccm, dtype=np.float32).reshape(3, 3))


_NO_TONE = np.zeros(2, np.complex64)


def _patch_args(patches, h):
    if patches is None:
        return np.zeros(h + 1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.float32)
    row_ptr, cols, vals = patches
    return (np.ascontiguousarray(row_ptr, dtype=np.int64), np.ascontiguousarray(cols, dtype=np.int64),
            np.ascontiguousarray(vals, dtype=np.float32))


def _tone_args(tone):
    if tone is None:
        return False, np.float32(1.0), _NO_TONE, np.float32(0.0)
    k, tab, hue = tone
    return True, np.float32(k), np.ascontiguousarray(tab, dtype=np.complex64), np.float32(hue)


def fused_render_u8(mosaic, cfa, black, scale, wb_lo, wb_clip, method, hl_clip, ccm, lo, hi, lut_codes, out,
                    tone=None, patches=None):
    """Render into ``out`` (H×W×3 uint8); ``lut_codes[i]`` is the code of linear ``i/(len-1)``.

    ``tone``: None, or the display curve's ``(k, table, hue)`` applied after the
    matrix (:func:`ispkit.stages.display_transform.kernel_arguments`); its table
    holds encoded values, so ``lut_codes`` is not read then. ``patches``: None or
    ``(row_ptr, cols, values)`` — samples replaced after normalisation (rebuilt
    highlights, normalised units), row y's in ``row_ptr[y]:row_ptr[y + 1]``.

    Returns the number of non-finite mosaic samples met: 0 when the output is
    valid (a sample read twice, at a mirrored border or a block seam, counts twice).
    """
    cfa, black, scale, ccm = _prep(cfa, black, scale, ccm)
    lut8 = np.ascontiguousarray(lut_codes, dtype=np.uint8)
    h, w = mosaic.shape
    if out.shape != (h, w, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous or w % 2:
        raise InputError("fused_render_u8: out must be a C-contiguous H×W×3 uint8 array of even width")
    words = out.reshape(h, 3 * w).view(np.uint16)  # six bytes of a pixel pair = three words
    bad = np.zeros((h + _BLOCK - 1) // _BLOCK, np.int64)
    _render(mosaic, cfa, black, scale, np.float32(wb_lo), np.float32(wb_clip), method, np.float32(hl_clip), ccm,
            np.float32(lo), np.float32(hi), lut8.shape[0] - 1, np.zeros(1, np.complex64), lut8, words,
            np.empty((1, 1), np.float32), True, bad, *_tone_args(tone), *_patch_args(patches, h))
    return int(bad.sum())


def fused_render_f32(mosaic, cfa, black, scale, wb_lo, wb_clip, method, hl_clip, ccm, lo, hi, lut_values, out,
                     tone=None, patches=None):
    """Render into ``out`` (H×W×3 float32) through a linearly interpolated OETF table on [0, 1].

    Returns the number of non-finite mosaic samples met (0 when the output is valid).
    """
    cfa, black, scale, ccm = _prep(cfa, black, scale, ccm)
    tab = _value_slope_table(lut_values)
    h, w = mosaic.shape
    if out.shape != (h, w, 3) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise InputError("fused_render_f32: out must be a C-contiguous H×W×3 float32 array")
    bad = np.zeros((h + _BLOCK - 1) // _BLOCK, np.int64)
    _render(mosaic, cfa, black, scale, np.float32(wb_lo), np.float32(wb_clip), method, np.float32(hl_clip), ccm,
            np.float32(lo), np.float32(hi), tab.shape[0] - 1, tab, np.zeros(2, np.uint8), np.empty((1, 3), np.uint16),
            out.reshape(h, 3 * w), False, bad, *_tone_args(tone), *_patch_args(patches, h))
    return int(bad.sum())
