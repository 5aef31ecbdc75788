"""Register FC4 (Hu, Wang, Lin, CVPR 2017): ``fc4.cwp`` and ``fc4.sum``.

Layout and pre-processing follow matteo-rizzo/fc4-pytorch: the checkpoints
``trained_models/fc4_cwp/fold_N/model.pth`` (confidence-weighted pooling) and
``trained_models/fc4_sum/fold_N/model.pth`` (summation pooling) of its
``trained_models.zip`` are plain ``state_dict`` files that load with
``strict=True``.
"""

from __future__ import annotations

from ..models.fc4 import FC4
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["FC4_CONTRACT", "build_fc4_cwp", "build_fc4_sum"]

#: What the official data pipeline feeds (ColorCheckerDataset / DataAugmenter):
#: the linear camera-RGB image (black subtracted, divided by its maximum,
#: clipped to [0, 1]), BGR→RGB, raised to 1/2.2; the output is the linear
#: camera-RGB illuminant with unit L2 norm.
FC4_CONTRACT = InputContract(
    domain="rgb_linear",
    channel_order="RGB",
    normalization="camera-native linear RGB, black-subtracted, divided by the image maximum, clipped to [0, 1]",
    gamma="power 1/2.2",
    size_multiple=1,
    scale=0.0,
    in_channels=3,
    out_channels=3,
)

_PAPER = ("Y. Hu, B. Wang, S. Lin, \"FC4: Fully Convolutional Color Constancy with Confidence-weighted "
          "Pooling\", CVPR 2017")
_SOURCE = "matteo-rizzo/fc4-pytorch classes/fc4/FC4.py (SqueezeNet 1.1 backbone from torchvision)"
_LICENSE = "no licence file in matteo-rizzo/fc4-pytorch; the original FC4 code (yuanming-hu/fc4) is MIT"
_NOTES = ("trained on Shi-Gehler ColorChecker (3 folds, one checkpoint per fold) with the charts masked; "
          "images were halved in size at test time")


def build_fc4_cwp() -> FC4:
    """FC4 with confidence-weighted pooling (4 semi-dense output maps)."""
    return FC4(confidence_weighted=True)


def build_fc4_sum() -> FC4:
    """FC4 with summation pooling (3 semi-dense output maps)."""
    return FC4(confidence_weighted=False)


register_model(
    "fc4.cwp", build_fc4_cwp,
    WeightsSpec(paper=_PAPER,
                url="https://github.com/matteo-rizzo/fc4-pytorch (trained_models.zip: trained_models/fc4_cwp/fold_0/model.pth)",
                license=_LICENSE, source=_SOURCE, contract=FC4_CONTRACT, notes=_NOTES),
    description="FC4 illuminant estimation, SqueezeNet 1.1, confidence-weighted pooling",
)
register_model(
    "fc4.sum", build_fc4_sum,
    WeightsSpec(paper=_PAPER,
                url="https://github.com/matteo-rizzo/fc4-pytorch (trained_models.zip: trained_models/fc4_sum/fold_0/model.pth)",
                license=_LICENSE, source=_SOURCE, contract=FC4_CONTRACT, notes=_NOTES),
    description="FC4 illuminant estimation, SqueezeNet 1.1, summation pooling",
)
