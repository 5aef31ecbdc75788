"""A perceptual loss on VGG-19 features, from weights the user supplies (nothing is downloaded).

References
----------
Johnson, J., Alahi, A., Fei-Fei, L. (2016). Perceptual losses for real-time style transfer and
super-resolution. *ECCV*, 694–711.
Simonyan, K., Zisserman, A. (2015). Very deep convolutional networks for large-scale image
recognition. *ICLR*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import WeightsError, unknown_name
from ..weights import load_state_dict

__all__ = ["VGGPerceptual", "VGG19_LAYERS", "vgg19_features"]

#: VGG-19's convolution widths by block ("M": 2×2 max pooling), as in torchvision's ``vgg19().features``.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _layer_names() -> dict[str, int]:
    """Map ``conv3_4`` / ``relu3_4`` / ``pool3`` names to indices of ``features``."""
    names, block, conv, i = {}, 1, 1, 0
    for c in _CFG:
        if c == "M":
            names[f"pool{block}"] = i
            block, conv, i = block + 1, 1, i + 1
        else:
            names[f"conv{block}_{conv}"], names[f"relu{block}_{conv}"] = i, i + 1
            conv, i = conv + 1, i + 2
    return names


#: Layer name → index into ``features`` (``relu2_2`` → 8, ``relu5_4`` → 35).
VGG19_LAYERS = _layer_names()


def vgg19_features(upto: int) -> nn.Sequential:
    """Build VGG-19's ``features`` up to index ``upto`` with torchvision's layout (``N.weight``, ``N.bias``)."""
    layers: list[nn.Module] = []
    width = 3
    for c in _CFG:
        if c == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(width, int(c), 3, padding=1), nn.ReLU(inplace=False)]
            width = int(c)
    return nn.Sequential(*layers[:upto + 1])


class VGGPerceptual(nn.Module):
    """Distance between VGG-19 feature maps of prediction and target (Johnson et al. 2016).

    Parameters
    ----------
    weights_path : a VGG-19 checkpoint in torchvision's layout (``features.N.weight`` …; the
        classifier is ignored), ``.pth`` or ``.safetensors``. Nothing is downloaded.
    layers : feature layers compared, by name (``"relu1_2"`` … ``"relu5_4"``, ``"conv5_4"``).
    layer_weights : one weight per layer (default 1 each).
    distance : ``"l1"`` or ``"mse"`` between feature maps.

    Notes
    -----
    Input: NCHW display RGB in [0, 1]; normalised with the ImageNet mean and standard deviation
    inside. The network is frozen (no gradient to its weights) and follows the input's device.

    References
    ----------
    Johnson, Alahi, Fei-Fei (2016), *ECCV*; Simonyan, Zisserman (2015), *ICLR*.
    """

    def __init__(self, weights_path: str | Path, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4"),
                 layer_weights: Sequence[float] | None = None, distance: str = "l1") -> None:
        super().__init__()
        for name in layers:
            if name not in VGG19_LAYERS:
                raise unknown_name("VGG-19 layer", name, VGG19_LAYERS, "VGGPerceptual")
        if distance not in ("l1", "mse"):
            raise unknown_name("distance", distance, ("l1", "mse"), "VGGPerceptual")
        self.indices = [VGG19_LAYERS[n] for n in layers]
        self.layer_weights = list(layer_weights) if layer_weights is not None else [1.0] * len(self.indices)
        if len(self.layer_weights) != len(self.indices):
            raise WeightsError(f"VGGPerceptual: {len(self.layer_weights)} layer_weights for {len(self.indices)} layers")
        self.distance = distance
        self.features = vgg19_features(max(self.indices))
        self._load(Path(weights_path))
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _load(self, path: Path) -> None:
        sd = load_state_dict(path)
        wanted = self.features.state_dict()
        found = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")} or dict(sd)
        missing = [f"features.{k}" for k in wanted if k not in found]
        bad = [f"features.{k}" for k in wanted if k in found and found[k].shape != wanted[k].shape]
        if missing or bad:
            raise WeightsError(f"VGGPerceptual: {str(path)!r} is not a VGG-19 checkpoint in torchvision's layout: "
                               f"missing {missing[:5]}, mis-shaped {bad[:5]}; pass torchvision's vgg19 weights")
        self.features.load_state_dict({k: found[k] for k in wanted})

    def train(self, mode: bool = True) -> "VGGPerceptual":
        """Keep the feature network in eval mode whatever the caller asks."""
        super().train(mode)
        self.features.eval()
        return self

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.indices:
                out.append(x)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return Σ w_l · distance(φ_l(pred), φ_l(target)) over the chosen layers."""
        if self.mean.device != pred.device:
            self.to(pred.device)
        dist = F.l1_loss if self.distance == "l1" else F.mse_loss
        fp, ft = self._feats(pred), self._feats(target.detach())
        return sum(w * dist(a, b) for w, a, b in zip(self.layer_weights, fp, ft))  # type: ignore[return-value]
