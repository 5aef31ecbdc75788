"""MW-ISPNet (MWRCAN): the multi-level wavelet residual channel-attention ISP network.

The winner of the AIM 2020 learned smartphone ISP challenge (fidelity track).
A U-Net whose down- and up-sampling are Haar wavelet transforms (DWT / IDWT)
and whose stages are residual channel-attention groups (RCAN). The layout of
every module below follows the official release (``cszhilu1998/MW-ISPNet``,
``Code_Track1_Fidelity/networks.py`` and ``mwcnn_model.py``) so that the
official checkpoint loads with ``strict=True`` once the ``module.`` prefix of
``torch.nn.DataParallel`` is stripped.

The building blocks (:class:`~ispkit.neural.models.blocks.HaarDWT`,
:class:`~ispkit.neural.models.blocks.HaarIDWT`,
:class:`~ispkit.neural.models.blocks.ResidualChannelAttentionGroup`) live in
:mod:`ispkit.neural.models.blocks`, shared with Deep-FlexISP and MetaISP.

References
----------
.. [1] Ignatov, A., Timofte, R., et al. "AIM 2020 Challenge on Learned Image
   Signal Processing Pipeline." ECCV Workshops, 2020. arXiv:2011.04994.
.. [2] Zhang, Y., Li, K., Li, K., Wang, L., Zhong, B., Fu, Y. "Image
   Super-Resolution Using Very Deep Residual Channel Attention Networks."
   ECCV 2018.
.. [3] Liu, P., Zhang, H., Lian, W., Zuo, W. "Multi-Level Wavelet
   Convolutional Neural Networks." IEEE Access 7, 2019.
"""

from __future__ import annotations

import torch
from torch import nn


from .blocks import (ChannelAttention, HaarDWT, HaarIDWT, ResidualChannelAttentionBlock,  # noqa: F401  (re-exported)
                     ResidualChannelAttentionGroup, add_wavelet_unet, check_input, check_widths,
                     wavelet_unet_features)

__all__ = [
    "HaarDWT",
    "HaarIDWT",
    "ChannelAttention",
    "ResidualChannelAttentionBlock",
    "ResidualChannelAttentionGroup",
    "MWISPNet",
    "check_input",
]


class MWISPNet(nn.Module):
    """Map a packed 4-channel RAW image to an sRGB image at twice its resolution (MW-ISPNet).

    Parameters
    ----------
    channels : tuple of int
        Widths (c1, c2, c3) of the three wavelet levels. Official: (64, 128, 128).
    num_blocks : int
        RCABs per residual group. Official: 20.
    reduction : int
        Channel-attention reduction ratio. Official: 16.

    Notes
    -----
    Input N×4×H×W float, H and W multiples of 8 (three Haar levels); the
    official model takes the Zurich RAW-to-RGB (Huawei P20) Bayer planes in
    the order of the mosaic positions (1,1), (0,1), (0,0), (1,0) — B, G, R, G
    of the RGGB sensor — as ``max(raw - 63, 0) / (1020 - 63)``. Output
    N×3×2H×2W display-referred sRGB, nominally [0, 1] (not clamped).
    With the official widths the state dict has 997 keys holding 29 219 345
    numbers: 29 219 249 trainable parameters plus the six fixed 4×1×2×2
    Haar filter buffers.

    References
    ----------
    .. [1] Ignatov et al., "AIM 2020 Challenge on Learned Image Signal
       Processing Pipeline", ECCVW 2020 (team MW-ISPNet, Zhang et al.).
    """

    size_multiple = 8
    scale = 2

    def __init__(
        self,
        channels: tuple[int, int, int] = (64, 128, 128),
        num_blocks: int = 20,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        channels = tuple(channels)
        check_widths("MWISPNet", channels, num_blocks, reduction)
        self.head = HaarDWT()
        add_wavelet_unet(self, 4 * 4, 16, channels, num_blocks, reduction)
        self.tail = nn.Sequential(HaarIDWT(), nn.Conv2d(4, 12, 3, 1, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 4, self.size_multiple, "MWISPNet")
        c1 = self.head(x)
        return self.tail(self.up3(wavelet_unet_features(self, c1)) + c1)
