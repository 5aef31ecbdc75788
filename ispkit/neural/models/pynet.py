"""PyNET: the inverted-pyramid RAW-to-RGB network of Ignatov, Van Gool and Timofte (2020).

PyNET processes a packed Bayer image at five scales; each level refines the
upsampled features of the level below it, and level 0 adds one upsampling
convolution that brings the output to the full sensor resolution (twice the
packed resolution). Module names and shapes follow the official PyTorch
release (``aiff22/PyNET-PyTorch``, ``model.py``): the model always holds the
modules of every level, so the level-0 checkpoint
(``models/original/pynet_level_0.pth``, saved from ``torch.nn.DataParallel``)
loads with ``strict=True`` once the ``module.`` prefix is stripped.

References
----------
.. [1] Ignatov, A., Van Gool, L., Timofte, R. "Replacing Mobile Camera ISP
   with a Single Deep Learning Model." CVPR Workshops, 2020.
   arXiv:2002.05509.
"""

from __future__ import annotations

import torch
from torch import nn

from ispkit.errors import ParameterError
from ispkit.neural.models.blocks import check_input

__all__ = ["ConvLayer", "UpsampleConvLayer", "ConvMultiBlock", "PyNET"]


class ConvLayer(nn.Module):
    """Convolve after reflection padding, then optionally instance-normalise and LeakyReLU(0.2).

    Notes
    -----
    N×Cin×H×W → N×Cout×H×W ("same" size for odd kernels). State:
    ``conv2d.weight``, ``conv2d.bias`` and, with ``instance_norm``,
    ``instance.weight``, ``instance.bias`` (affine, no running statistics).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        relu: bool = True,
        instance_norm: bool = False,
    ) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)
        self.instance = nn.InstanceNorm2d(out_channels, affine=True) if instance_norm else None
        self.relu = nn.LeakyReLU(0.2) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(self.reflection_pad(x))
        if self.instance is not None:
            out = self.instance(out)
        if self.relu is not None:
            out = self.relu(out)
        return out


class UpsampleConvLayer(nn.Module):
    """Upsample ×2 bilinearly (align_corners=True), then reflection-pad, convolve and LeakyReLU(0.2).

    Notes
    -----
    N×Cin×H×W → N×Cout×2H×2W. State: ``conv2d.weight``, ``conv2d.bias``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, upsample: int = 2) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=upsample, mode="bilinear", align_corners=True)
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, 1)
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2d(self.reflection_pad(self.upsample(x))))


