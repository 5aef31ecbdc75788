"""Deep-FlexISP networks: the Bayer-domain denoiser and the NTIRE 2023 RGB enhancer.

Deep-FlexISP (Xiaomi, NTIRE 2022 night photography rendering winner) splits
the ISP into RAW denoising, white balance and RAW→sRGB mapping. Two of its
networks live here, with module names and shapes that follow the official
repository (``q935970314/Deep-FlexISP``) so that its checkpoints load with
``strict=True``:

* :class:`DeepFlexISPRawDenoiser` — ``sc_net_1f``, a two-level residual
  U-Net without biases on packed RAW (``Night_Photography_2024/
  network_raw_denoise.py``). It predicts a *residual*: the official
  pipeline adds it to the (unclipped) input and clips to [0, 1].
* :class:`DeepFlexISPEnhancer` — the "NEW Deep-FlexISP" (NTIRE 2023)
  refinement network, an MWRCAN variant that takes a rendered RGB image
  and returns it enhanced at a quarter of the resolution
  (``NightRender2023/stage4/network.py``); the official pipeline then
  upsamples ×4 with HAT.

References
----------
.. [1] Liu, S., Feng, C., Wang, X., Wang, H., Zhu, R., Li, Y., Lei, L.
   "Deep-FlexISP: A Three-Stage Framework for Night Photography Rendering."
   CVPR Workshops, 2022, pp. 1211-1220.
.. [2] Shutova, A., Ershov, E., et al. "NTIRE 2023 Challenge on Night
   Photography Rendering." CVPR Workshops, 2023.
"""

from __future__ import annotations

import torch
from torch import nn

from ispkit.errors import ParameterError
from ispkit.neural.models.blocks import (
    HaarDWT,
    HaarIDWT,
    add_wavelet_unet,
    check_input,
    check_widths,
    wavelet_unet_features,
)

__all__ = ["DeepFlexISPRawDenoiser", "DeepFlexISPEnhancer"]


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=False)


def _deconv2(c: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c, c, kernel_size=2, stride=2, padding=0, bias=False)


class DeepFlexISPRawDenoiser(nn.Module):
    """Predict the noise-removing residual of a packed RAW image (Deep-FlexISP ``sc_net_1f``).

    Parameters
    ----------
    channels : int
        Feature width of every layer. Official: 64.

    Notes
    -----
    Input N×4×H×W float, H and W multiples of 4 (two 2×2 average pools):
    black-level-subtracted RAW normalised to [0, 1], planes R, G, B, G at
    the offsets of the authors' ``bayer_to_offsets`` (for RGGB: R, Gr, B,
    Gb), and clipped to ``max(3 * mean, 0.9)`` before the call. Output
    N×4×H×W residual; the denoised RAW is ``clip(input + output, 0, 1)``
    with the unclipped input. Official width: 17 keys, 516 608 parameters,
    all convolutions without bias.

    References
    ----------
    .. [1] Liu et al., "Deep-FlexISP: A Three-Stage Framework for Night
       Photography Rendering", CVPRW 2022.
    """

    size_multiple = 4
    scale = 1

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        if int(channels) != channels or channels < 1:
            raise ParameterError(f"DeepFlexISPRawDenoiser: channels must be an int >= 1, got {channels!r}")
        c = int(channels)
        self.conv1_1 = _conv3(4, c)
        self.res_conv1_1 = _conv3(c, c)
        self.res_conv1_2 = _conv3(c, c)

        self.pool2 = nn.AvgPool2d(2)
        self.res_conv2_1 = _conv3(c, c)
        self.res_conv2_2 = _conv3(c, c)

        self.pool3 = nn.AvgPool2d(2)
        self.res_conv3_1 = _conv3(c, c)
        self.res_conv3_2 = _conv3(c, c)

        self.deconv1 = _deconv2(c)

        self.conv4_1 = _conv3(c, c)
        self.res_conv4_1 = _conv3(c, c)
        self.res_conv4_2 = _conv3(c, c)

        self.deconv2 = _deconv2(c)

        self.conv5_1 = _conv3(c, c)
        self.res_conv5_1 = _conv3(c, c)
        self.res_conv5_2 = _conv3(c, c)

        self.conv6_1 = _conv3(c, c)
        self.conv7_1 = _conv3(c, 4)
        self.relu = nn.ReLU()

    def _residual_stage(self, x: torch.Tensor, first: nn.Module, second: nn.Module) -> torch.Tensor:
        return x + self.relu(second(self.relu(first(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 4, self.size_multiple, "DeepFlexISPRawDenoiser")
        relu = self.relu
        conv1 = relu(self.conv1_1(x))
        block1 = self._residual_stage(conv1, self.res_conv1_1, self.res_conv1_2)

        pool2 = self.pool2(block1)
        block2 = self._residual_stage(pool2, self.res_conv2_1, self.res_conv2_2)

        pool3 = self.pool3(block2)
        block3 = self._residual_stage(pool3, self.res_conv3_1, self.res_conv3_2)

        up1 = self.deconv1(block3) + block2
        conv4 = relu(self.conv4_1(up1))
        block4 = self._residual_stage(conv4, self.res_conv4_1, self.res_conv4_2)

        up2 = self.deconv2(block4) + block1
        conv5 = relu(self.conv5_1(up2))
        block5 = self._residual_stage(conv5, self.res_conv5_1, self.res_conv5_2)

        conv6 = relu(self.conv6_1(block5))
        return self.conv7_1(conv6)


class DeepFlexISPEnhancer(nn.Module):
    """Refine a rendered RGB image and return it at a quarter of its resolution (NEW Deep-FlexISP).

    Parameters
    ----------
    channels : tuple of int
        Widths (c1, c2, c3) of the three wavelet levels. Official: (64, 96, 128).
    num_blocks : int
        RCABs per residual group. Official: 20.
    reduction : int
        Channel-attention reduction ratio. Official: 16.

    Notes
    -----
    Input N×3×H×W float in [0, 1], H and W multiples of 32 (2×2 average
    pool, pixel-unshuffle and three Haar levels); the official pipeline
    feeds a display-referred image (fixed tone curve, then ``x ** (1/3.2)``)
    in **BGR** channel order and pads by reflection to the multiple. Output
    N×3×H/4×W/4 in the same order, nominally [0, 1] (not clamped).
    Head: 2×2 average pool → pixel-unshuffle ×2 → Haar DWT (48 channels);
    unlike MW-ISPNet there is no skip around ``up3``. Official widths: 995
    keys, 23 462 689 numbers (23 462 593 trainable parameters plus six
    fixed 4×1×2×2 Haar filter buffers).

    References
    ----------
    .. [1] Liu et al., "Deep-FlexISP", CVPRW 2022; NTIRE 2023 Night
       Photography Rendering challenge report (team MIALGO).
    """

    size_multiple = 32
    scale = 0.25

    def __init__(
        self,
        channels: tuple[int, int, int] = (64, 96, 128),
        num_blocks: int = 20,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        channels = tuple(channels)
        check_widths("DeepFlexISPEnhancer", channels, num_blocks, reduction)
        self.head = nn.Sequential(nn.AvgPool2d(2), nn.PixelUnshuffle(2), HaarDWT())
        add_wavelet_unet(self, 48, 12, channels, num_blocks, reduction)
        self.tail = HaarIDWT()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 3, self.size_multiple, "DeepFlexISPEnhancer")
        return self.tail(self.up3(wavelet_unet_features(self, self.head(x))))
