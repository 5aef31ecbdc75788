"""Exposure compensation: a linear gain of 2^EV, optionally plus the DNG BaselineExposure.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.6, tag BaselineExposure (50730):
"the amount by which to adjust the exposure of the image […] in EV units",
applied by raw converters before tone mapping; tag BaselineExposureOffset
(51109, DNG 1.4, part of the camera profile): EV added to BaselineExposure
during rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..frame import CaptureMetadata, Domain, Frame
from ..pipeline import Stage, StageSpec, register_stage

__all__ = ["Exposure", "exposure_gain_ev", "apply_exposure"]


def exposure_gain_ev(meta: CaptureMetadata, ev: float = 0.0, use_baseline: bool = True) -> float:
    """Return the total exposure compensation in EV for ``meta`` (``ev`` + BaselineExposure + its offset)."""
    total = float(ev)
    if use_baseline:
        total += float(meta.extra.get("baseline_exposure", 0.0) or 0.0)
        total += float(meta.extra.get("baseline_exposure_offset", 0.0) or 0.0)
    return total


def apply_exposure(image: np.ndarray, ev: float) -> np.ndarray:
    """Multiply linear values by ``2**ev``.

    Notes
    -----
    Any linear domain; float32 in and out; no clipping (values may exceed 1).
    """
    return np.multiply(image, np.float32(2.0 ** ev), dtype=np.float32)


@register_stage
@dataclass(frozen=True)
class Exposure(Stage):
    """Scale linear values by ``2^(ev + BaselineExposure)``.

    Parameters
    ----------
    ev : extra compensation in stops.
    use_baseline : add the DNG BaselineExposure and BaselineExposureOffset carried in
        ``meta.extra["baseline_exposure"]`` and ``meta.extra["baseline_exposure_offset"]``.

    Notes
    -----
    RAW_MOSAIC (black-level normalised), CAMERA_RGB or LINEAR_RGB, float32;
    ``meta.white_point`` is scaled too (an absent one is taken as 1 per channel,
    as the highlight stages take it), so highlight handling still knows what clipped.
    """

    type_name = "exposure"
    ev: float = 0.0
    use_baseline: bool = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.ev) or abs(self.ev) > 16:
            raise ParameterError(f"stage 'exposure': ev must be a finite number of stops in [-16, 16], got {self.ev!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.CAMERA_RGB, Domain.LINEAR_RGB), pointwise=True)

    def process(self, frame: Frame) -> Frame:
        ev = exposure_gain_ev(frame.meta, self.ev, self.use_baseline)
        if ev == 0.0:
            return frame
        gain = 2.0 ** ev
        wp = frame.meta.white_point  # absent: 1 per channel, as the highlight stages read it
        base = np.ones(3) if wp is None else np.asarray(wp, dtype=np.float64)
        return frame.replace(data=apply_exposure(frame.data, ev), white_point=base * gain)

    def inverse(self) -> Stage:
        """:class:`~ispkit.stages.inverses.InverseExposure` with the same parameters."""
        from .inverses import InverseExposure

        return InverseExposure(ev=self.ev, use_baseline=self.use_baseline)