class ConvMultiBlock(nn.Module):
    """Run parallel two-layer conv branches of kernel 3, 5, … up to ``max_conv_size`` and concatenate them.

    Notes
    -----
    N×Cin×H×W → N×(k·Cout)×H×W with k = number of branches (1 to 4 for
    ``max_conv_size`` 3, 5, 7, 9). State: ``conv_{s}a`` and ``conv_{s}b``
    (:class:`ConvLayer`) for each kernel size ``s``.
    """

    def __init__(self, in_channels: int, out_channels: int, max_conv_size: int, instance_norm: bool) -> None:
        super().__init__()
        self.max_conv_size = max_conv_size
        self.sizes = tuple(s for s in (3, 5, 7, 9) if s <= max_conv_size)
        for s in self.sizes:
            setattr(self, f"conv_{s}a", ConvLayer(in_channels, out_channels, s, instance_norm=instance_norm))
            setattr(self, f"conv_{s}b", ConvLayer(out_channels, out_channels, s, instance_norm=instance_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [getattr(self, f"conv_{s}b")(getattr(self, f"conv_{s}a")(x)) for s in self.sizes]
        return branches[0] if len(branches) == 1 else torch.cat(branches, 1)


class PyNET(nn.Module):
    """Map a packed 4-channel RAW image to sRGB with the PyNET pyramid, output taken at ``level``.

    Parameters
    ----------
    level : int
        Pyramid level whose output is returned, 0 (full model, output at
        twice the packed resolution) to 5 (1/16 of the packed resolution).
        Every level's modules exist whatever the level, as in the official
        code.
    instance_norm : bool
        Instance normalisation in levels 2–5. Official: True.
    instance_norm_level_1 : bool
        Instance normalisation in level 1. The official training and test
        scripts (and the released checkpoint) use True.
    width : int
        Base width (channels of level 1); the levels below use 2, 4, 8 and
        16 times it and level 0 half of it. Official: 32. Must be even.

    Notes
    -----
    Input N×4×H×W float, H and W multiples of 16 (four 2×2 max pools) and
    at least 32 (the reflection padding of level 5 needs 2×2 there): the
    Zurich RAW-to-RGB (Huawei P20) Bayer planes in the order of the mosaic
    positions (1,1), (0,1), (0,0), (1,0) — B, G, R, G of the RGGB sensor —
    as ``raw / 1020`` (no black-level subtraction). Output N×3×(2H/2^level)
    ×(2W/2^level) display-referred sRGB in (0, 1) (sigmoid). Official
    configuration: 542 keys, 47 554 738 parameters.

    References
    ----------
    .. [1] Ignatov, Van Gool, Timofte, "Replacing Mobile Camera ISP with a
       Single Deep Learning Model", CVPRW 2020.
    """

    size_multiple = 16
    min_size = 32

    def __init__(
        self,
        level: int = 0,
        instance_norm: bool = True,
        instance_norm_level_1: bool = True,
        width: int = 32,
    ) -> None:
        super().__init__()
        if int(level) != level or not 0 <= level <= 5:
            raise ParameterError(f"PyNET: level must be an int in 0..5, got {level!r}")
        if int(width) != width or width < 2 or width % 2:
            raise ParameterError(f"PyNET: width must be an even int >= 2, got {width!r}")
        self.level = int(level)
        w = int(width)
        norm = bool(instance_norm)
        norm1 = bool(instance_norm_level_1)

        self.conv_l1_d1 = ConvMultiBlock(4, w, 3, instance_norm=False)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv_l2_d1 = ConvMultiBlock(w, 2 * w, 3, instance_norm=norm)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv_l3_d1 = ConvMultiBlock(2 * w, 4 * w, 3, instance_norm=norm)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.conv_l4_d1 = ConvMultiBlock(4 * w, 8 * w, 3, instance_norm=norm)
        self.pool4 = nn.MaxPool2d(2, 2)

        # level 5
        self.conv_l5_d1 = ConvMultiBlock(8 * w, 16 * w, 3, instance_norm=norm)
        self.conv_l5_d2 = ConvMultiBlock(16 * w, 16 * w, 3, instance_norm=norm)
        self.conv_l5_d3 = ConvMultiBlock(16 * w, 16 * w, 3, instance_norm=norm)
        self.conv_l5_d4 = ConvMultiBlock(16 * w, 16 * w, 3, instance_norm=norm)
        self.conv_t4a = UpsampleConvLayer(16 * w, 8 * w, 3)
        self.conv_t4b = UpsampleConvLayer(16 * w, 8 * w, 3)
        self.conv_l5_out = ConvLayer(16 * w, 3, kernel_size=3, stride=1, relu=False)
        self.output_l5 = nn.Sigmoid()

        # level 4
        self.conv_l4_d3 = ConvMultiBlock(16 * w, 8 * w, 3, instance_norm=norm)
        self.conv_l4_d4 = ConvMultiBlock(8 * w, 8 * w, 3, instance_norm=norm)
        self.conv_l4_d5 = ConvMultiBlock(8 * w, 8 * w, 3, instance_norm=norm)
        self.conv_l4_d6 = ConvMultiBlock(8 * w, 8 * w, 3, instance_norm=norm)
        self.conv_l4_d8 = ConvMultiBlock(16 * w, 8 * w, 3, instance_norm=norm)
        self.conv_t3a = UpsampleConvLayer(8 * w, 4 * w, 3)
        self.conv_t3b = UpsampleConvLayer(8 * w, 4 * w, 3)
        self.conv_l4_out = ConvLayer(8 * w, 3, kernel_size=3, stride=1, relu=False)
        self.output_l4 = nn.Sigmoid()

        # level 3
        self.conv_l3_d3 = ConvMultiBlock(8 * w, 4 * w, 5, instance_norm=norm)
        self.conv_l3_d4 = ConvMultiBlock(8 * w, 4 * w, 5, instance_norm=norm)
        self.conv_l3_d5 = ConvMultiBlock(8 * w, 4 * w, 5, instance_norm=norm)
        self.conv_l3_d6 = ConvMultiBlock(8 * w, 4 * w, 5, instance_norm=norm)
        self.conv_l3_d8 = ConvMultiBlock(16 * w, 4 * w, 3, instance_norm=norm)
        self.conv_t2a = UpsampleConvLayer(4 * w, 2 * w, 3)
        self.conv_t2b = UpsampleConvLayer(4 * w, 2 * w, 3)
        self.conv_l3_out = ConvLayer(4 * w, 3, kernel_size=3, stride=1, relu=False)
        self.output_l3 = nn.Sigmoid()

        # level 2
        self.conv_l2_d3 = ConvMultiBlock(4 * w, 2 * w, 5, instance_norm=norm)
        self.conv_l2_d5 = ConvMultiBlock(6 * w, 2 * w, 7, instance_norm=norm)
        self.conv_l2_d6 = ConvMultiBlock(6 * w, 2 * w, 7, instance_norm=norm)
        self.conv_l2_d7 = ConvMultiBlock(6 * w, 2 * w, 7, instance_norm=norm)
        self.conv_l2_d8 = ConvMultiBlock(6 * w, 2 * w, 7, instance_norm=norm)
        self.conv_l2_d10 = ConvMultiBlock(8 * w, 2 * w, 5, instance_norm=norm)
        self.conv_l2_d12 = ConvMultiBlock(6 * w, 2 * w, 3, instance_norm=norm)
        self.conv_t1a = UpsampleConvLayer(2 * w, w, 3)
        self.conv_t1b = UpsampleConvLayer(2 * w, w, 3)
        self.conv_l2_out = ConvLayer(2 * w, 3, kernel_size=3, stride=1, relu=False)
        self.output_l2 = nn.Sigmoid()

        # level 1
        self.conv_l1_d3 = ConvMultiBlock(2 * w, w, 5, instance_norm=False)
        self.conv_l1_d5 = ConvMultiBlock(3 * w, w, 7, instance_norm=norm1)
        self.conv_l1_d6 = ConvMultiBlock(3 * w, w, 9, instance_norm=norm1)
        self.conv_l1_d7 = ConvMultiBlock(4 * w, w, 9, instance_norm=norm1)
        self.conv_l1_d8 = ConvMultiBlock(4 * w, w, 9, instance_norm=norm1)
        self.conv_l1_d9 = ConvMultiBlock(4 * w, w, 9, instance_norm=norm1)
        self.conv_l1_d10 = ConvMultiBlock(4 * w, w, 7, instance_norm=norm1)
        self.conv_l1_d12 = ConvMultiBlock(4 * w, w, 5, instance_norm=norm1)
        self.conv_l1_d14 = ConvMultiBlock(4 * w, w, 3, instance_norm=False)
        self.conv_l1_out = ConvLayer(w, 3, kernel_size=3, stride=1, relu=False)
        self.output_l1 = nn.Sigmoid()
        self.conv_t0 = UpsampleConvLayer(w, w // 2, 3)

        # level 0
        self.conv_l0_d1 = ConvLayer(w // 2, 3, kernel_size=3, stride=1, relu=False)
        self.output_l0 = nn.Sigmoid()

    @property
    def scale(self) -> float:
        """Output size over input size: 2 at level 0, halving per level."""
        return 2.0 ** (1 - self.level)

    def level_5(self, pool4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.conv_l5_d4(self.conv_l5_d3(self.conv_l5_d2(self.conv_l5_d1(pool4))))
        return self.output_l5(self.conv_l5_out(d)), self.conv_t4a(d), self.conv_t4b(d)

    def level_4(
        self, d1: torch.Tensor, t4a: torch.Tensor, t4b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d3 = self.conv_l4_d3(torch.cat([d1, t4a], 1))
        d4 = self.conv_l4_d4(d3) + d3
        d5 = self.conv_l4_d5(d4) + d4
        d6 = self.conv_l4_d6(d5)
        d8 = self.conv_l4_d8(torch.cat([d6, t4b], 1))
        return self.output_l4(self.conv_l4_out(d8)), self.conv_t3a(d8), self.conv_t3b(d8)

    def level_3(
        self, d1: torch.Tensor, t3a: torch.Tensor, t3b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d2 = torch.cat([d1, t3a], 1)
        d3 = self.conv_l3_d3(d2) + d2
        d4 = self.conv_l3_d4(d3) + d3
        d5 = self.conv_l3_d5(d4) + d4
        d6 = self.conv_l3_d6(d5)
        d8 = self.conv_l3_d8(torch.cat([d6, d1, t3b], 1))
        return self.output_l3(self.conv_l3_out(d8)), self.conv_t2a(d8), self.conv_t2b(d8)

    def level_2(
        self, d1: torch.Tensor, t2a: torch.Tensor, t2b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d3 = self.conv_l2_d3(torch.cat([d1, t2a], 1))
        d4 = torch.cat([d3, d1], 1)
        d5 = self.conv_l2_d5(d4) + d4
        d6 = self.conv_l2_d6(d5) + d5
        d7 = self.conv_l2_d7(d6) + d6
        d8 = self.conv_l2_d8(d7)
        d10 = self.conv_l2_d10(torch.cat([d8, d1], 1))
        d12 = self.conv_l2_d12(torch.cat([d10, t2b], 1))
        return self.output_l2(self.conv_l2_out(d12)), self.conv_t1a(d12), self.conv_t1b(d12)

    def level_1(self, d1: torch.Tensor, t1a: torch.Tensor, t1b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d3 = self.conv_l1_d3(torch.cat([d1, t1a], 1))
        d5 = self.conv_l1_d5(torch.cat([d3, d1], 1))
        d6 = self.conv_l1_d6(d5)
        d7 = self.conv_l1_d7(d6) + d6
        d8 = self.conv_l1_d8(d7) + d7
        d9 = self.conv_l1_d9(d8) + d8
        d10 = self.conv_l1_d10(d9)
        d12 = self.conv_l1_d12(torch.cat([d10, d1], 1))
        d14 = self.conv_l1_d14(torch.cat([d12, t1b, d1], 1))
        return self.output_l1(self.conv_l1_out(d14)), self.conv_t0(d14)

    def level_0(self, t0: torch.Tensor) -> torch.Tensor:
        return self.output_l0(self.conv_l0_d1(t0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 4, self.size_multiple, "PyNET", min_size=self.min_size)
        l1_d1 = self.conv_l1_d1(x)
        l2_d1 = self.conv_l2_d1(self.pool1(l1_d1))
        l3_d1 = self.conv_l3_d1(self.pool2(l2_d1))
        l4_d1 = self.conv_l4_d1(self.pool3(l3_d1))
        out, ta, tb = self.level_5(self.pool4(l4_d1))
        if self.level == 5:
            return out
        out, ta, tb = self.level_4(l4_d1, ta, tb)
        if self.level == 4:
            return out
        out, ta, tb = self.level_3(l3_d1, ta, tb)
        if self.level == 3:
            return out
        out, ta, tb = self.level_2(l2_d1, ta, tb)
        if self.level == 2:
            return out
        out, t0 = self.level_1(l1_d1, ta, tb)
        if self.level == 1:
            return out
        return self.level_0(t0)
