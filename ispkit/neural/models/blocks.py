"""Building blocks shared by the zoo's networks, written once.

* :func:`check_input` — the shape check at the top of every ``forward``;
* :class:`HaarDWT` / :class:`HaarIDWT` and :func:`haar_filters` — the
  multi-level wavelet sampling of MWCNN (MW-ISPNet, Deep-FlexISP, MetaISP);
* :class:`ChannelAttention`, :class:`ResidualChannelAttentionBlock`,
  :class:`ResidualChannelAttentionGroup` — RCAN's residual channel attention;
* :class:`Mlp` — the transformers' Linear–GELU–Linear (HAT, MetaISP's XCiT).

Module attribute names follow the official releases, so a network built
from these blocks keeps the official ``state_dict`` keys.

References
----------
.. [1] Liu, P., Zhang, H., Lian, W., Zuo, W. "Multi-Level Wavelet
   Convolutional Neural Networks." IEEE Access 7, 2019.
.. [2] Zhang, Y., Li, K., Li, K., Wang, L., Zhong, B., Fu, Y. "Image
   Super-Resolution Using Very Deep Residual Channel Attention Networks."
   ECCV 2018.
.. [3] Dosovitskiy, A., et al. "An Image is Worth 16x16 Words." ICLR 2021 (the MLP block).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ispkit.errors import InputError, ParameterError

__all__ = [
    "check_input",
    "check_widths",
    "haar_filters",
    "HaarDWT",
    "HaarIDWT",
    "ChannelAttention",
    "ResidualChannelAttentionBlock",
    "ResidualChannelAttentionGroup",
    "add_wavelet_unet",
    "wavelet_unet_features",
    "Mlp",
]


def check_input(x: torch.Tensor, channels: int, multiple: int, model: str, min_size: int = 0) -> None:
    """Raise :class:`InputError` unless ``x`` is N×channels×H×W with H, W multiples of ``multiple``.

    Notes
    -----
    Called by every model in this package at the top of ``forward``; shapes
    are checked, values are not (a model is a pure function of its tensor).
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{model}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise InputError(
            f"{model}: expected an N×{channels}×H×W tensor, got shape {tuple(x.shape)}; "
            f"pack or convert the image to {channels} channels first"
        )
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h == 0 or w == 0 or h % multiple or w % multiple:
        raise InputError(
            f"{model}: height and width must be positive multiples of {multiple}, got {h}×{w}; "
            f"pad the input (e.g. reflect) to the next multiple of {multiple} and crop the output"
        )
    if h < min_size or w < min_size:
        raise InputError(
            f"{model}: height and width must be at least {min_size}, got {h}×{w}; "
            f"pad the input (e.g. reflect) to at least {min_size}×{min_size}"
        )


def haar_filters() -> torch.Tensor:
    """Return the 4×1×2×2 Haar analysis filters (LL, LH, HL, HH), flipped as in MWCNN.

    Notes
    -----
    Values ±0.5, so the transform is orthonormal and :class:`HaarIDWT` (a
    transposed convolution with the same filters) is its exact inverse.
    """
    ll = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    lh = torch.tensor([[-0.5, -0.5], [0.5, 0.5]])
    hl = torch.tensor([[-0.5, 0.5], [-0.5, 0.5]])
    hh = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])
    filters = torch.stack([ll, lh, hl, hh]).flip(-2, -1)
    return filters.unsqueeze(1).to(torch.get_default_dtype()).contiguous()


class HaarDWT(nn.Module):
    """Split each channel into its four Haar sub-bands at half resolution.

    Notes
    -----
    N×C×H×W (H, W even) → N×4C×H/2×W/2, sub-bands of channel ``c`` at
    ``4c … 4c+3`` in the order LL, LH, HL, HH. The filters are the
    persistent buffer ``weight`` (4×1×2×2), which the official checkpoints
    store; any float dtype works (the filters follow the input's dtype).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", haar_filters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = int(x.shape[1])  # a constant in traced graphs: ONNX needs a known kernel shape
        filters = self.weight.to(device=x.device, dtype=x.dtype).repeat(channels, 1, 1, 1)
        return F.conv2d(x, filters, stride=2, groups=channels)


class HaarIDWT(nn.Module):
    """Merge groups of four Haar sub-bands back into one channel at double resolution.

    Notes
    -----
    N×4C×H×W → N×C×2H×2W; exact inverse of :class:`HaarDWT`. The filters are
    the persistent buffer ``weight`` (4×1×2×2) and follow the input's dtype.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", haar_filters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 4:
            raise InputError(f"HaarIDWT: channel count must be a multiple of 4, got {x.shape[1]}")
        groups = int(x.shape[1]) // 4
        filters = self.weight.to(device=x.device, dtype=x.dtype).repeat(groups, 1, 1, 1)
        return F.conv_transpose2d(x, filters, stride=2, groups=groups)


