"""Quantisation of [0, 1] images to 8 or 16 bits, with optional TPDF dither.

``quantize`` returns integers (uint8 / uint16) for writing files; the
:class:`Quantize` stage keeps float32 but snaps values to the same grid
(``k / (2^bits - 1)``) so a pipeline can model the quantisation.

References
----------
S. P. Lipshitz, R. A. Wannamaker, J. Vanderkooy, "Quantization and dither:
a theoretical survey", J. Audio Eng. Soc. 40(5), 1992 (TPDF dither of 2 LSB
peak-to-peak makes the error mean and variance independent of the signal).
IEEE 754-2008 §4.3.3 roundTiesToEven.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels.scratch import recycled_empty

__all__ = ["DITHER_METHODS", "quantize", "dequantize", "Quantize"]

#: Dither names (``False`` / ``None`` / ``"none"`` mean no dither).
DITHER_METHODS: frozenset[str] = frozenset({"none", "tpdf"})


def _dither_name(dither: Any, where: str) -> str:
    if dither is None or dither is False:
        return "none"
    if dither is True:
        return "tpdf"
    if isinstance(dither, str) and dither in DITHER_METHODS:
        return dither
    raise unknown_name("dither", dither, DITHER_METHODS, f"{where} parameter 'dither'")


def _check_bits(bit_depth: Any, where: str) -> int:
    if bit_depth not in (8, 16) or isinstance(bit_depth, bool):
        raise ParameterError(f"{where}: parameter 'bit_depth' must be 8 or 16, got {bit_depth!r}")
    return int(bit_depth)


def _check_seed(seed: Any, where: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"{where}: parameter 'seed' must be an int >= 0, got {seed!r}")


def _codes(img: Any, bits: int, dither: str, seed: int, where: str) -> np.ndarray:
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{where}: expected a real numeric array, got dtype {arr.dtype}")
    wide = arr.dtype == np.float64 or bits > 8  # float32 cannot resolve half a 16-bit step near 1
    x = np.asarray(arr, dtype=np.float64 if wide else np.float32)
    if x.size and not np.isfinite(x).all():
        raise InputError(f"{where}: input holds NaN or inf values; fix or mask them first")
    top = float((1 << bits) - 1)
    v = x * x.dtype.type(top)
    if dither == "tpdf":
        rng = np.random.default_rng(seed)
        # difference of two independent uniforms: triangular on (-1, 1) LSB
        v = v + (rng.random(x.shape, dtype=x.dtype) - rng.random(x.shape, dtype=x.dtype))
    np.rint(v, out=v)  # round half to even
    np.clip(v, 0.0, top, out=v)
    return v


def quantize(img: Any, bit_depth: int = 8, dither: bool | str | None = False, seed: int = 0) -> np.ndarray:
    """Quantise values in [0, 1] to unsigned integers of ``bit_depth`` bits.

    Parameters
    ----------
    img : array of any shape, nominally [0, 1] (clipped to it).
    bit_depth : 8 → uint8, 16 → uint16 (full scale ``2^bits - 1``).
    dither : ``False``/``"none"`` or ``"tpdf"`` (``True`` is ``"tpdf"``):
        add triangular noise of ±1 LSB before rounding, which makes the
        expected output equal the input (no banding, no dead zone).
    seed : seed of the dither noise (results are reproducible).

    Notes
    -----
    Any shape float → uint8/uint16 of the same shape. Rounds half to even
    (``0.5 LSB`` → 0, ``1.5 LSB`` → 2), so the rounding error has zero mean
    on uniform data.

    References
    ----------
    Lipshitz, Wannamaker & Vanderkooy, JAES 40(5), 1992.
    """
    bits = _check_bits(bit_depth, "quantize")
    name = _dither_name(dither, "quantize")
    _check_seed(seed, "quantize")
    arr = np.asarray(img)
    if bits == 8 and name == "none" and arr.dtype == np.float32 and arr.ndim >= 1 and arr.size:
        return _quantize_u8_fast(arr)
    v = _codes(img, bits, name, seed, "quantize")
    return v.astype(np.uint8 if bits == 8 else np.uint16)


def _quantize_u8_fast(arr: np.ndarray) -> np.ndarray:
    """The float32 → uint8 path in one Numba pass (same arithmetic and result as :func:`_codes`)."""
    from ._kernels.quantize import quantize_u8_rows

    src = np.ascontiguousarray(arr)
    out = recycled_empty(src.shape, np.uint8)
    cols = src.shape[-1] * (src.shape[-2] if src.ndim >= 2 else 1)
    bad = quantize_u8_rows(src.reshape(-1, cols), out.reshape(-1, cols))
    if bad:
        raise InputError("quantize: input holds NaN or inf values; fix or mask them first")
    return out


def dequantize(codes: Any, bit_depth: int | None = None) -> np.ndarray:
    """Map uint8/uint16 codes back to float32 in [0, 1] (``k / (2^bits - 1)``).

    Notes
    -----
    ``bit_depth`` defaults to 8 for uint8 and 16 for uint16 input.
    """
    arr = np.asarray(codes)
    if bit_depth is None:
        if arr.dtype == np.uint8:
            bit_depth = 8
        elif arr.dtype == np.uint16:
            bit_depth = 16
        else:
            raise ParameterError(f"dequantize: give 'bit_depth' for dtype {arr.dtype} (uint8/uint16 imply it)")
    bits = _check_bits(bit_depth, "dequantize")
    return (arr.astype(np.float32) * np.float32(1.0 / ((1 << bits) - 1))).astype(np.float32)


@register_stage
@dataclass(frozen=True)
class Quantize(Stage):
    """Snap display values to an 8- or 16-bit grid (float32 out), optionally with TPDF dither.

    Parameters
    ----------
    bit_depth : 8 or 16.
    dither : ``False`` / ``"none"`` or ``"tpdf"``.
    seed : dither seed.

    Notes
    -----
    DISPLAY_RGB H×W×3 float32 → DISPLAY_RGB with values ``k / (2^bits - 1)``
    in [0, 1]; use :func:`quantize` to get the integer array for a file.
    """

    type_name = "quantize"
    bit_depth: int = 8
    dither: bool | str = False
    seed: int = 0

    def __post_init__(self) -> None:
        where = f"stage {self.type_name!r}"
        _check_bits(self.bit_depth, where)
        _dither_name(self.dither, where)
        _check_seed(self.seed, where)

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.DISPLAY_RGB,))

    def process(self, frame: Frame) -> Frame:
        name = _dither_name(self.dither, self.type_name)
        v = _codes(frame.data, self.bit_depth, name, self.seed, self.type_name)
        out = (v * (1.0 / ((1 << self.bit_depth) - 1))).astype(np.float32)
        return frame.replace(data=out)
