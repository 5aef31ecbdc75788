"""Fusion of the classical render chain into one Numba pass.

The fuser recognises, anywhere in a pipeline, the run

    black_level → [exposure] → white_balance → [highlight_reconstruction] → demosaic
    → [highlight_recovery] → color_matrix → [sigmoid_tone_map] → gamma

with parameters the fused kernel supports (metadata white balance, bilinear
or Malvar demosaic — clip-aware only when the highlight clip follows —,
highlight clip, the sigmoid display curve, an OETF with clipping) and replaces it by
a :class:`FusedRender` node. ``FusedRender`` computes the same numbers as the
run (black levels, gains, clip levels, matrix and curve all come from the
stages' own functions), and runs the original stages instead whenever a frame
does not suit the kernel (odd size, linearisation table, …). The output
metadata is computed the way each stage computes it (tested equal to the
unfused run), so a fused run loads one kernel and nothing else.

A highlight reconstruction node is the identity on frames where no sample
reaches its clip level: a quick scan of the raw samples decides. On frames
with clipped samples its arithmetic runs on the clipped samples only (raw
samples normalised on the fly) and the kernel writes the rebuilt values over
each loaded row.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..frame import CaptureMetadata, Domain, Frame, cfa_color_indices
from ..pipeline import Stage, StageSpec, register_fuser
from ._kernels.fused import METHOD_BILINEAR, METHOD_MALVAR, finish_pixels, fused_render_f32, fused_render_u8
from .black_level import BLACK_LEVEL_PATTERN_KEY, RAW_LEVELS_KEY, BlackLevel, raw_levels_record
from .color_matrix import ColorMatrix, camera_to_working_matrix, resolve_color_source
from .demosaic import NEAR_CLIP_SATURATION, Demosaic, near_clip_values
from .display_transform import SigmoidToneMap
from .exposure import Exposure, exposure_gain_ev
from .gamma import Gamma, _transfer_record, gamma_compress_reference
from ._kernels.opposed import clipped_columns, clipped_per_row, opposed_chroma_sums_sparse, opposed_values_raw
from .highlights import (HIGHLIGHT_CLIP_LEVELS_KEY, _OPPOSED_LOW, _OPPOSED_MIN_COUNT, _OPPOSED_REACH, HighlightReconstruction,
                         HighlightRecovery, highlight_white_point, opposed_white_point)
from .white_balance import WhiteBalance, _scale_noise_profile, white_balance_gains

__all__ = ["FusedRender", "fuse_render_chain"]

_DEMOSAIC_CODES = {"bilinear": METHOD_BILINEAR, "malvar2004": METHOD_MALVAR}
_METADATA_WB = ("camera", "manual", "illuminant")
_LUT_F32 = 16385
_LUT_CODES = 65536


@functools.lru_cache(maxsize=16)
def _oetf_table(curve: str, gamma: float | None, toe_slope: float | None, n: int) -> np.ndarray:
    """The OETF at ``linspace(0, 1, n)`` (float64, read-only; cached: 0.5 ms to build at n = 65536)."""
    table = gamma_compress_reference(np.linspace(0.0, 1.0, n), curve, gamma=gamma, toe_slope=toe_slope, clip=True)
    table.setflags(write=False)
    return table


def _fusable_wb(st: Stage) -> bool:
    return isinstance(st, WhiteBalance) and st.method in _METADATA_WB


def _near_clip(st: Demosaic) -> tuple[str, int, float] | None:
    method = getattr(st, "near_clip", None)
    if method is None or method == st.method:
        return None
    return method, int(st.near_clip_radius), float(st.near_clip_level)


def _match_at(nodes: Sequence[tuple[str, Stage]], i: int) -> int:
    """Length of a fusable run starting at ``i`` (0 when none)."""
    j = i
    n = len(nodes)

    def at(k: int) -> Stage | None:
        return nodes[k][1] if k < n else None

    st = at(j)
    if not (isinstance(st, BlackLevel) and type(st) is BlackLevel and not st.clip):
        return 0
    j += 1
    if isinstance(at(j), Exposure):
        j += 1
    if not _fusable_wb(at(j)):  # type: ignore[arg-type]
        return 0
    j += 1
    if type(at(j)) is HighlightReconstruction:
        j += 1
    st = at(j)
    if not (isinstance(st, Demosaic) and st.method in _DEMOSAIC_CODES and not getattr(st, "clip", False)):
        return 0
    clip_aware = bool(getattr(st, "clip_aware", False))
    j += 1
    st = at(j)
    if isinstance(st, HighlightRecovery):
        if st.method != "clip" or getattr(st, "fringe", 0):
            return 0  # the kernel clips per pixel; the fringe rim is a neighbourhood operation
        j += 1
    elif clip_aware:
        return 0  # clip-aware samples equal limited ones only when the highlight clip follows
    st = at(j)
    if not isinstance(st, ColorMatrix) or getattr(st, "profile", None) is not None:
        return 0  # a DCP's HueSatMap is not a matrix: run the stage
    j += 1
    tone = at(j)
    if type(tone) is SigmoidToneMap:
        j += 1
    st = at(j)
    if not (isinstance(st, Gamma) and st.clip):
        return 0
    if type(tone) is SigmoidToneMap and not (tone.hue_encoding == "srgb" and type(st) is Gamma
                                             and st.curve == "srgb"):
        return 0  # the kernel's table is the curve composed with the sRGB OETF
    return j + 1 - i


def fuse_render_chain(nodes: Sequence[tuple[str, Stage]]) -> list[tuple[str, Stage]]:
    """Fuser: replace every fusable render run by one :class:`FusedRender` node."""
    out: list[tuple[str, Stage]] = []
    i = 0
    while i < len(nodes):
        if isinstance(nodes[i][1], FusedRender):
            out.append(nodes[i])
            i += 1
            continue
        k = _match_at(nodes, i)
        if k:
            run = tuple(nodes[i:i + k])
            out.append(("+".join(n for n, _ in run), FusedRender(run)))
            i += k
        else:
            out.append(nodes[i])
            i += 1
    return out


register_fuser(fuse_render_chain)


@dataclass(frozen=True)
class _Plan:
    cfa: np.ndarray
    black: np.ndarray
    scale: np.ndarray
    wb_lo: float
    wb_hi: float
    method: int
    hl_clip: float
    ccm: np.ndarray
    lo: float
    hi: float
    gamma: Gamma
    meta: CaptureMetadata
    tone: tuple | None = None
    clip_raw: np.ndarray | None = None  # 2×2 raw levels of clip_levels (lowered 1e-4 for the scan)
    clip_levels: np.ndarray | None = None  # (3,) clip levels in normalised, balanced units
    rebuild: bool = False  # a highlight reconstruction node rebuilds the samples from clip_levels
    # ((method, radius, level), white balance's upper clip, clip-aware limit or None) of the demosaic's
    # repair next to highlights
    near_clip: tuple | None = None


@dataclass(frozen=True, eq=False)
class FusedRender(Stage):
    """One-pass equivalent of a black level → … → OETF run (built by the fuser, not by hand).

    Notes
    -----
    RAW_MOSAIC raw counts → DISPLAY_RGB float32 in [0, 1]. Not registered
    for configs: pipelines save their original stages.
    """

    type_name = "fused_render"
    nodes: tuple = ()

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.DISPLAY_RGB,
                         requires=("cfa_pattern",))

    def _run_unfused(self, frame: Frame) -> Frame:
        for _, stage in self.nodes:
            frame = stage(frame)
        return frame

    def _plan(self, frame: Frame, chroma: np.ndarray | None = None) -> _Plan | None:
        """Kernel parameters and output metadata for ``frame``, or None when the kernel does not apply.

        ``chroma``: the highlight reconstruction's chroma offsets when it rebuilds samples.
        """
        m = frame.meta
        h, w = frame.data.shape
        if h % 2 or w % 2 or h < 4 or w < 4:
            return None
        if m.linearization_table is not None or m.extra.get(BLACK_LEVEL_PATTERN_KEY) is not None:
            return None
        stages = [s for _, s in self.nodes]
        bl: BlackLevel = stages[0]  # type: ignore[assignment]
        black = np.asarray(m.black_level, dtype=np.float64).reshape(2, 2)
        white = bl.effective_white_level(frame)
        if not np.all(white - black > 0):
            return None
        scale = 1.0 / (white - black)
        extra = dict(m.extra)
        extra.pop(BLACK_LEVEL_PATTERN_KEY, None)
        extra[RAW_LEVELS_KEY] = raw_levels_record(m, white)
        meta = m.replace(black_level=np.zeros(4), white_level=1.0, white_point=np.ones(3),
                         linearization_table=None, extra=extra)
        k = 1
        if isinstance(stages[k], Exposure):
            ev = exposure_gain_ev(meta, stages[k].ev, stages[k].use_baseline)
            if ev != 0.0:
                scale = scale * 2.0 ** ev
                meta = meta.replace(white_point=np.asarray(meta.white_point) * 2.0 ** ev)
            k += 1
        wb: WhiteBalance = stages[k]  # type: ignore[assignment]
        illum = wb.illuminant_for(Frame(np.zeros((2, 2, 3), np.float32), Domain.CAMERA_RGB, meta))
        gains = white_balance_gains(illum, wb.normalize)
        cidx = cfa_color_indices(m.cfa_pattern)
        scale = scale * gains[cidx]
        wp = np.asarray(meta.white_point) * gains
        if wb.clip:
            wp = np.minimum(wp, 1.0)
        meta = meta.replace(white_point=wp, illuminant_rgb=illum,
                            noise_profile=_scale_noise_profile(meta.noise_profile, gains))
        k += 1
        clip_raw = None
        clip_levels = None
        if isinstance(stages[k], HighlightReconstruction):
            # normalised sample (raw - black)·scale reaches clip·wp  <=>  raw reaches black + clip·wp / scale;
            # 1e-4 lower so that rounding never hides a clipped sample from the scan
            clip_levels = stages[k].clip_levels(meta)
            clip_raw = (black + clip_levels[cidx] / scale * (1.0 - 1e-4)).astype(np.float32)
            ch = np.zeros(3) if chroma is None else np.asarray(chroma, dtype=np.float64)
            extra = dict(meta.extra)
            extra["highlight_chroma"] = [float(v) for v in ch]
            extra[HIGHLIGHT_CLIP_LEVELS_KEY] = [float(v) for v in clip_levels]
            meta = meta.replace(white_point=opposed_white_point(meta.white_point, ch), extra=extra)
            k += 1
        method = _DEMOSAIC_CODES[stages[k].method]
        near_clip = _near_clip(stages[k])
        rebuild = clip_levels is not None
        if near_clip is not None and not rebuild:  # the demosaic stage's levels: the white point
            clip_levels = NEAR_CLIP_SATURATION * np.asarray(meta.white_point, dtype=np.float64)
            clip_raw = (black + clip_levels[cidx] / scale * (1.0 - 1e-4)).astype(np.float32)
        wb_hi = 1.0 if wb.clip else np.inf
        data_hi = wb_hi
        limit = None
        if getattr(stages[k], "clip_aware", False):
            # interpolating from samples limited to min(white point), then the highlight clip at that
            # level: the same as limiting every sample as it is loaded
            limit = float(np.min(meta.white_point))
            wb_hi = min(wb_hi, limit)
        k += 1
        hl_clip = np.inf
        if isinstance(stages[k], HighlightRecovery):
            hl_clip = float(np.min(meta.white_point))
            meta = meta.replace(white_point=highlight_white_point(meta.white_point, stages[k].method))
            k += 1
        cm: ColorMatrix = stages[k]  # type: ignore[assignment]
        if cm.ccm is None and resolve_color_source(meta, cm.source) is None:
            return None  # the camera-RGB fallback warns: leave it to the stage
        ccm, space = cm.matrix_for(meta)
        meta = meta.replace(color_space=space)
        k += 1
        tone = None
        if isinstance(stages[k], SigmoidToneMap):
            tone = stages[k].kernel_arguments()
            k += 1
        gamma: Gamma = stages[k]  # type: ignore[assignment]
        extra = dict(meta.extra)
        extra["transfer_function"] = _transfer_record(gamma.curve, gamma.gamma, gamma.toe_slope)
        meta = meta.replace(extra=extra)
        return _Plan(cfa=cidx, black=black, scale=scale, wb_lo=0.0 if wb.clip else -np.inf,
                     wb_hi=wb_hi, method=method, hl_clip=hl_clip, ccm=ccm,
                     lo=0.0, hi=1.0, gamma=gamma, meta=meta, tone=tone, clip_raw=clip_raw,
                     clip_levels=clip_levels, rebuild=rebuild, near_clip=(near_clip, data_hi, limit)
                     if near_clip is not None else None)

    @staticmethod
    def _lut(g: Gamma, n: int) -> np.ndarray:
        return _oetf_table(g.curve, g.gamma, g.toe_slope, n)

    def _plan_for_data(self, frame: Frame) -> tuple[_Plan | None, tuple | None, tuple | None]:
        """The plan, the rebuilt samples the kernel writes over the loaded rows (None: nothing
        clipped) and the highlight photosites of the demosaic's near-clip repair (None: no repair).

        The highlight reconstruction's arithmetic on the clipped samples only
        (:func:`~ispkit.stages.highlights.reconstruct_opposed`, raw samples
        normalised on the fly): the clipped samples are listed, the chroma is
        summed over the 2×2 quads near them (visited from the list, not by
        dilating a full-frame mask), and each gets its rebuilt value. With a
        near-clip repair the one scan lists the samples from the lower
        highlight level; the clipped ones are those at or above the clip level.
        """
        plan = self._plan(frame)
        if plan is None or plan.clip_raw is None:
            return plan, None, None
        x = frame.data
        black, scale = plan.black, plan.scale
        cidx = np.asarray(plan.cfa, dtype=np.int64)
        clips = plan.clip_levels.astype(np.float32)
        scan_raw = plan.clip_raw
        if plan.near_clip is not None:
            low = plan.clip_levels * plan.near_clip[0][2]
            scan_raw = (black + low[cidx] / scale * (1.0 - 1e-4)).astype(np.float32)
        row_ptr = np.cumsum(clipped_per_row(x, scan_raw))
        if row_ptr[-1] == 0:
            return plan, None, None
        cols = np.empty(int(row_ptr[-1]), np.int64)
        clipped_columns(x, scan_raw, row_ptr, cols)
        rows = np.repeat(np.arange(x.shape[0]), np.diff(row_ptr))
        colour = cidx[rows & 1, cols & 1]
        v = ((x[rows, cols].astype(np.float64) - black[rows & 1, cols & 1]) * scale[rows & 1, cols & 1]).astype(
            np.float32)
        highlights = None
        if plan.near_clip is not None:
            bright = v >= (plan.clip_levels * plan.near_clip[0][2]).astype(np.float32)[colour]
            highlights = (rows[bright], cols[bright])
        hit = v >= clips[colour]
        if not (plan.rebuild and hit.any()):
            return plan, None, highlights
        if plan.near_clip is not None:  # keep the clipped samples only
            rows, cols, colour = rows[hit], cols[hit], colour[hit]
            row_ptr = np.zeros(x.shape[0] + 1, np.int64)
            np.cumsum(np.bincount(rows, minlength=x.shape[0]), out=row_ptr[1:])
            hit = np.ones(rows.shape[0], bool)
        sums = opposed_chroma_sums_sparse(x, cidx, clips, rows[hit], cols[hit], colour[hit], _OPPOSED_REACH,
                                          _OPPOSED_LOW, black, scale)
        chroma = np.where(sums[3:] > _OPPOSED_MIN_COUNT, sums[:3] / np.maximum(sums[3:], 1.0), 0.0)
        vals = np.empty(cols.shape[0], np.float32)
        opposed_values_raw(x, cidx, clips, chroma.astype(np.float32), row_ptr, cols, black, scale, vals)
        return self._plan(frame, chroma), (row_ptr, cols, vals), highlights

    def _repair_near_clip(self, frame: Frame, plan: _Plan, patches: tuple | None, highlights: tuple | None,
                          out: np.ndarray, lut: np.ndarray, to_u8: bool) -> None:
        """Overwrite the pixels next to highlight edges with the demosaic's ``near_clip`` method,
        coloured by the kernel's own steps (:func:`~ispkit.stages._kernels.fused.finish_pixels`)."""
        if highlights is None or highlights[0].size == 0:
            return
        (method, radius, level), data_hi, limit = plan.near_clip
        ys, xs, rgb = near_clip_values(frame.data, frame.meta.cfa_pattern, plan.clip_levels * level, highlights[0],
                                       highlights[1], method, radius, clip_level=limit, black=plan.black,
                                       scale=plan.scale, lo=plan.wb_lo, hi=data_hi, patches=patches)
        if ys.size:
            out[ys, xs] = finish_pixels(rgb, plan.hl_clip, plan.ccm, lut, plan.tone, to_u8)

    def process(self, frame: Frame) -> Frame:
        plan, patches, highlights = self._plan_for_data(frame)
        if plan is None:
            return self._run_unfused(frame)
        out = np.empty(frame.data.shape + (3,), np.float32)
        lut = self._lut(plan.gamma, _LUT_F32)
        bad = fused_render_f32(frame.data, plan.cfa, plan.black, plan.scale, plan.wb_lo, plan.wb_hi, plan.method,
                               plan.hl_clip, plan.ccm, plan.lo, plan.hi, lut, out, tone=plan.tone, patches=patches)
        if bad:
            return self._run_unfused(frame)  # the stages raise the proper InputError
        self._repair_near_clip(frame, plan, patches, highlights, out, lut, to_u8=False)
        return Frame(out, Domain.DISPLAY_RGB, plan.meta)

    def render_codes(self, frame: Frame, bit_depth: int = 8,
                     out: np.ndarray | None = None) -> tuple[np.ndarray, CaptureMetadata] | None:
        """Render straight to uint8 codes; None when the kernel does not apply or bit_depth != 8.

        Returns the H×W×3 uint8 array (``out`` when given: a C-contiguous
        H×W×3 uint8 array to write into) and the output metadata.
        """
        if bit_depth != 8:
            return None
        plan, patches, highlights = self._plan_for_data(frame)
        if plan is None:
            return None
        codes = np.rint(self._lut(plan.gamma, _LUT_CODES) * 255.0).astype(np.uint8)
        if out is None:
            out = np.empty(frame.data.shape + (3,), np.uint8)
        bad = fused_render_u8(frame.data, plan.cfa, plan.black, plan.scale, plan.wb_lo, plan.wb_hi, plan.method,
                              plan.hl_clip, plan.ccm, plan.lo, plan.hi, codes, out, tone=plan.tone, patches=patches)
        if bad:
            return None  # the caller falls back to the stages, which raise the proper InputError
        self._repair_near_clip(frame, plan, patches, highlights, out, codes, to_u8=True)
        return out, plan.meta
