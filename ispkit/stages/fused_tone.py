"""Fusion of the pointwise night tail: auto exposure → night tone → OETF in one Numba pass.

The fuser recognises, anywhere in a pipeline, the run

    auto_exposure → night_tone → gamma (any curve but "linear", ``clip=True``)

and replaces it by a :class:`FusedNightTail` node. The gain is found the
way :class:`~ispkit.stages.tone.AutoExposure` finds it (its own method, on
the same input); the kernel then applies gain, tone curve and OETF with the
arithmetic of each stage's kernel, so the numbers and the metadata equal the
unfused run, without its two full-frame intermediates and three passes.
Frames the kernel does not take (not H×W×3, non-finite values) run the
original stages, which raise what they raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..frame import Domain, Frame
from ..pipeline import Stage, StageSpec, register_fuser
from ._kernels.tone import gain_night_tone_oetf_rgb
from .gamma import Gamma, _transfer_record, kernel_coefficients
from .tone import LUMA_WEIGHTS, AutoExposure, NightTone, _night_ratio_table, _run
from ._kernels.scratch import recycled_empty

__all__ = ["FusedNightTail", "fuse_night_tail"]


def _fusable_gamma(st: Stage) -> bool:
    return type(st) is Gamma and st.clip and st.curve != "linear"


@dataclass(frozen=True, eq=False)
class FusedNightTail(Stage):
    """Auto exposure, night tone and a clipping OETF as one pointwise pass (made by the fuser).

    Notes
    -----
    LINEAR_RGB / CAMERA_RGB H×W×3 float32 → DISPLAY_RGB in [0, 1]; the
    output and metadata equal ``gamma(night_tone(auto_exposure(frame)))``.
    Not registered for configs: pipelines save their original stages.
    """

    type_name = "fused_night_tail"
    nodes: tuple[tuple[str, Stage], ...] = ()

    @property
    def spec(self) -> StageSpec:
        first = self.nodes[0][1].spec
        return StageSpec(in_domains=first.in_domains, out_domain=Domain.DISPLAY_RGB)

    def _run_unfused(self, frame: Frame) -> Frame:
        for _, stage in self.nodes:
            frame = stage(frame)
        return frame

    def process(self, frame: Frame) -> Frame:
        exposure: AutoExposure = self.nodes[0][1]  # type: ignore[assignment]
        tone: NightTone = self.nodes[1][1]  # type: ignore[assignment]
        gamma: Gamma = self.nodes[2][1]  # type: ignore[assignment]
        x = frame.data
        if x.ndim != 3 or x.shape[2] != 3 or x.dtype != np.float32 or x.size == 0:
            return self._run_unfused(frame)
        gain, limit = exposure.gain_for(frame)
        src = np.ascontiguousarray(x).reshape(-1, 3)
        out = recycled_empty(x.shape, np.float32)
        coef = kernel_coefficients(gamma.curve, gamma.gamma, gamma.toe_slope, inverse=False, float32=True)
        bad = _run(gain_night_tone_oetf_rgb, src.size, src, out.reshape(-1, 3), float(gain), *LUMA_WEIGHTS,
                   float(tone.shadows), 1.0 - float(tone.highlights), _night_ratio_table(float(tone.shadows)), *coef)
        if bad:
            return self._run_unfused(frame)
        meta = AutoExposure.output_meta(frame.meta, gain, limit)
        extra = dict(meta.extra)
        extra["transfer_function"] = _transfer_record(gamma.curve, gamma.gamma, gamma.toe_slope)
        return Frame(out, Domain.DISPLAY_RGB, meta.replace(extra=extra))


@register_fuser
def fuse_night_tail(nodes: Sequence[tuple[str, Stage]]) -> list[tuple[str, Stage]]:
    """Replace each auto_exposure → night_tone → clipping gamma run by a :class:`FusedNightTail`."""
    out: list[tuple[str, Stage]] = []
    i = 0
    n = len(nodes)
    while i < n:
        if (i + 2 < n and type(nodes[i][1]) is AutoExposure and type(nodes[i + 1][1]) is NightTone
                and _fusable_gamma(nodes[i + 2][1])):
            run = tuple(nodes[i:i + 3])
            out.append(("+".join(name for name, _ in run), FusedNightTail(nodes=run)))
            i += 3
        else:
            out.append(nodes[i])
            i += 1
    return out
