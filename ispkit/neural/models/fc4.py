"""FC4: fully convolutional colour constancy with confidence-weighted pooling.

The layout reproduces ``classes/fc4/FC4.py`` of matteo-rizzo/fc4-pytorch key
for key: ``backbone`` holds the first twelve children of torchvision's
SqueezeNet 1.1 ``features`` (conv1 … fire8, same indices, Fire modules with
``squeeze``/``expand1x1``/``expand3x3`` convolutions) and ``final_convs`` is
MaxPool → Conv(512→64, 6×6, pad 3) → ReLU → Dropout(0.5) → Conv(64→4|3, 1×1)
→ ReLU.

References
----------
Y. Hu, B. Wang, S. Lin, "FC4: Fully Convolutional Color Constancy with
Confidence-weighted Pooling", CVPR 2017.
F. N. Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size", arXiv:1602.07360 (v1.1 from the
forresti/SqueezeNet repository).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Fire", "squeezenet1_1_features", "FC4"]


class Fire(nn.Module):
    """SqueezeNet Fire module: 1×1 squeeze, then concatenated 1×1 and 3×3 expands."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(s)),
                          self.expand3x3_activation(self.expand3x3(s))], dim=1)


def squeezenet1_1_features() -> list[nn.Module]:
    """Return the 13 layers of SqueezeNet 1.1's ``features`` in torchvision's order."""
    return [
        nn.Conv2d(3, 64, kernel_size=3, stride=2),              # 0  conv1
        nn.ReLU(inplace=True),                                  # 1
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 2
        Fire(64, 16, 64, 64),                                   # 3  fire2
        Fire(128, 16, 64, 64),                                  # 4  fire3
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 5
        Fire(128, 32, 128, 128),                                # 6  fire4
        Fire(256, 32, 128, 128),                                # 7  fire5
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 8
        Fire(256, 48, 192, 192),                                # 9  fire6
        Fire(384, 48, 192, 192),                                # 10 fire7
        Fire(384, 64, 256, 256),                                # 11 fire8
        Fire(512, 64, 256, 256),                                # 12 fire9 (not used by FC4)
    ]


class FC4(nn.Module):
    """FC4 illuminant estimator on a SqueezeNet 1.1 backbone.

    Parameters
    ----------
    confidence_weighted : True for confidence-weighted pooling (4 output maps:
        RGB + confidence), False for plain summation pooling (3 maps).

    Notes
    -----
    Input N×3×H×W float32 (see the registry's InputContract: camera RGB
    divided by its maximum, then raised to 1/2.2); output N×3 unit-norm
    illuminant RGB (linear). :meth:`semi_dense` returns the per-patch maps.
    """

    #: Smallest input side that leaves the final 2×2 pooling something to pool.
    min_size = 64

    def __init__(self, confidence_weighted: bool = True) -> None:
        super().__init__()
        self.confidence_weighted = bool(confidence_weighted)
        self.backbone = nn.Sequential(*squeezenet1_1_features()[:12])
        self.final_convs = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=1, ceil_mode=True),
            nn.Conv2d(512, 64, kernel_size=6, stride=1, padding=3),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Conv2d(64, 4 if self.confidence_weighted else 3, kernel_size=1, stride=1),
            nn.ReLU(inplace=True),
        )

        # torchvision's SqueezeNet initialisation (He-uniform, zero bias) for a usable random start
        for m in self.backbone.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def semi_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Return the semi-dense output maps (N×4 or N×3 × h × w)."""
        return self.final_convs(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.semi_dense(x)
        if self.confidence_weighted:
            rgb = F.normalize(out[:, :3], dim=1)
            confidence = out[:, 3:4]
            pooled = torch.sum(rgb * confidence, dim=(2, 3))
        else:
            pooled = torch.sum(out, dim=(2, 3))
        return F.normalize(pooled, dim=1)
