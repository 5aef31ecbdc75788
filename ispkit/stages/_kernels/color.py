"""Colour kernels: a 3×3 matrix applied to every pixel of an H×W×3 image.

``color_matrix_rows`` is the Numba kernel (parallel over rows, branch-free
inner loop, in-place safe); ``color_matrix_numpy`` is the NumPy reference the
tests hold it to.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["color_matrix_rows", "color_matrix_numpy", "channel_max_rows", "above_rows", "chroma_rows", "add_chroma_rows"]


@numba.njit(cache=True, parallel=True, fastmath={"reassoc"})
def color_matrix_rows(image, matrix, out, clip):  # pragma: no cover - compiled
    """Write ``out[y, x] = matrix @ image[y, x]``; return whether any input was non-finite.

    Notes
    -----
    ``image`` H×W×3 float32 (any strides), ``matrix`` 3×3 float32, ``out``
    H×W×3 float32 (may be ``image`` itself: each pixel is read before it is
    written). ``clip`` clips the result to [0, 1]. Rows run in parallel.
    """
    h = image.shape[0]
    w = image.shape[1]
    m00 = matrix[0, 0]
    m01 = matrix[0, 1]
    m02 = matrix[0, 2]
    m10 = matrix[1, 0]
    m11 = matrix[1, 1]
    m12 = matrix[1, 2]
    m20 = matrix[2, 0]
    m21 = matrix[2, 1]
    m22 = matrix[2, 2]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    bad = np.zeros(h, dtype=np.uint8)
    for y in numba.prange(h):
        # x * 0 is 0 for finite x and NaN for inf/NaN: one cheap accumulator per row
        acc = zero
        for x in range(w):
            r = image[y, x, 0]
            g = image[y, x, 1]
            b = image[y, x, 2]
            acc += (r + g + b) * zero
            o0 = m00 * r + m01 * g + m02 * b
            o1 = m10 * r + m11 * g + m12 * b
            o2 = m20 * r + m21 * g + m22 * b
            if clip:
                o0 = min(max(o0, zero), one)
                o1 = min(max(o1, zero), one)
                o2 = min(max(o2, zero), one)
            out[y, x, 0] = o0
            out[y, x, 1] = o1
            out[y, x, 2] = o2
        if acc != acc:
            bad[y] = 1
    return bad.any()


def color_matrix_numpy(image: np.ndarray, matrix: np.ndarray, clip: bool = False) -> np.ndarray:
    """Apply ``matrix`` to every pixel with NumPy (the reference for the Numba kernel).

    Notes
    -----
    H×W×3 in, H×W×3 float32 out; computed in float64 and rounded once.
    """
    x = np.asarray(image, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    out = np.einsum("ij,hwj->hwi", m, x)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out.astype(np.float32)


@numba.njit(cache=True, parallel=True)
def channel_max_rows(image, out):  # pragma: no cover - compiled
    """Write ``out[y, x] = max(image[y, x, :])`` (NumPy's ``image.max(axis=-1)``, ~20× faster here).

    Notes
    -----
    ``image`` H×W×3 float32, ``out`` H×W float32. Rows run in parallel.
    """
    h = image.shape[0]
    w = image.shape[1]
    for y in numba.prange(h):
        for x in range(w):
            a = image[y, x, 0]
            b = image[y, x, 1]
            c = image[y, x, 2]
            m = a if a > b else b
            out[y, x] = m if m > c else c


@numba.njit(cache=True, parallel=True)
def above_rows(image, levels, out):  # pragma: no cover - compiled
    """Write ``out[y, x] = 1`` where any channel ``c`` of ``image[y, x]`` is ``>= levels[c]``, else 0.

    Notes
    -----
    ``image`` H×W×3 float32, ``levels`` (3,) float32, ``out`` H×W uint8.
    """
    h = image.shape[0]
    w = image.shape[1]
    l0 = levels[0]
    l1 = levels[1]
    l2 = levels[2]
    for y in numba.prange(h):
        for x in range(w):
            hit = (image[y, x, 0] >= l0) | (image[y, x, 1] >= l1) | (image[y, x, 2] >= l2)
            out[y, x] = 1 if hit else 0


@numba.njit(cache=True, parallel=True)
def chroma_rows(image, matrix, out):  # pragma: no cover - compiled
    """Write the two chroma rows of ``matrix`` (2×3) applied to each pixel: ``out[y, x, k] = matrix[k] · image[y, x]``.

    Notes
    -----
    ``image`` H×W×3 float32, ``out`` H×W×2 float32. (OpenCV's ``transform``
    to 2 channels is ~20× slower here.)
    """
    h = image.shape[0]
    w = image.shape[1]
    a0 = matrix[0, 0]
    a1 = matrix[0, 1]
    a2 = matrix[0, 2]
    b0 = matrix[1, 0]
    b1 = matrix[1, 1]
    b2 = matrix[1, 2]
    for y in numba.prange(h):
        for x in range(w):
            r = image[y, x, 0]
            g = image[y, x, 1]
            b = image[y, x, 2]
            out[y, x, 0] = a0 * r + a1 * g + a2 * b
            out[y, x, 1] = b0 * r + b1 * g + b2 * b


@numba.njit(cache=True, parallel=True)
def chroma_peak_rows(image, matrix, out, peak):  # pragma: no cover - compiled
    """:func:`chroma_rows` and :func:`channel_max_rows` in one pass; returns the number of non-finite pixels.

    Notes
    -----
    ``image`` H×W×3 float32, ``matrix`` 2×3, ``out`` H×W×2 float32,
    ``peak`` H×W float32 (the largest channel of each pixel).
    """
    h = image.shape[0]
    w = image.shape[1]
    a0 = matrix[0, 0]
    a1 = matrix[0, 1]
    a2 = matrix[0, 2]
    b0 = matrix[1, 0]
    b1 = matrix[1, 1]
    b2 = matrix[1, 2]
    bad = 0
    for y in numba.prange(h):
        nb = 0
        for x in range(w):
            r = image[y, x, 0]
            g = image[y, x, 1]
            b = image[y, x, 2]
            out[y, x, 0] = a0 * r + a1 * g + a2 * b
            out[y, x, 1] = b0 * r + b1 * g + b2 * b
            peak[y, x] = max(r, max(g, b))
            nb += ((r - r) != 0) | ((g - g) != 0) | ((b - b) != 0)
        bad += nb
    return bad


@numba.njit(cache=True, parallel=True)
def add_chroma_rows(image, blurred, chroma, matrix, peak, protect, scale, out):  # pragma: no cover - compiled
    """``out = image + matrix @ (s · (blurred - chroma))`` per pixel, ``s = scale`` where ``peak < protect``, else 0.

    Notes
    -----
    ``image``/``out`` H×W×3 float32, ``blurred``/``chroma`` H×W×2,
    ``matrix`` 3×2 (chroma → RGB columns of the inverse YCbCr matrix),
    ``peak`` H×W float32 (or a 0×0 array: ``s = scale`` everywhere),
    ``protect`` and ``scale`` floats.
    """
    h = image.shape[0]
    w = image.shape[1]
    use_p = peak.shape[0] > 0
    lim = np.float32(protect)
    zero = np.float32(0.0)
    for y in numba.prange(h):
        for x in range(w):
            s = (scale if peak[y, x] < lim else zero) if use_p else scale
            d0 = s * (blurred[y, x, 0] - chroma[y, x, 0])
            d1 = s * (blurred[y, x, 1] - chroma[y, x, 1])
            for c in range(3):
                out[y, x, c] = image[y, x, c] + matrix[c, 0] * d0 + matrix[c, 1] * d1