class ChannelAttention(nn.Module):
    """Rescale channels by a squeeze-and-excitation gate (RCAN's CA layer).

    Notes
    -----
    N×C×H×W → N×C×H×W. State: ``conv_du.0`` (C→C/r, 1×1) and ``conv_du.2``
    (C/r→C, 1×1), both with bias.
    """

    def __init__(self, channels: int = 64, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, padding=0, bias=True),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, padding=0, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class ResidualChannelAttentionBlock(nn.Module):
    """Add conv-ReLU-conv features, gated by channel attention, to the input (RCAB).

    Notes
    -----
    N×C×H×W → N×C×H×W. State: ``res.0`` and ``res.2`` (3×3 convs with bias),
    ``CA.conv_du.{0,2}``.
    """

    def __init__(self, channels: int = 64, reduction: int = 16) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=True),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=True),
        )
        self.CA = ChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.CA(self.res(x)) + x


class ResidualChannelAttentionGroup(nn.Module):
    """Run ``num_blocks`` RCABs and a 3×3 conv, plus a long skip (RCAN's residual group).

    Notes
    -----
    N×C×H×W → N×C×H×W. State: ``rg.0 … rg.{num_blocks-1}`` (RCABs) and
    ``rg.{num_blocks}`` (the closing 3×3 conv).
    """

    def __init__(self, channels: int = 64, num_blocks: int = 20, reduction: int = 16) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            ResidualChannelAttentionBlock(channels, reduction) for _ in range(num_blocks)
        ]
        blocks.append(nn.Conv2d(channels, channels, 3, 1, 1, bias=True))
        self.rg = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rg(x) + x


def check_widths(model: str, channels: tuple[int, ...], num_blocks: int, reduction: int) -> None:
    if len(channels) != 3 or any(int(c) != c or c < 1 for c in channels):
        raise ParameterError(f"{model}: channels must be three positive ints, got {channels!r}")
    if int(num_blocks) != num_blocks or num_blocks < 0:
        raise ParameterError(f"{model}: num_blocks must be an int >= 0, got {num_blocks!r}")
    if int(reduction) != reduction or reduction < 1:
        raise ParameterError(f"{model}: reduction must be an int >= 1, got {reduction!r}")


def add_wavelet_unet(model: nn.Module, in_channels: int, out_channels: int, channels: tuple[int, int, int],
                     num_blocks: int, reduction: int) -> None:
    """Give ``model`` the three-level Haar-wavelet U-Net of MW-ISPNet and Deep-FlexISP's enhancer.

    Registers ``down1``–``down3``, ``middle`` and ``up1``–``up3`` on ``model``
    itself (the official state_dict keys): two Haar DWT levels down with
    residual channel-attention groups (``num_blocks`` RCABs each, channel
    ``reduction``), two groups in the middle, and back up through Haar IDWTs.
    ``up3`` maps to ``out_channels``; the caller adds its head and tail.
    """
    c1, c2, c3 = channels

    def group(c: int) -> ResidualChannelAttentionGroup:
        return ResidualChannelAttentionGroup(c, num_blocks, reduction)

    model.down1 = nn.Sequential(nn.Conv2d(in_channels, c1, 3, 1, 1), nn.PReLU(), group(c1))
    model.down2 = nn.Sequential(HaarDWT(), nn.Conv2d(c1 * 4, c2, 3, 1, 1), nn.PReLU(), group(c2))
    model.down3 = nn.Sequential(HaarDWT(), nn.Conv2d(c2 * 4, c3, 3, 1, 1), nn.PReLU())
    model.middle = nn.Sequential(group(c3), group(c3))
    model.up1 = nn.Sequential(nn.Conv2d(c3, c2 * 4, 3, 1, 1), nn.PReLU(), HaarIDWT())
    model.up2 = nn.Sequential(group(c2), nn.Conv2d(c2, c1 * 4, 3, 1, 1), nn.PReLU(), HaarIDWT())
    model.up3 = nn.Sequential(group(c1), nn.Conv2d(c1, out_channels, 3, 1, 1))


def wavelet_unet_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The U-Net of :func:`add_wavelet_unet` up to ``up3``'s input (skips added at both decoder levels)."""
    c2 = model.down1(x)
    c3 = model.down2(c2)
    m = model.middle(model.down3(c3))
    c5 = model.up1(m) + c3
    return model.up2(c5) + c2


class Mlp(nn.Module):
    """Apply Linear → GELU → Linear over the last axis (state: ``fc1``, ``fc2``; timm's ``Mlp``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
