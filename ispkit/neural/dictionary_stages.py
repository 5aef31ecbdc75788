"""The inverse of the dictionary ISP as a pipeline stage: display sRGB → RAW mosaic.

The forward direction (RAW → sRGB) of ``dictionary_isp.k8`` runs in the
``learned_raw_to_rgb`` stage like every raw-to-RGB model; this module adds
``dictionary_unprocess``, which inverts the fitted model exactly
(:meth:`~ispkit.neural.models.dictionary_isp.DictionaryISP.unrender`) and
samples the camera RGB into a Bayer mosaic — RAW training data from any
sRGB image.

References
----------
Conde, M. V., McDonagh, S., Maggioni, M., Leonardis, A., Pérez-Pellitero, E.
"Model-Based Image Signal Processors via Learnable Dictionaries." AAAI 2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ParameterError
from ..frame import Domain, Frame, check_cfa_pattern
from ..pipeline import StageSpec, register_stage
from ..stages.demosaic import mosaic
from ._io import to_numpy, to_tensor
from .device import inference_context
from .stages import _NeuralStage

__all__ = ["DictionaryUnprocess"]


@register_stage
@dataclass(frozen=True)
class DictionaryUnprocess(_NeuralStage):
    """Reconstruct a RAW mosaic from display sRGB with the exact inverse of a fitted dictionary ISP.

    Parameters
    ----------
    model : a dictionary ISP of the zoo (``"dictionary_isp.k8"``).
    weights : its checkpoint; None refuses to run unless ``random_weights=True`` (warned once).
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    dtype : ``"float32"`` (the inverse needs full precision; other values are refused).
    cfa_pattern : the Bayer layout of the mosaic to write.

    Notes
    -----
    DISPLAY_RGB H×W×3 float32 (sRGB, [0, 1]) → RAW_MOSAIC H×W float32
    (black 0, white 1, not clipped) with metadata ``cfa_pattern``,
    ``black_level`` 0, ``white_level`` 1, the predicted ``wb_gains``
    (green 1) and ``cam_to_srgb`` (the predicted colour matrix times the
    green gain), so the frame renders back through the classical stages.
    The whole image is one tile: the parameters are global per image.

    References
    ----------
    Conde et al., "Model-Based Image Signal Processors via Learnable
    Dictionaries", AAAI 2022.
    """

    type_name = "dictionary_unprocess"
    kind = "raw-to-RGB"
    tile: ClassVar[None] = None
    overlap: ClassVar[int] = 0
    model: str = "dictionary_isp.k8"
    weights: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    cfa_pattern: str = "RGGB"

    def __post_init__(self) -> None:
        self._validate()
        if not self.model.startswith("dictionary_isp."):
            raise ParameterError(f"stage 'dictionary_unprocess' parameter 'model': expected a dictionary ISP "
                                 f"(e.g. 'dictionary_isp.k8'), got {self.model!r}")
        if self.dtype != "float32":
            raise ParameterError(f"stage 'dictionary_unprocess' parameter 'dtype': the exact inverse runs in "
                                 f"'float32' only, got {self.dtype!r}")
        check_cfa_pattern(self.cfa_pattern, "stage 'dictionary_unprocess' parameter 'cfa_pattern'")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.DISPLAY_RGB,), out_domain=Domain.RAW_MOSAIC,
                         provides=("cfa_pattern", "wb_gains", "cam_to_srgb"))

    def process(self, frame: Frame) -> Frame:
        net, dev = self.network()
        x = to_tensor(frame.data, device=dev)
        with inference_context(dev, "float32"):
            params = net.params_from_rgb(x)
            cam = net.unrender(x, params)
        gains = params.wb_gains[0].double().cpu().numpy()
        ccm = params.ccm[0].double().cpu().numpy()
        raw = mosaic(to_numpy(cam), self.cfa_pattern)
        return self.with_record(
            frame, raw.astype(np.float32, copy=False), domain=Domain.RAW_MOSAIC, cfa_pattern=self.cfa_pattern,
            black_level=np.zeros(4), white_level=1.0, wb_gains=gains / gains[1], cam_to_srgb=ccm * gains[1],
        )
