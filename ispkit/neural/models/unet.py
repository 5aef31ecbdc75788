"""A small configurable U-Net for packed-Bayer denoising, reverse ISP and tests.

References
----------
O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015.
C. Chen, Q. Chen, J. Xu, V. Koltun, "Learning to See in the Dark", CVPR 2018
(the packed-Bayer U-Net recipe).
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ParameterError

__all__ = ["ConvBlock", "UNet"]


class ConvBlock(nn.Sequential):
    """Two 3×3 convolutions, each followed by LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )


class UNet(nn.Module):
    """U-Net with ``depth`` 2× downsamplings and ``base·2^i`` channels at level i.

    Parameters
    ----------
    in_channels : input channels (4 packed Bayer planes, +1 for a noise map).
    out_channels : output channels.
    base : channels at full resolution.
    depth : number of downsamplings; inputs must be multiples of ``2**depth``.
    residual : add the first ``out_channels`` input channels to the output
        (the last convolution starts at zero, so an untrained residual net is
        the identity).

    Notes
    -----
    Input N×C×H×W float32 with H, W multiples of ``2**depth``; output
    N×out_channels×H×W. No normalisation layers, so the net is translation
    equivariant for shifts by ``2**depth`` (tiling is exact).
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 4, base: int = 16, depth: int = 3,
                 residual: bool = True) -> None:
        super().__init__()
        if depth < 1 or base < 1 or in_channels < 1 or out_channels < 1:
            raise ParameterError(f"UNet: depth, base and channel counts must be >= 1, got "
                             f"depth={depth}, base={base}, in={in_channels}, out={out_channels}")
        if residual and in_channels < out_channels:
            raise ParameterError(f"UNet: residual=True needs in_channels >= out_channels, got {in_channels} < {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.base, self.depth, self.residual = base, depth, residual
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        prev = in_channels
        for w in widths[:-1]:
            self.encoders.append(ConvBlock(prev, w))
            prev = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(widths[-2], widths[-1])
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(depth - 1, -1, -1):
            self.upsamplers.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.decoders.append(ConvBlock(2 * widths[i], widths[i]))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        if residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @property
    def size_multiple(self) -> int:
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for enc in self.encoders:
            h = enc(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottleneck(h)
        for up, dec, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            h = dec(torch.cat([up(h), skip], dim=1))
        out = self.head(h)
        if self.residual:
            out = out + x[:, : self.out_channels]
        return out
