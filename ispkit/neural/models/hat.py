"""HAT: the Hybrid Attention Transformer for single-image super-resolution.

A SwinIR-style network whose blocks mix (shifted) window self-attention with
a channel-attention convolution branch (HAB), and whose residual groups end
with an overlapping cross-attention block (OCAB) that lets each window attend
to a larger, overlapping neighbourhood. Every module below keeps the
parameter and buffer names of the official release (``XPixelGroup/HAT``,
``hat/archs/hat_arch.py``), so the official ``.pth`` files (BasicSR
checkpoints, weights under ``params_ema``) load with ``strict=True``.

What differs from the official code, none of it visible in the state dict:

* ``forward`` pads the input by reflection to a multiple of the window size
  (as the official ``HATModel.test`` does outside the network) and crops the
  output, so any input size works.
* Attention runs through ``torch.nn.functional.scaled_dot_product_attention``
  and the shifted-window mask is never materialised for the whole image: only
  the windows of the last window row and column need one, and they share
  three ``window²×window²`` patterns (computed on the input's device and in
  its dtype). The result equals the official masked softmax attention.
* Tokens travel as N×H×W×C tensors instead of N×(H·W)×C — the same memory
  order, so the patch (un)embedding is a permutation.
* ``img_size``, ``patch_size``, ``ape`` and ``upsampler`` are not arguments:
  every released model uses ``img_size=64`` (larger than the window, so the
  window is never shrunk), ``patch_size=1``, no absolute position embedding
  and the ``"pixelshuffle"`` upsampler.

References
----------
.. [1] Chen, X., Wang, X., Zhou, J., Qiao, Y., Dong, C. "Activating More
   Pixels in Image Super-Resolution Transformer." CVPR 2023.
   arXiv:2205.04437.
.. [2] Liang, J., Cao, J., Sun, G., Zhang, K., Van Gool, L., Timofte, R.
   "SwinIR: Image Restoration Using Swin Transformer." ICCV Workshops 2021.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ispkit.errors import ParameterError

from .blocks import Mlp, check_input

__all__ = [
    "HAT",
    "HybridAttentionBlock",
    "OverlappingCrossAttentionBlock",
    "ResidualHybridAttentionGroup",
    "WindowAttention",
    "ChannelAttentionBlock",
    "relative_position_index_sa",
    "relative_position_index_oca",
    "shift_mask_patterns",
    "DIV2K_RGB_MEAN",
    "SHIFT_MASK_VALUE",
]

#: The mean RGB of DIV2K that the official network subtracts from its input.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

#: The logit added between tokens that a cyclic shift brought together
#: (the official code uses -100, not -inf).
SHIFT_MASK_VALUE = -100.0


# -- index tables and masks ----------------------------------------------------------
def _grid(size: int) -> torch.Tensor:
    """Return the 2×size² (row, column) coordinates of a size×size window, row-major."""
    r = torch.arange(size)
    return torch.stack(torch.meshgrid(r, r, indexing="ij")).flatten(1)


def relative_position_index_sa(window_size: int) -> torch.Tensor:
    """Return the relative-position bias index of every (query, key) pair in a window.

    Notes
    -----
    Returns a window²×window² int64 tensor with values in
    [0, (2·window−1)²): (Δrow + window − 1)·(2·window − 1) + Δcol + window − 1,
    Δ = query − key. The official checkpoints store it as
    ``relative_position_index_SA``.
    """
    c = _grid(window_size)
    rel = c[:, :, None] - c[:, None, :]
    return (rel[0] + window_size - 1) * (2 * window_size - 1) + (rel[1] + window_size - 1)


def relative_position_index_oca(window_size: int, overlap_ratio: float) -> torch.Tensor:
    """Return the relative-position bias index of OCAB (window queries, enlarged-window keys).

    Notes
    -----
    Returns a window²×ext² int64 tensor, ext = window + int(overlap_ratio·window),
    following the official formula exactly: with Δ = key − query (each in its
    own window's coordinates), index = (Δrow + window − ext + 1)·(window + ext − 1)
    + Δcol + window − ext + 1. Some values are negative; they wrap modulo the
    (window + ext − 1)² entries of the bias table (Python/PyTorch negative
    indexing), which is how the official network reads them. Stored as
    ``relative_position_index_OCA``.
    """
    ext = window_size + int(overlap_ratio * window_size)
    ori_c, ext_c = _grid(window_size), _grid(ext)
    rel = ext_c[:, None, :] - ori_c[:, :, None]
    shift = window_size - ext + 1
    return (rel[0] + shift) * (window_size + ext - 1) + (rel[1] + shift)


def shift_mask_patterns(window_size: int, shift: int, *, device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return the three attention masks of shifted windows: last window row, last column, corner.

    Notes
    -----
    Returns a 3×window²×window² tensor of 0 and :data:`SHIFT_MASK_VALUE`.
    After the cyclic shift by ``-shift``, a window of the last window row
    holds rows from two image regions (its first ``window − shift`` rows and
    its last ``shift`` rows), a window of the last column two column regions,
    and the corner window four; tokens from different regions must not
    attend to each other. Every other window is all one region (mask 0).
    This reproduces the official ``calculate_mask`` window by window.
    """
    idx = torch.arange(window_size, device=device)
    part = (idx >= window_size - shift).long()
    rows = part[:, None].expand(window_size, window_size).reshape(-1)
    cols = part[None, :].expand(window_size, window_size).reshape(-1)
    labels = torch.stack([rows, cols, 2 * rows + cols])
    differ = labels[:, :, None] != labels[:, None, :]
    zero = torch.zeros((), device=device, dtype=dtype)
    return torch.where(differ, torch.full((), SHIFT_MASK_VALUE, device=device, dtype=dtype), zero)


def _gather_bias(table: torch.Tensor, index: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Gather the heads×rows×cols bias from an entries×heads table by a rows×cols index (negatives wrap)."""
    idx = torch.remainder(index.reshape(-1), table.shape[0])
    return table[idx].reshape(rows, cols, -1).permute(2, 0, 1)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
            scale: float) -> torch.Tensor:
    """Compute softmax(scale·q·kᵀ + bias)·v over the last two dims, for any leading batch dims."""
    lead = q.shape[:-3]
    heads, n, d = q.shape[-3:]
    if q.numel() == 0:
        return q.new_empty(q.shape)
    out = F.scaled_dot_product_attention(
        q.reshape(-1, heads, n, d), k.reshape(-1, heads, k.shape[-2], d), v.reshape(-1, heads, v.shape[-2], d),
        attn_mask=bias.to(q.dtype).unsqueeze(0), scale=scale,
    )
    return out.reshape(*lead, heads, n, d)


def _partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """Split N×H×W×C tokens into N×(H/ws)×(W/ws)×ws²×C windows, row-major inside each window."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // ws, w // ws, ws * ws, c)


def _merge(windows: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Reassemble windows into N×H×W×C tokens (the inverse of :func:`_partition`)."""
    b, nh, nw, n, c = windows.shape
    ws = h // nh
    x = windows.reshape(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


# -- building blocks -----------------------------------------------------------------
class _ChannelAttention(nn.Module):
    """Gate channels by a squeeze-and-excitation branch (state: ``attention.1``, ``attention.3``)."""

    def __init__(self, channels: int, squeeze_factor: int) -> None:
        super().__init__()
        hidden = channels // squeeze_factor
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1, padding=0),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class ChannelAttentionBlock(nn.Module):
    """Compute HAB's convolution branch: conv 3×3 → GELU → conv 3×3 → channel attention (CAB).

    Notes
    -----
    N×C×H×W → N×C×H×W. State: ``cab.0`` (C→C/compress_ratio, 3×3),
    ``cab.2`` (back to C, 3×3), ``cab.3.attention.1`` (C→C/squeeze_factor, 1×1)
    and ``cab.3.attention.3`` (back to C, 1×1), all with bias.
    """

    def __init__(self, channels: int, compress_ratio: int = 3, squeeze_factor: int = 30) -> None:
        super().__init__()
        mid = channels // compress_ratio
        self.cab = nn.Sequential(
            nn.Conv2d(channels, mid, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(mid, channels, 3, 1, 1),
            _ChannelAttention(channels, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)


class _DropPath(nn.Module):
    """Drop whole residual branches per sample while training (stochastic depth)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * torch.bernoulli(torch.full(shape, keep, device=x.device, dtype=x.dtype)) / keep


class WindowAttention(nn.Module):
    """Attend within (shifted) windows: multi-head self-attention with a relative-position bias.

    Notes
    -----
    N×nh×nw×window²×C windows → same shape. State:
    ``relative_position_bias_table`` ((2·window−1)²×heads), ``qkv`` (C→3C) and
    ``proj`` (C→C). With ``masks`` (from :func:`shift_mask_patterns`) the
    windows of the last window row and column get the shifted-window masks.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, windows: torch.Tensor, rpi: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        b, nh, nw, n, c = windows.shape
        heads = self.num_heads
        qkv = self.qkv(windows).reshape(b, nh, nw, n, 3, heads, c // heads).permute(4, 0, 1, 2, 5, 3, 6)
        q, k, v = qkv.unbind(0)  # each N×nh×nw×heads×n×d
        bias = _gather_bias(self.relative_position_bias_table, rpi, n, n)
        if masks is None:
            out = _attend(q, k, v, bias, self.scale)
        else:
            def part(rs: slice, cs: slice, extra: torch.Tensor | None) -> torch.Tensor:
                full = bias if extra is None else bias + extra.to(bias.dtype)
                return _attend(q[:, rs, cs], k[:, rs, cs], v[:, rs, cs], full, self.scale)

            inner, last = slice(None, nh - 1), slice(nh - 1, None)
            left, right = slice(None, nw - 1), slice(nw - 1, None)
            top = torch.cat([part(inner, left, None), part(inner, right, masks[1])], dim=2)
            bottom = torch.cat([part(last, left, masks[0]), part(last, right, masks[2])], dim=2)
            out = torch.cat([top, bottom], dim=1)
        out = out.permute(0, 1, 2, 4, 3, 5).reshape(b, nh, nw, n, c)
        return self.proj(out)


class HybridAttentionBlock(nn.Module):
    """Add (shifted) window attention and a scaled channel-attention conv branch, then an MLP (HAB).

    Notes
    -----
    N×H×W×C tokens → same shape; H and W multiples of the window size.
    x ← x + attn(norm1 x) + conv_scale·CAB(norm1 x); x ← x + mlp(norm2 x).
    State: ``norm1``, ``attn.*``, ``conv_block.cab.*``, ``norm2``, ``mlp.fc{1,2}``.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 16, shift_size: int = 0,
                 compress_ratio: int = 3, squeeze_factor: int = 30, conv_scale: float = 0.01,
                 mlp_ratio: float = 2.0, qkv_bias: bool = True, drop_path: float = 0.0) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ParameterError(f"HybridAttentionBlock: shift_size must be in [0, {window_size}), got {shift_size}")
        self.window_size = window_size
        self.shift_size = shift_size
        self.conv_scale = conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias=qkv_bias)
        self.conv_block = ChannelAttentionBlock(dim, compress_ratio, squeeze_factor)
        self.drop_path = _DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, rpi_sa: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        s, ws = self.shift_size, self.window_size
        shortcut = x
        x = self.norm1(x)
        conv_x = self.conv_block(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        shifted = torch.roll(x, shifts=(-s, -s), dims=(1, 2)) if s else x
        attn = self.attn(_partition(shifted, ws), rpi_sa, masks if s else None)
        attn = _merge(attn, h, w)
        if s:
            attn = torch.roll(attn, shifts=(s, s), dims=(1, 2))
        x = shortcut + self.drop_path(attn) + conv_x * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OverlappingCrossAttentionBlock(nn.Module):
    """Let each window's queries attend to an enlarged, overlapping window of keys (OCAB).

    Notes
    -----
    N×H×W×C tokens → same shape. Keys and values come from
    (window + int(overlap_ratio·window))² patches taken with stride window
    around each window (zero padding at the image border, as the official
    ``nn.Unfold``). State: ``relative_position_bias_table``
    ((window + ext − 1)²×heads), ``norm1``, ``qkv``, ``proj``, ``norm2``,
    ``mlp.fc{1,2}``.
    """

    def __init__(self, dim: int, window_size: int, overlap_ratio: float, num_heads: int,
                 qkv_bias: bool = True, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.overlap_win_size = int(window_size * overlap_ratio) + window_size
        if (self.overlap_win_size - window_size) % 2:
            raise ParameterError(
                f"OverlappingCrossAttentionBlock: int(window_size·overlap_ratio) must be even, got "
                f"window_size {window_size}, overlap_ratio {overlap_ratio}"
            )
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((window_size + self.overlap_win_size - 1) ** 2, num_heads))
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, rpi_oca: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws, ows, heads = self.window_size, self.overlap_win_size, self.num_heads
        d = c // heads
        shortcut = x
        qkv = self.qkv(self.norm1(x))
        q = _partition(qkv[..., :c], ws)  # N×nh×nw×ws²×C
        nh, nw = q.shape[1], q.shape[2]
        q = q.reshape(b * nh * nw, ws * ws, heads, d).transpose(1, 2)
        kv = F.unfold(qkv[..., c:].permute(0, 3, 1, 2), kernel_size=ows, stride=ws, padding=(ows - ws) // 2)
        kv = kv.reshape(b, 2, heads, d, ows * ows, nh * nw).permute(1, 0, 5, 2, 4, 3).contiguous()
        k = kv[0].reshape(b * nh * nw, heads, ows * ows, d)
        v = kv[1].reshape(b * nh * nw, heads, ows * ows, d)
        bias = _gather_bias(self.relative_position_bias_table, rpi_oca, ws * ws, ows * ows)
        out = _attend(q, k, v, bias, self.scale)  # (N·nh·nw)×heads×ws²×d
        out = out.transpose(1, 2).reshape(b, nh, nw, ws * ws, c)
        x = self.proj(_merge(out, h, w)) + shortcut
        return x + self.mlp(self.norm2(x))


class _AttentionBlocks(nn.Module):
    """Run the HABs of one group, then its OCAB (state: ``blocks.i.*``, ``overlap_attn.*``)."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, compress_ratio: int,
                 squeeze_factor: int, conv_scale: float, overlap_ratio: float, mlp_ratio: float,
                 qkv_bias: bool, drop_path: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            HybridAttentionBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                                 compress_ratio, squeeze_factor, conv_scale, mlp_ratio, qkv_bias, drop_path[i])
            for i in range(depth)
        ])
        self.overlap_attn = OverlappingCrossAttentionBlock(dim, window_size, overlap_ratio, num_heads,
                                                           qkv_bias=qkv_bias, mlp_ratio=mlp_ratio)

    def forward(self, x: torch.Tensor, rpi_sa: torch.Tensor, rpi_oca: torch.Tensor,
                masks: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, rpi_sa, masks)
        return self.overlap_attn(x, rpi_oca)


class ResidualHybridAttentionGroup(nn.Module):
    """Run HABs and an OCAB, a 3×3 conv, and add the group's input (RHAG).

    Notes
    -----
    N×H×W×C tokens → same shape. State: ``residual_group.blocks.i.*``,
    ``residual_group.overlap_attn.*`` and ``conv`` (C→C 3×3, absent for
    ``resi_connection="identity"``). The official ``patch_embed`` and
    ``patch_unembed`` of a group hold no tensors and are plain reshapes here.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, compress_ratio: int,
                 squeeze_factor: int, conv_scale: float, overlap_ratio: float, mlp_ratio: float,
                 qkv_bias: bool, drop_path: list[float], resi_connection: str = "1conv") -> None:
        super().__init__()
        self.residual_group = _AttentionBlocks(dim, depth, num_heads, window_size, compress_ratio, squeeze_factor,
                                               conv_scale, overlap_ratio, mlp_ratio, qkv_bias, drop_path)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()

    def forward(self, x: torch.Tensor, rpi_sa: torch.Tensor, rpi_oca: torch.Tensor,
                masks: torch.Tensor) -> torch.Tensor:
        y = self.residual_group(x, rpi_sa, rpi_oca, masks)
        return self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) + x


class _PatchEmbed(nn.Module):
    """Turn N×C×H×W features into N×H×W×C tokens, layer-normalised (state: ``norm``, when patch_norm)."""

    def __init__(self, dim: int, patch_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class _Upsample(nn.Sequential):
    """Upsample by pixel shuffle: (conv 3×3 to 4C, shuffle 2)×log2(scale), or conv to 9C, shuffle 3."""

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ParameterError(f"HAT: upscale must be a power of 2 or 3, got {scale}")
        super().__init__(*layers)


# -- the network ---------------------------------------------------------------------
class HAT(nn.Module):
    """Super-resolve an RGB image with the Hybrid Attention Transformer.

    Parameters
    ----------
    upscale : output size / input size (2, 3, 4, 8 …).
    in_channels : image channels (3 for all released models; output has the same).
    embed_dim : token width (180 for HAT and HAT-L, 144 for HAT-S).
    depths : HABs per residual group (6×6 for HAT/HAT-S, 12×6 for HAT-L).
    num_heads : attention heads per group.
    window_size : attention window side (16 for every released model).
    compress_ratio, squeeze_factor : channel reductions of the CAB branch
        (3 and 30 for HAT/HAT-L, 24 and 24 for HAT-S).
    conv_scale : weight of the CAB branch (0.01).
    overlap_ratio : OCAB key window = window·(1 + overlap_ratio) (0.5 → 24).
    mlp_ratio : MLP hidden width / embed_dim (2).
    qkv_bias : biases on the q, k, v projections.
    img_range : the network works on (x − mean)·img_range (1.0).
    drop_path_rate : stochastic-depth rate, linearly increasing over all HABs
        (training only; the official default 0.1).
    patch_norm : layer-normalise the tokens after the shallow conv.
    resi_connection : ``"1conv"`` (3×3 conv closing every group and the body) or ``"identity"``.
    num_feat : width of the reconstruction convs (64).

    Notes
    -----
    N×C×H×W float tensor, sRGB-encoded values nominally in [0, 1] →
    N×C×(upscale·H)×(upscale·W), not clipped. Any H, W: the input is padded by
    reflection (edge replication when smaller than the padding) to a
    multiple of ``window_size`` and the output cropped. The DIV2K mean is a
    non-persistent buffer (the official code keeps it out of the state dict
    too); ``relative_position_index_SA`` and ``relative_position_index_OCA``
    are persistent int64 buffers, as in the official checkpoints.
    Device- and dtype-agnostic, works under ``torch.autocast``. A traced
    graph (ONNX export) keeps the reflection pad, so it accepts any size of
    at least one window.

    References
    ----------
    X. Chen, X. Wang, J. Zhou, Y. Qiao, C. Dong, "Activating More Pixels in
    Image Super-Resolution Transformer", CVPR 2023.
    """

    def __init__(self, *, upscale: int = 4, in_channels: int = 3, embed_dim: int = 180,
                 depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6), num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
                 window_size: int = 16, compress_ratio: int = 3, squeeze_factor: int = 30,
                 conv_scale: float = 0.01, overlap_ratio: float = 0.5, mlp_ratio: float = 2.0,
                 qkv_bias: bool = True, img_range: float = 1.0, drop_path_rate: float = 0.1,
                 patch_norm: bool = True, resi_connection: str = "1conv", num_feat: int = 64) -> None:
        super().__init__()
        depths, num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
        self._check(upscale, in_channels, embed_dim, depths, num_heads, window_size, compress_ratio,
                    squeeze_factor, resi_connection)
        self.upscale = int(upscale)
        self.window_size = int(window_size)
        self.shift_size = self.window_size // 2
        self.overlap_ratio = float(overlap_ratio)
        self.img_range = float(img_range)
        self.embed_dim = embed_dim

        mean = DIV2K_RGB_MEAN if in_channels == 3 else (0.0,)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("relative_position_index_SA", relative_position_index_sa(self.window_size))
        self.register_buffer("relative_position_index_OCA",
                             relative_position_index_oca(self.window_size, self.overlap_ratio))

        # shallow features
        self.conv_first = nn.Conv2d(in_channels, embed_dim, 3, 1, 1)
        # deep features
        self.patch_embed = _PatchEmbed(embed_dim, patch_norm)
        total = sum(depths)
        dpr = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]  # as torch.linspace
        self.layers = nn.ModuleList()
        start = 0
        for depth, heads in zip(depths, num_heads):
            self.layers.append(ResidualHybridAttentionGroup(
                embed_dim, depth, heads, self.window_size, compress_ratio, squeeze_factor, conv_scale,
                self.overlap_ratio, mlp_ratio, qkv_bias, dpr[start:start + depth], resi_connection))
            start += depth
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()
        # reconstruction
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = _Upsample(self.upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_channels, 3, 1, 1)
        self.apply(self._init_weights)

    @staticmethod
    def _check(upscale: int, in_channels: int, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
               window_size: int, compress_ratio: int, squeeze_factor: int, resi_connection: str) -> None:
        if not isinstance(upscale, int) or upscale < 2 or not (upscale & (upscale - 1) == 0 or upscale == 3):
            raise ParameterError(f"HAT: upscale must be a power of 2 or 3, got {upscale!r}")
        if not depths or len(depths) != len(num_heads) or min(depths) < 1:
            raise ParameterError(
                f"HAT: depths and num_heads must be equally long non-empty tuples of positive ints, got "
                f"{depths!r} and {num_heads!r}")
        if any(h < 1 or embed_dim % h for h in num_heads):
            raise ParameterError(f"HAT: embed_dim {embed_dim} must be divisible by every num_heads entry {num_heads!r}")
        if not isinstance(window_size, int) or window_size < 2:
            raise ParameterError(f"HAT: window_size must be an int >= 2, got {window_size!r}")
        if embed_dim // compress_ratio < 1 or embed_dim // squeeze_factor < 1:
            raise ParameterError(
                f"HAT: embed_dim {embed_dim} is too narrow for compress_ratio {compress_ratio} and "
                f"squeeze_factor {squeeze_factor} (each must leave at least one channel)")
        if resi_connection not in ("1conv", "identity"):
            raise ParameterError(f"HAT: resi_connection must be '1conv' or 'identity', got {resi_connection!r}")
        if in_channels < 1:
            raise ParameterError(f"HAT: in_channels must be positive, got {in_channels!r}")

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0.0)
            nn.init.constant_(m.weight, 1.0)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        ws = self.window_size
        ph, pw = (-h) % ws, (-w) % ws
        tracing = torch.jit.is_tracing()  # keep the pad in exported graphs: their size is dynamic
        if ph == 0 and pw == 0 and not tracing:
            return x, h, w
        mode = "reflect" if (ph < h and pw < w) or tracing else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode), h, w

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the deep-feature body: N×C×H×W → N×C×H×W (H, W multiples of the window)."""
        masks = shift_mask_patterns(self.window_size, self.shift_size, device=x.device, dtype=x.dtype)
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t, self.relative_position_index_SA, self.relative_position_index_OCA, masks)
        return self.norm(t).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.conv_first.in_channels, 1, "HAT")
        x, h, w = self._pad(x)
        mean = self.mean.to(dtype=x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        x = x / self.img_range + mean.to(x.dtype)
        return x[..., : h * self.upscale, : w * self.upscale]
