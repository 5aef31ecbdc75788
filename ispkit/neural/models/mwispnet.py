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
                     ResidualChannelAttentionGroup, check_input, check_widths)

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
        c1, c2, c3 = channels

        def group(c: int) -> ResidualChannelAttentionGroup:
            return ResidualChannelAttentionGroup(c, num_blocks, reduction)

        self.head = HaarDWT()
        self.down1 = nn.Sequential(nn.Conv2d(4 * 4, c1, 3, 1, 1), nn.PReLU(), group(c1))
        self.down2 = nn.Sequential(HaarDWT(), nn.Conv2d(c1 * 4, c2, 3, 1, 1), nn.PReLU(), group(c2))
        self.down3 = nn.Sequential(HaarDWT(), nn.Conv2d(c2 * 4, c3, 3, 1, 1), nn.PReLU())
        self.middle = nn.Sequential(group(c3), group(c3))
        self.up1 = nn.Sequential(nn.Conv2d(c3, c2 * 4, 3, 1, 1), nn.PReLU(), HaarIDWT())
        self.up2 = nn.Sequential(group(c2), nn.Conv2d(c2, c1 * 4, 3, 1, 1), nn.PReLU(), HaarIDWT())
        self.up3 = nn.Sequential(group(c1), nn.Conv2d(c1, 16, 3, 1, 1))
        self.tail = nn.Sequential(HaarIDWT(), nn.Conv2d(4, 12, 3, 1, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 4, self.size_multiple, "MWISPNet")
        c1 = self.head(x)
        c2 = self.down1(c1)
        c3 = self.down2(c2)
        c4 = self.down3(c3)
        m = self.middle(c4)
        c5 = self.up1(m) + c3
        c6 = self.up2(c5) + c2
        c7 = self.up3(c6) + c1
        return self.tail(c7)
