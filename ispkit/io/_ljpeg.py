"""Lossless JPEG (ITU-T T.81 process 14, "LJ92") encoder for DNG tiles.

DNG stores compressed Bayer data as lossless-JPEG tiles (Compression = 7).
Each tile row of ``w`` samples is coded as ``w / 2`` pixels of two interleaved
components, so predictor 1 ("left") predicts a sample from the previous
sample of the *same* CFA colour — the layout Adobe's DNG SDK writes and
LibRaw's ``lossless_dng_load_raw`` reads.

References
----------
ITU-T Recommendation T.81 (1992), Annex H "Lossless mode of operation",
Annex K.2 "A procedure for generating the lists which specify a Huffman
code table". Adobe, *Digital Negative (DNG) Specification* 1.6, "Compression".
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["encode_lj92", "huffman_table"]

_PRECISION = 16  # sample precision P written to SOF3; predictions wrap mod 2**16


def _category_table() -> np.ndarray:
    """SSSS (bit length) of |d| for |d| in 0..32768."""
    a = np.arange(32769, dtype=np.float64)
    lut = np.zeros(32769, dtype=np.uint8)
    lut[1:] = np.floor(np.log2(a[1:])).astype(np.uint8) + 1
    return lut


_CATEGORY = _category_table()


@numba.njit(cache=True, nogil=True)
def _differences(tile: np.ndarray, ncomp: int, out: np.ndarray) -> None:
    """Predictor-1 differences of a tile, wrapped to [-32768, 32767], row-major into ``out``.

    The first ``ncomp`` samples of a row are predicted from the row above (the
    first row from 2**(P-1)); the others from the previous sample of the same
    component.
    """
    h, w = tile.shape
    k = 0
    for r in range(h):
        for c in range(w):
            if c >= ncomp:
                pred = np.int32(tile[r, c - ncomp])
            elif r > 0:
                pred = np.int32(tile[r - 1, c])
            else:
                pred = np.int32(1 << (_PRECISION - 1))
            d = (np.int32(tile[r, c]) - pred) & 0xFFFF
            out[k] = d - 65536 if d >= 32768 else d
            k += 1


@numba.njit(cache=True, nogil=True)
def _histogram(diff: np.ndarray, lut: np.ndarray, hist: np.ndarray) -> None:
    """Count the difference categories 0..16 into ``hist``."""
    hist[:] = 0
    for i in range(diff.size):
        d = diff[i]
        hist[lut[-d if d < 0 else d]] += 1


@numba.njit(cache=True, nogil=True)
def _encode_scan(diff: np.ndarray, lut: np.ndarray, codes: np.ndarray, sizes: np.ndarray,
                 out: np.ndarray) -> int:
    """Huffman-code the differences into ``out`` with 0xFF stuffing; return the bytes used."""
    acc = np.uint64(0)
    nacc = 0
    pos = 0
    for i in range(diff.size):
        d = np.int64(diff[i])
        s = np.int64(lut[-d if d < 0 else d])
        value = np.uint64(codes[s])
        nbits = sizes[s]
        if 0 < s < 16:
            extra = d if d >= 0 else d - 1
            value = (value << np.uint64(s)) | np.uint64(extra & ((1 << s) - 1))
            nbits += s
        acc = (acc << np.uint64(nbits)) | value
        nacc += nbits
        if nacc >= 32:  # flush four bytes at once
            nacc -= 32
            word = (acc >> np.uint64(nacc)) & np.uint64(0xFFFFFFFF)
            for shift in (24, 16, 8, 0):
                byte = np.uint8((word >> np.uint64(shift)) & np.uint64(0xFF))
                out[pos] = byte
                pos += 1
                if byte == 0xFF:
                    out[pos] = 0
                    pos += 1
            acc &= (np.uint64(1) << np.uint64(nacc)) - np.uint64(1)
    while nacc >= 8:
        nacc -= 8
        byte = np.uint8((acc >> np.uint64(nacc)) & np.uint64(0xFF))
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    if nacc > 0:  # pad the last byte with 1-bits (T.81 F.1.2.3)
        pad = 8 - nacc
        byte = np.uint8(((acc << np.uint64(pad)) | np.uint64((1 << pad) - 1)) & np.uint64(0xFF))
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    return pos


@numba.njit(cache=True, nogil=True)
def _code_sizes(hist: np.ndarray) -> np.ndarray:
    """Huffman code size of each symbol 0..16 plus the reserved symbol 17 (T.81 figure K.1)."""
    n = hist.size + 1
    freq = np.empty(n, dtype=np.int64)
    freq[:-1] = hist + 1  # every category stays codable
    freq[-1] = 1  # reserved: takes the all-ones code point
    codesize = np.zeros(n, dtype=np.int64)
    others = np.full(n, -1, dtype=np.int64)
    while True:
        v1 = -1
        for i in range(n):  # least frequency; ties go to the larger symbol
            if freq[i] > 0 and (v1 < 0 or freq[i] <= freq[v1]):
                v1 = i
        v2 = -1
        for i in range(n):
            if i != v1 and freq[i] > 0 and (v2 < 0 or freq[i] <= freq[v2]):
                v2 = i
        if v2 < 0:
            break
        freq[v1] += freq[v2]
        freq[v2] = 0
        codesize[v1] += 1
        v = v1
        while others[v] != -1:
            v = others[v]
            codesize[v] += 1
        others[v] = v2
        codesize[v2] += 1
        v = v2
        while others[v] != -1:
            v = others[v]
            codesize[v] += 1
    return codesize


def huffman_table(hist: np.ndarray) -> tuple[list[int], list[int]]:
    """Build a length-limited (≤16 bit) Huffman table from category counts.

    Returns ``(bits, huffval)``: the number of codes of each length 1..16 and
    the symbols in code order (T.81 Annex K.2, with the reserved all-ones code).
    Every category 0..16 gets a code so any tile can be coded with it.
    """
    nsym = 17
    codesize = [int(v) for v in _code_sizes(np.asarray(hist[:nsym], dtype=np.int64))]
    bits = [0] * 33
    for size in codesize:
        if size:
            bits[size] += 1
    for i in range(32, 16, -1):  # Adjust_BITS (figure K.3)
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # drop the reserved code point
    order = sorted(range(nsym + 1), key=lambda s: (codesize[s], s))
    huffval = [s for s in order if codesize[s] > 0 and s != nsym][: sum(bits[1:17])]
    return bits[1:17], huffval


def _code_words(bits: list[int], huffval: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Canonical code words and lengths per symbol (T.81 Annex C)."""
    codes = np.zeros(17, dtype=np.uint32)
    sizes = np.zeros(17, dtype=np.int64)
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[huffval[k]] = code
            sizes[huffval[k]] = length
            code += 1
            k += 1
        code <<= 1
    return codes, sizes


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def encode_lj92(tile: np.ndarray, *, components: int = 2, scratch: np.ndarray | None = None) -> bytes:
    """Encode a uint16 tile as one lossless-JPEG stream (predictor 1, P = 16).

    Notes
    -----
    ``tile``: H×W uint16 with ``W % components == 0``; it is coded as
    ``W / components`` pixels of ``components`` interleaved samples.
    ``scratch``: an optional uint8 buffer of at least ``8 * H * W + 16`` bytes
    reused between calls.

    References
    ----------
    ITU-T T.81 Annex H (lossless coding), Annex K.2 (Huffman tables).
    """
    tile = np.ascontiguousarray(tile, dtype=np.uint16)
    h, w = tile.shape
    if w % components:
        raise ValueError(f"tile width {w} is not a multiple of {components} components")
    diff = np.empty(h * w, dtype=np.int32)
    _differences(tile, components, diff)
    hist = np.zeros(17, dtype=np.int64)
    _histogram(diff, _CATEGORY, hist)
    bits, huffval = huffman_table(hist)
    codes, sizes = _code_words(bits, huffval)
    need = 8 * h * w + 16
    if scratch is None or scratch.size < need:
        scratch = np.empty(need, dtype=np.uint8)
    n = _encode_scan(diff, _CATEGORY, codes, sizes, scratch)
    dht = bytes([0x00]) + bytes(bits) + bytes(huffval)
    sof = (bytes([_PRECISION]) + h.to_bytes(2, "big") + (w // components).to_bytes(2, "big")
           + bytes([components]) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components)))
    sos = (bytes([components]) + b"".join(bytes([i + 1, 0x00]) for i in range(components))
           + bytes([1, 0, 0]))  # Ss = predictor 1, Se = 0, Ah/Al = 0
    return b"".join((b"\xff\xd8", _segment(0xC4, dht), _segment(0xC3, sof), _segment(0xDA, sos),
                     scratch[:n].tobytes(), b"\xff\xd9"))
