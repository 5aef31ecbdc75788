"""Black level subtraction, linearisation and normalisation to [0, 1].

The DNG mapping from stored raw counts to linear reference values, in order:

1. ``LinearizationTable``: ``v = lut[raw]`` (when present),
2. ``BlackLevel`` with its ``BlackLevelRepeatDim`` pattern: ``v - black[r % R, c % C]``,
3. ``WhiteLevel``: divide by ``white - black`` so every CFA position saturates at 1.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.6, §5 "Mapping Raw Values to
Linear Reference Values" (LinearizationTable, BlackLevelRepeatDim, BlackLevel,
WhiteLevel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError
from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage
from ._kernels import black_level as _k
from ._kernels._parallel import readonly, threads_for
from ._kernels.scratch import recycled_empty

__all__ = ["subtract_black_level", "adjusted_white_level", "BlackLevel", "BLACK_LEVEL_PATTERN_KEY", "RAW_LEVELS_KEY",
           "raw_levels_record"]

#: ``meta.extra`` key of a black-level repeat pattern larger than 2×2: a 2-D
#: array of shape (BlackLevelRepeatRows, BlackLevelRepeatCols) in raw counts,
#: tiled from the top-left pixel; when present it replaces ``meta.black_level``.
BLACK_LEVEL_PATTERN_KEY = "black_level_pattern"
#: ``meta.extra`` key under which BlackLevel records the levels it removed (for the inverse).
RAW_LEVELS_KEY = "raw_levels"


def raw_levels_record(meta: Any, white_level: float) -> dict[str, Any]:
    """The raw levels a black-level normalisation removes, as ``meta.extra["raw_levels"]``.

    ``black_level`` (4,), ``white_level`` and, when set, ``black_level_pattern``
    and ``linearization_table`` — what :class:`~ispkit.stages.inverses.InverseBlackLevel`
    needs to map normalised values back to raw counts.
    """
    rec: dict[str, Any] = {"black_level": [float(v) for v in np.asarray(meta.black_level).ravel()],
                           "white_level": float(white_level)}
    pattern = meta.extra.get(BLACK_LEVEL_PATTERN_KEY)
    if pattern is not None:
        rec["black_level_pattern"] = np.asarray(pattern, dtype=np.float64).tolist()
    if meta.linearization_table is not None:
        rec["linearization_table"] = meta.linearization_table
    return rec


def _black_pattern(black_level: Any, black_level_pattern: Any) -> np.ndarray:
    """Return the black-level repeat pattern as an R×C float64 array."""
    if black_level_pattern is not None:
        pat = np.array(black_level_pattern, dtype=np.float64)
        if pat.ndim != 2 or pat.size == 0:
            raise ParameterError(
                "black_level: black_level_pattern must be a 2-D array of shape "
                f"(BlackLevelRepeatRows, BlackLevelRepeatCols), got shape {pat.shape}"
            )
    else:
        arr = np.array(black_level, dtype=np.float64).ravel()
        if arr.size not in (1, 4):
            raise ParameterError(
                "black_level: black_level must be a scalar or 4 values in raster order of the "
                f"2×2 CFA block, got {arr.size} values"
            )
        pat = np.broadcast_to(arr, (4,)).reshape(2, 2)
    if not np.all(np.isfinite(pat)):
        raise ParameterError(f"black_level: black levels must be finite, got {pat.ravel().tolist()}")
    return pat


def subtract_black_level(mosaic: np.ndarray, black_level: Any, white_level: float,
                         *, clip: bool = False, linearization_table: Any = None,
                         black_level_pattern: Any = None,
                         out: np.ndarray | None = None) -> np.ndarray:
    """Map raw counts to ``(lut[x] - black) / (white - black)`` per CFA position.

    Parameters
    ----------
    mosaic : H×W raw counts (any real dtype).
    black_level : scalar or (4,) black level in raster order of the 2×2 block.
    white_level : saturation level (after linearisation).
    clip : clip the result to [0, 1] (default keeps noise below black).
    linearization_table : optional 1-D DNG LinearizationTable (raw count →
        linear value, applied before black subtraction; samples past its end
        use the last entry).
    black_level_pattern : optional R×C black levels (DNG BlackLevelRepeatDim
        larger than 2×2); replaces ``black_level`` when given.
    out : optional H×W float32 buffer to write into.

    Returns
    -------
    H×W float32, nominally [0, 1]; every position saturates at exactly 1.

    Raises
    ------
    InputError : the mosaic is not 2-D, is empty, or holds NaN/inf.
    ParameterError : ``white - black`` is zero or negative anywhere, or a
        level is non-finite.

    Notes
    -----
    RAW_MOSAIC, H×W, any real dtype in → float32 out, nominally [0, 1].

    References
    ----------
    Adobe, *DNG Specification* 1.6, §5 "Mapping Raw Values to Linear Reference Values".
    """
    x = np.asarray(mosaic)
    if x.ndim != 2:
        raise InputError(f"subtract_black_level: expected an H×W mosaic, got shape {x.shape}")
    if x.size == 0:
        raise InputError(f"subtract_black_level: the mosaic is empty (shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise InputError(f"subtract_black_level: expected real raw counts, got dtype {x.dtype}")
    pat = _black_pattern(black_level, black_level_pattern)
    white = float(white_level)
    if not np.isfinite(white):
        raise ParameterError(f"black_level: white level must be finite, got {white_level!r}")
    scale = white - pat
    if np.any(scale <= 0):
        raise ParameterError(
            f"black_level: white level {white:g} must exceed every black level "
            f"{pat.ravel().tolist()} (white - black = {scale.ravel().tolist()}); "
            "check meta.white_level and meta.black_level"
        )
    # one compiled kernel per input type (uint16 or float32, C-contiguous, read-only)
    x = readonly(np.ascontiguousarray(x, dtype=x.dtype if x.dtype == np.uint16 else np.float32))
    h, w = x.shape
    cols = np.arange(w) % pat.shape[1]
    black_rows = np.ascontiguousarray(pat[:, cols], dtype=np.float32)
    inv_rows = np.ascontiguousarray(1.0 / scale[:, cols], dtype=np.float32)
    if out is None:
        out = recycled_empty((h, w), np.float32)
    elif out.shape != (h, w) or out.dtype != np.float32:
        raise ParameterError(
            f"subtract_black_level: out must be a float32 array of shape {(h, w)}, "
            f"got {out.dtype} {out.shape}"
        )
    if linearization_table is not None:
        lut = np.asarray(linearization_table, dtype=np.float64).ravel()
        if lut.size == 0 or not np.all(np.isfinite(lut)):
            raise ParameterError(
                f"black_level: linearization_table must be a non-empty finite 1-D table, got {lut.size} entries"
            )
        with threads_for(x.size):
            probe = _k.normalize_rows_lut(x, lut.astype(np.float32), black_rows, inv_rows, bool(clip), out)
    else:
        with threads_for(x.size):
            probe = _k.normalize_rows(x, black_rows, inv_rows, bool(clip), out)
    if np.isnan(probe).any():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise InputError(
            f"subtract_black_level: the mosaic holds {bad} non-finite (NaN/inf) samples; "
            "raw counts must be finite — repair or mask them before BlackLevel"
        )
    return out


def adjusted_white_level(mosaic: np.ndarray, black_level: Any, white_level: float, threshold: float) -> float:
    """Return LibRaw's adjusted white level (``adjust_maximum_thr``) for ``mosaic``.

    LibRaw moves the smallest black level into a common black
    (``maximum = white − common``), subtracts the whole per-position black
    before it takes the data maximum (``data_max = max(x − black[p])``), and
    when ``threshold·maximum < data_max < maximum`` uses the data maximum as
    the white point. Returns the white level in raw counts
    (``common + data_max``); ``threshold <= 0`` disables it.

    Notes
    -----
    RAW_MOSAIC raw counts; reads the data once (a max reduction).

    References
    ----------
    LibRaw 0.21 ``adjust_maximum()`` and ``subtract_black_internal()`` (the data maximum
    after the full black, ``imgdata.params.adjust_maximum_thr``, default 0.75).
    """
    if threshold <= 0:
        return float(white_level)
    black = np.broadcast_to(np.asarray(black_level, dtype=np.float64).ravel(), (4,))
    common = float(black.min())
    x = np.asarray(mosaic)
    h, w = x.shape
    data_max = 0.0
    for p in range(4):
        dy, dx = divmod(p, 2)
        plane = x[dy::2, dx::2]
        if plane.size == 0:
            continue
        data_max = max(data_max, float(plane.max()) - float(black[p]))
    maximum = float(white_level) - common
    if 0 < data_max < maximum and data_max > maximum * float(threshold):
        return common + data_max
    return float(white_level)


@register_stage
@dataclass(frozen=True)
class BlackLevel(Stage):
    """Linearise, subtract the per-position black level and scale by the white level.

    Parameters
    ----------
    clip : clip the result to [0, 1] (default keeps negatives from noise).
    adjust_maximum_thr : LibRaw's white-level adjustment: when the data
        maximum lies above this fraction of the white level, use it as the
        white level (0 disables; LibRaw's default is 0.75, the ``libraw``
        preset uses it). See :func:`adjusted_white_level`.

    Notes
    -----
    RAW_MOSAIC raw counts → RAW_MOSAIC float32 nominally [0, 1]. Uses
    ``meta.black_level`` (or ``meta.extra["black_level_pattern"]``),
    ``meta.white_level`` and ``meta.linearization_table``; afterwards the
    frame carries black 0, white 1, no table, and ``white_point = (1, 1, 1)``.

    References
    ----------
    Adobe, *DNG Specification* 1.6, §5.
    """

    type_name = "black_level"
    clip: bool = False
    adjust_maximum_thr: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ParameterError(f"stage 'black_level': clip must be True or False, got {self.clip!r}")
        t = self.adjust_maximum_thr
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t < 1.0:
            raise ParameterError(
                f"stage 'black_level': adjust_maximum_thr must be a fraction in [0, 1), got {t!r}")

    def effective_white_level(self, frame: Frame) -> float:
        """The white level this stage divides by for ``frame`` (after ``adjust_maximum_thr``)."""
        m = frame.meta
        if self.adjust_maximum_thr <= 0 or m.linearization_table is not None:
            return float(m.white_level)
        return adjusted_white_level(frame.data, m.black_level, m.white_level, self.adjust_maximum_thr)

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), requires=("cfa_pattern",),
                         provides=("white_point",), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        m = frame.meta
        pattern = m.extra.get(BLACK_LEVEL_PATTERN_KEY)
        out = subtract_black_level(frame.data, m.black_level, self.effective_white_level(frame), clip=self.clip,
                                   linearization_table=m.linearization_table,
                                   black_level_pattern=pattern)
        extra = dict(m.extra)
        extra.pop(BLACK_LEVEL_PATTERN_KEY, None)
        extra[RAW_LEVELS_KEY] = raw_levels_record(m, self.effective_white_level(frame))
        return frame.replace(data=out, white_point=np.ones(3), black_level=np.zeros(4),
                             white_level=1.0, linearization_table=None, extra=extra)

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseBlackLevel` (back to the counts recorded in ``extra["raw_levels"]``)."""
        from .inverses import InverseBlackLevel

        return InverseBlackLevel()
