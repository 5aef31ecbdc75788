"""MetaISP: one network that renders a RAW in the look of several phones.

A packed-RAW encoder–decoder (Haar DWT/IDWT levels, residual groups with
query attention and Fourier positional encodings) whose bottleneck is
multiplied by a global scene vector from a small XCiT transformer (fed by a
downsized bilinear demosaic of the whole frame) and by a learned device
embedding; the embedding also forms the decoder's attention queries. The
white-balance colour scaler, optional ISO/exposure MLPs and an optional
illuminant head condition the input.

The module tree (and so the ``state_dict``) follows ``MetaISPNet`` of the
official release (vccimaging/MetaISP ``models/metaisp_model.py``,
``models/networks.py``, ``models/attention_models.py``), including the XCiT
branch (written here without timm, same parameter names and shapes), so
the authors' checkpoints load with ``strict=True``. :class:`MetaISPConfig`
selects the released variant (``iso_exp``, ``illuminant``) or a smaller
width for tests.

References
----------
M. Souza and W. Heidrich, "MetaISP — Exploiting Global Scene Structure for
Accurate Multi-Device Color Rendition", VMV 2023, arXiv:2401.03220.
A. El-Nouby et al., "XCiT: Cross-Covariance Image Transformers", NeurIPS 2021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import torch
import torch.nn.functional as F
from torch import nn

from ispkit.errors import InputError, ParameterError

from .blocks import Mlp, haar_filters

__all__ = [
    "MetaISPConfig", "MetaISPNet", "GlobalPooling", "DEVICE_NAMES", "make_coord", "make_attention_coords",
    "receptive_radius", "global_view_size", "GLOBAL_VIEW_AREA", "DEFAULT_EXPOSURE", "DEFAULT_ISO", "Mlp", "CoordinateEncoding", "QueryAttention", "CrossAdapter", "ResidualAttentionGroup",
    "GlobalXCiT", "IlluminantHead", "IsoExposure", "HaarDWT2d", "HaarIDWT2d",
]

#: Pixels of the global view (the release feeds 448×448 for its 2688² crops).
GLOBAL_VIEW_AREA = 448 * 448
#: Exposure time (s) and ISO :meth:`MetaISPNet.default_inputs` assumes.
DEFAULT_EXPOSURE = 1 / 60
DEFAULT_ISO = 100.0

#: Device ids of the official release (embedding rows): 0 Pixel 6 Pro, 1 Galaxy S22, 2 iPhone XR.
DEVICE_NAMES = ("pixel_6_pro", "galaxy_s22", "iphone_xr")


@dataclass(frozen=True)
class MetaISPConfig:
    """Widths and switches of a :class:`MetaISPNet`; the defaults are the released ``real_E``."""

    ch1: int = 64          #: encoder width at levels 0–1
    ch2: int = 128         #: encoder width at levels 2–3 (the bottleneck has 4·ch2 channels)
    emb_dim: int = 128     #: device embedding size
    num_devices: int = 3
    xcit_dim: int = 128
    xcit_depth: int = 4
    xcit_heads: int = 4
    illum_width: int = 64  #: illuminant head width
    iso_exp: bool = True
    illuminant: bool = False
    latent_n: int = 5      #: images per pair in the official ``latent`` interpolation mode
    #: illuminant head's field of view, packed pixels: None runs it on the whole input (the release);
    #: n averages its estimates over n×n tiles covering the input (see :meth:`MetaISPNet.estimate_color_scaler`)
    illum_patch: int | None = None

    def validate(self) -> None:
        """Raise :class:`ParameterError` for widths the layout cannot take."""
        for f in ("ch1", "ch2", "emb_dim", "num_devices", "xcit_dim", "xcit_depth", "xcit_heads",
                  "illum_width", "latent_n"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ParameterError(f"MetaISPConfig.{f} must be a positive int, got {v!r}")
        if self.xcit_dim % 8 or self.xcit_dim % self.xcit_heads:
            raise ParameterError(f"MetaISPConfig.xcit_dim must be a multiple of 8 and of xcit_heads, got {self.xcit_dim}")
        if self.ch1 % 4 or self.ch2 % 4:
            raise ParameterError(f"MetaISPConfig.ch1/ch2 must be multiples of 4, got {self.ch1}, {self.ch2}")
        if self.illum_patch is not None and (not isinstance(self.illum_patch, int) or self.illum_patch < 8):
            raise ParameterError(f"MetaISPConfig.illum_patch must be None or an int >= 8 (packed pixels), "
                                 f"got {self.illum_patch!r}")


# ----------------------------------------------------------------------------- coordinates

def make_coord(h: int, w: int, extent: float = 1.0) -> torch.Tensor:
    """Return the 1×2×h×w pixel-centre grid in (−extent, extent) the decoder input carries.

    Notes
    -----
    Channel 0 is x, channel 1 y, each ``linspace(-e + e/n, e - e/n, n)``;
    official ``util.get_coord(H, W, x=1, y=1)`` (``pre_ispnet_coord`` off).
    """
    x = torch.linspace(-extent + extent / w, extent - extent / w, w, dtype=torch.float64)
    y = torch.linspace(-extent + extent / h, extent - extent / h, h, dtype=torch.float64)
    grid = torch.stack([x.expand(h, w), y[:, None].expand(h, w)])
    return grid.to(torch.float32).unsqueeze(0)


def make_attention_coords(h: int, w: int, full_size: int | None = None) -> torch.Tensor:
    """Return the 1×2×h×w positions (x, y) the query attention encodes, in radians.

    Notes
    -----
    ``linspace(1, n, n) / (full_size / 2) · 2π`` with ``n`` the packed size
    (official ``get_attention_coords``; ``full_size`` is the mosaic size,
    2·h when omitted, square images in the release).
    """
    sy = (full_size / 2) if full_size else h
    sx = (full_size / 2) if full_size else w
    x = torch.linspace(1, w, w, dtype=torch.float64) / sx * (2 * math.pi)
    y = torch.linspace(1, h, h, dtype=torch.float64) / sy * (2 * math.pi)
    grid = torch.stack([x.expand(h, w), y[:, None].expand(h, w)])
    return grid.unsqueeze(0)


# ----------------------------------------------------------------------------- global pooling for tiling

class GlobalPooling:
    """Drive the query attentions when the local branch runs tile by tile.

    Each of the four query attentions pools all tokens of its level into one
    vector (a softmax-weighted mean). Tiled, that sum is split: in a
    *collect* pass each tile adds the softmax statistics of its own core
    (the tokens no other tile owns) for attention ``collect``; later passes
    reuse the finished vectors from :attr:`pooled`. Untiled runs pass
    ``None`` and never see this object.
    """

    def __init__(self) -> None:
        self.pooled: dict[int, torch.Tensor] = {}
        self.collect: int | None = None
        self.core: tuple[int, int, int, int] = (0, 0, 0, 0)  # y0, y1, x0, x1 of the tile's core, tile pixels
        self.tile_height = 0  # packed height of the current tile (level 0)
        self._stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.counter = 0

    def start_pass(self, collect: int | None) -> None:
        """Begin a pass that collects statistics for attention ``collect`` (``None``: final pass)."""
        self.collect, self._stats = collect, None

    def add(self, logits: torch.Tensor, v: torch.Tensor, h: int, w: int) -> None:
        """Accumulate ``logits`` (B×heads×1×N) and ``v`` (B×heads×N×d) of the core tokens."""
        s = self.tile_height // h  # 1 at level 0, 2 at level 1
        y0, y1, x0, x1 = (c // s for c in self.core)
        idx = (torch.arange(y0, y1)[:, None] * w + torch.arange(x0, x1)[None, :]).reshape(-1).to(logits.device)
        lg = logits.index_select(-1, idx)
        vv = v.index_select(-2, idx)
        m = lg.amax(dim=-1, keepdim=True)
        e = torch.exp(lg - m)
        num = e @ vv  # B×heads×1×d
        den = e.sum(dim=-1, keepdim=True)
        if self._stats is None:
            self._stats = (m, den, num)
            return
        m0, den0, num0 = self._stats
        mm = torch.maximum(m0, m)
        a0, a1 = torch.exp(m0 - mm), torch.exp(m - mm)
        self._stats = (mm, den0 * a0 + den * a1, num0 * a0 + num * a1)

    def finish(self) -> torch.Tensor:
        """Return the pooled B×heads×1×d attention output of the collected pass."""
        _, den, num = self._stats
        return num / den


class _StopPass(Exception):
    """Raised inside a tile once the collected attention has its statistics."""


# ----------------------------------------------------------------------------- small layers

def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding, bias=True)


class HaarDWT2d(nn.Conv2d):
    """Haar analysis as a grouped 2×2 stride-2 convolution whose weight is stored per channel.

    Notes
    -----
    N×C×H×W → N×4C×H/2×W/2 (LL, LH, HL, HH of each channel); ``weight`` is
    4C×1×2×2 as in the official ``DWTForward`` (same filters as
    :class:`ispkit.neural.models.blocks.HaarDWT`), fixed (no gradient).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels * 4, 2, 2, groups=channels, bias=False)
        self.weight.data.copy_(haar_filters().repeat(channels, 1, 1, 1))
        self.requires_grad_(False)


class HaarIDWT2d(nn.ConvTranspose2d):
    """Haar synthesis (inverse of :class:`HaarDWT2d`): N×4C×H×W → N×C×2H×2W, weight 4C×1×2×2."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels // 4, 2, 2, groups=channels // 4, bias=False)
        self.weight.data.copy_(haar_filters().repeat(channels // 4, 1, 1, 1))
        self.requires_grad_(False)


def _fourier_features(x_embed: torch.Tensor, y_embed: torch.Tensor, hidden: int, temperature: float) -> torch.Tensor:
    """Sine/cosine features of (y, x) → N×2·hidden×H×W (DETR's positional encoding)."""
    dim_t = torch.arange(hidden, dtype=torch.float32, device=x_embed.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="trunc") / hidden)
    pos_x = x_embed[..., None] / dim_t
    pos_y = y_embed[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class CoordinateEncoding(nn.Module):
    """Project Fourier features of given (x, y) coordinates to ``dim`` channels (``token_projection``)."""

    def __init__(self, hidden: int, dim: int, temperature: float = 10000.0) -> None:
        super().__init__()
        self.token_projection = nn.Conv2d(hidden * 2, dim, kernel_size=1)
        self.hidden, self.temperature = hidden, temperature

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        feats = _fourier_features(coords[:, 0].float(), coords[:, 1].float(), self.hidden, self.temperature)
        return self.token_projection(feats)


# ----------------------------------------------------------------------------- query attention (local branch)

class QueryAttention(nn.Module):
    """Pool all tokens into one with a learned (optionally device-modulated) query.

    Notes
    -----
    Tokens B×N×C → B×1×C. State: ``q`` (1×1×C), ``q_proj`` (1×1 conv of the
    style vector), ``k``, ``v`` (no bias), ``proj``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Parameter(torch.rand((1, 1, dim)))
        self.q_proj = nn.Conv2d(dim, dim, 1, 1)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None, hw: tuple[int, int] | None = None,
                pooling: GlobalPooling | None = None) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        if style is None:
            q = self.q.expand(b, -1, -1)
        else:
            q = self.q_proj(style).squeeze(2).permute(0, 2, 1) * self.q.expand(b, -1, -1)
        q = q.reshape(b, -1, self.heads, d).permute(0, 2, 1, 3)
        if pooling is not None and hw is not None:
            out = self._pooled(x, q, hw, pooling)
        else:
            k = self.k(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
            v = self.v(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            out = attn @ v
        return self.proj(out.transpose(1, 2).reshape(b, 1, c))

    def _pooled(self, x: torch.Tensor, q: torch.Tensor, hw: tuple[int, int], pooling: GlobalPooling) -> torch.Tensor:
        index = pooling.counter
        pooling.counter += 1
        if index in pooling.pooled:
            return pooling.pooled[index]
        if pooling.collect != index:
            raise ParameterError(f"MetaISP tiling: attention {index} has no pooled vector yet")
        b, n, c = x.shape
        d = c // self.heads
        k = self.k(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        v = self.v(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        pooling.add((q @ k.transpose(-2, -1)) * self.scale, v, *hw)
        raise _StopPass()


class CrossAdapter(nn.Module):
    """Positional encoding, query attention and an MLP over the tokens of a feature map.

    Notes
    -----
    N×C×H×W → N×C×H×W: ``x · attn(norm1(x + pos))`` then ``+ norm3(mlp(norm2(·)))``
    (the official ``attention_match="prod"``). State: ``norm1..3``,
    ``pos_embeder.token_projection``, ``attn.0`` (:class:`QueryAttention`), ``mlp``.
    """

    def __init__(self, dim: int, heads: int, styled: bool) -> None:
        super().__init__()
        self.styled = styled
        self.norm1 = nn.LayerNorm(dim)
        h_dim = 64 if dim < 128 else dim
        self.pos_embeder = CoordinateEncoding(hidden=h_dim // 2, dim=dim)
        self.attn = nn.ModuleList([QueryAttention(dim, heads)])
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None, coords: torch.Tensor,
                pooling: GlobalPooling | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        if coords.shape[-2:] != x.shape[-2:]:
            coords = F.interpolate(coords, (h, w), mode="bilinear", align_corners=True)
        x = x + self.pos_embeder(coords)
        x = x.flatten(2).transpose(1, 2)
        y = self.norm1(x)
        for attn in self.attn:
            y = attn(y, style if self.styled else None, (h, w), pooling)
            pooling = None  # only the first attention sees all tokens
        x = x * y
        x = x + self.norm3(self.mlp(self.norm2(x)))
        return x.transpose(1, 2).reshape(b, c, h, w)


class _AttentionLayer(nn.Module):
    """Gate features by their :class:`CrossAdapter` output (``channel_p``)."""

    def __init__(self, dim: int, heads: int, styled: bool) -> None:
        super().__init__()
        self.channel_p = CrossAdapter(dim, heads, styled)

    def forward(self, x, style, coords, pooling):
        return self.channel_p(x, style, coords, pooling) * x


class _RCABlock(nn.Module):
    """conv–ReLU–conv, optionally gated by query attention, plus the input (``res``, ``ca``)."""

    def __init__(self, dim: int, heads: int, attention: bool, styled: bool) -> None:
        super().__init__()
        self.res = nn.Sequential(_conv(dim, dim), nn.ReLU(), _conv(dim, dim))
        if attention:
            self.ca = _AttentionLayer(dim, heads, styled)
        self.attention = attention

    def forward(self, x, style, coords, pooling):
        res = self.res(x)
        if self.attention:
            res = self.ca(res, style, coords, pooling)
        return res + x


class ResidualAttentionGroup(nn.Module):
    """One attention RCAB and a 3×3 conv with a long skip (``rg_0``, ``conv``; official ``RCAGroup``, depth 1)."""

    def __init__(self, dim: int, heads: int = 4, attention: bool = True, styled: bool = False) -> None:
        super().__init__()
        self.rg_0 = _RCABlock(dim, heads, attention, styled)
        self.conv = _conv(dim, dim)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None, coords: torch.Tensor | None = None,
                pooling: GlobalPooling | None = None) -> torch.Tensor:
        return self.conv(self.rg_0(x, style, coords, pooling)) + x


# ----------------------------------------------------------------------------- XCiT (global branch)

def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(_conv_bn(3, dim // 8), nn.GELU(), _conv_bn(dim // 8, dim // 4), nn.GELU(),
                                  _conv_bn(dim // 4, dim // 2), nn.GELU(), _conv_bn(dim // 2, dim))

    def forward(self, x):
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


class _GridEncoding(nn.Module):
    """XCiT's Fourier encoding of the normalised patch grid (``token_projection``)."""

    def __init__(self, dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.token_projection = nn.Conv2d(hidden * 2, dim, kernel_size=1)
        self.hidden = hidden

    def forward(self, b: int, h: int, w: int) -> torch.Tensor:
        dev = self.token_projection.weight.device
        ones = torch.ones(b, h, w, device=dev)
        y = ones.cumsum(1, dtype=torch.float32)
        x = ones.cumsum(2, dtype=torch.float32)
        y = y / (y[:, -1:, :] + 1e-6) * (2 * math.pi)
        x = x / (x[:, :, -1:] + 1e-6) * (2 * math.pi)
        return self.token_projection(_fourier_features(x, y, self.hidden, 10000.0))


class _XCA(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 4, 1)
        q, k, v = qkv[0], qkv[1], qkv[2]  # B×heads×d×N
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.proj((attn @ v).permute(0, 3, 1, 2).reshape(b, n, c))


class _LPI(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x, h, w):
        b, n, c = x.shape
        x = x.permute(0, 2, 1).reshape(b, c, h, w)
        x = self.conv2(self.bn(self.act(self.conv1(x))))
        return x.reshape(b, c, n).permute(0, 2, 1)


class _XCABlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _XCA(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)
        self.local_mp = _LPI(dim)
        self.gamma1 = nn.Parameter(torch.ones(dim))
        self.gamma2 = nn.Parameter(torch.ones(dim))
        self.gamma3 = nn.Parameter(torch.ones(dim))

    def forward(self, x, h, w):
        x = x + self.gamma1 * self.attn(self.norm1(x))
        x = x + self.gamma3 * self.local_mp(self.norm3(x), h, w)
        return x + self.gamma2 * self.mlp(self.norm2(x))


class _ClassAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q[:, :, 0:1] * k).sum(dim=-1) * self.scale).softmax(dim=-1)
        cls = self.proj((attn.unsqueeze(2) @ v).transpose(1, 2).reshape(b, 1, c))
        return torch.cat([cls, x[:, 1:]], dim=1)


class _ClassAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _ClassAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)
        self.gamma1 = nn.Parameter(torch.ones(dim))
        self.gamma2 = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = self.norm2(x + self.gamma1 * self.attn(self.norm1(x)))  # every token normalised (official)
        cls = self.gamma2 * self.mlp(x[:, 0:1])
        return x + torch.cat([cls, x[:, 1:]], dim=1)  # as released: patch tokens are added to themselves


class GlobalXCiT(nn.Module):
    """XCiT encoder of the downsized scene → N×out×1×1 global feature (``fts_proj`` of the class token).

    Notes
    -----
    Input N×3×h×w (B, G, R; black-level removed), h and w multiples of 16
    (448×448 in the release); patch 16, LayerScale η = 1, two class-attention
    layers with every token normalised (the official ``tokens_norm`` hack).
    """

    def __init__(self, dim: int = 128, depth: int = 4, heads: int = 4, out: int = 512) -> None:
        super().__init__()
        self.patch_embed = _PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList([_XCABlock(dim, heads) for _ in range(depth)])
        self.cls_attn_blocks = nn.ModuleList([_ClassAttentionBlock(dim, heads) for _ in range(2)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fts_proj = nn.Conv2d(dim, out, 1, 1, 0)
        self.pos_embeder = _GridEncoding(dim)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x, (hp, wp) = self.patch_embed(x)
        x = x + self.pos_embeder(b, hp, wp).reshape(b, -1, x.shape[1]).permute(0, 2, 1)
        for blk in self.blocks:
            x = blk(x, hp, wp)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        for blk in self.cls_attn_blocks:
            x = blk(x)
        z = self.norm(x)[:, 0]
        return self.fts_proj(z[:, :, None, None])


# ----------------------------------------------------------------------------- conditioning heads

def _tile_origins(size: int, tile: int) -> list[int]:
    """Start offsets of ceil(size / tile) tiles of side ``tile`` spread evenly over ``size`` (one if it fits)."""
    if size <= tile:
        return [0]
    count = -(-size // tile)
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


class IlluminantHead(nn.Module):
    """Estimate the 4-channel colour scaler from the gamma-encoded packed RAW and the device embedding.

    Notes
    -----
    7×7 stride-2 conv (no padding), ReLU, conv–ReLU–conv gated by the
    embedding, global max pool, 1×1 conv → N×4×1×1. State: ``conv1.0``,
    ``conv2.{0,2}``, ``conv3``.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(_conv(4, width, 7, 2, 0), nn.ReLU())
        self.conv2 = nn.Sequential(_conv(width, width), nn.ReLU(), _conv(width, width))
        self.conv3 = _conv(width, 4, 1, 1, 0)

    def forward(self, raw: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(raw) * embedding)
        return self.conv3(torch.amax(x, dim=(2, 3), keepdim=True))


class IsoExposure(nn.Module):
    """Scale and shift the packed RAW by MLPs of exposure and ISO (``conv1exp``, ``conv1iso``, ``alpha``, ``beta``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1exp = nn.Linear(1, 32)
        self.conv1iso = nn.Linear(1, 32)
        self.beta = nn.Linear(64, 4)
        self.alpha = nn.Linear(64, 4)

    def forward(self, exp: torch.Tensor, iso: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        f = torch.cat([F.relu(self.conv1exp(exp)), F.relu(self.conv1iso(iso))], dim=1)
        return self.alpha(f)[:, :, None, None] * img + self.beta(f)[:, :, None, None]


# ----------------------------------------------------------------------------- the network

class MetaISPNet(nn.Module):
    """Render a packed RAW in the colour and tone of a chosen device.

    Notes
    -----
    ``forward(raw, raw_full, color_scaler, coord, mobile_id, latent, coords, exp, iso)``
    takes the official inputs in the official order:

    - ``raw`` N×4×H×W packed RAW (B, G_r, R, G_b — the green on the red row
      second), black-level removed, [0, 1]; H, W multiples of 8;
    - ``raw_full`` N×3×h×w bilinear demosaic (B, G, R) of the whole frame,
      area-downsized (448×448 for a 2688² crop), black-level removed;
    - ``color_scaler`` N×4×1×1 white-balance gains (1/neutral) in the order
      B, G, R, G (ignored with the illuminant head, which estimates it);
    - ``coord`` N×2×H×W (:func:`make_coord`), ``mobile_id`` N device ids
      (:data:`DEVICE_NAMES`), ``latent`` the official interpolation mode,
      ``coords`` N×2×H×W (:func:`make_attention_coords`), ``exp`` N
      exposure time ×100 and ``iso`` N ISO/100.

    Returns N×3×2H×2W display RGB (nominally [0, 1]); with the illuminant
    head a tuple ``(rgb, color_scaler)``; with ``latent`` a list of
    2·``latent_n`` renders (iPhone → Pixel, then Pixel → Galaxy).
    """

    #: ONNX export traces ``net(raw)`` with the stand-in inputs, whose grids and
    #: global-view size are fixed by the example: the graph is exported for that size only.
    onnx_dynamic = False

    def __init__(self, config: MetaISPConfig | None = None) -> None:
        super().__init__()
        cfg = config or MetaISPConfig()
        cfg.validate()
        self.config = cfg
        c1, c2, e = cfg.ch1, cfg.ch2, cfg.emb_dim
        self.xcit = GlobalXCiT(cfg.xcit_dim, cfg.xcit_depth, cfg.xcit_heads, out=c2 * 4)
        if cfg.illuminant:
            self.illumination = IlluminantHead(cfg.illum_width)
        if cfg.iso_exp:
            self.IsoExp = IsoExposure()
        self.color_scaler_lv_0 = nn.Conv2d(4, 4, 1, 1, 0)
        with torch.no_grad():  # start as a plain white balance: the packed RAW times the scaler
            self.color_scaler_lv_0.weight.copy_(torch.eye(4)[:, :, None, None])
            self.color_scaler_lv_0.bias.zero_()
        self.color_scaler_lv_1 = nn.Conv2d(4, c1, 1, 1, 0)
        self.emb = nn.Embedding(cfg.num_devices, e)
        self.emb_lv1 = nn.Conv2d(e, c2 * 4, 1, 1, 0)
        if cfg.illuminant:
            self.emb_4 = nn.Conv2d(e, cfg.illum_width, 1, 1, 0)
        self.emb_ada_up3 = nn.Conv2d(e, c2, 1, 1, 0)
        self.emb_ada_up2 = nn.Conv2d(e, c1, 1, 1, 0)
        self.emb_ada_up1 = nn.Conv2d(e, c1, 1, 1, 0)
        self.head = _conv(4, c1)
        self.down1_0 = _conv(c1 + 2, c1 + 2)
        self.down1_1 = ResidualAttentionGroup(c1 + 2, heads=2)
        self.down1_2 = _conv(c1 + 2, c1)
        self.down1_3 = HaarDWT2d(c1)
        self.down2_0 = _conv(c1 * 4, c1)
        self.down2_1 = ResidualAttentionGroup(c1)
        self.down2_2 = HaarDWT2d(c1)
        self.down3_0 = _conv(c1 * 4, c2)
        self.down3_1 = ResidualAttentionGroup(c2, attention=False)
        self.down3_2 = HaarDWT2d(c2)
        self.middle_conv1 = _conv(c2 * 4, c2)
        self.middle_group1 = ResidualAttentionGroup(c2, attention=False)
        self.middle_group2 = ResidualAttentionGroup(c2, attention=False)
        self.middle_conv2 = _conv(c2, c2 * 4)
        self.up3_up = HaarIDWT2d(c2 * 4)
        self.up3_att = ResidualAttentionGroup(c2, attention=False)
        self.up3_conv = _conv(c2, c1 * 4)
        self.up2_up = HaarIDWT2d(c1 * 4)
        self.up2_att = ResidualAttentionGroup(c1, styled=True)
        self.up2_conv = _conv(c1, c1 * 4)
        self.up1_up = HaarIDWT2d(c1 * 4)
        self.up1_att = ResidualAttentionGroup(c1, styled=True)
        self.up1_conv = _conv(c1, c1)
        self.tail = nn.Sequential(_conv(c1, c1 * 4), nn.PixelShuffle(2), _conv(c1, 3))

    # -- inputs ------------------------------------------------------------------------------
    def _check(self, raw: torch.Tensor, raw_full: torch.Tensor) -> None:
        if not isinstance(raw, torch.Tensor) or raw.ndim != 4 or raw.shape[1] != 4:
            raise InputError(f"MetaISPNet: raw must be an N×4×H×W packed RAW tensor, got "
                             f"{getattr(raw, 'shape', type(raw).__name__)}")
        h, w = raw.shape[-2:]
        if h % 8 or w % 8 or h == 0 or w == 0:
            raise InputError(f"MetaISPNet: packed height and width must be positive multiples of 8, got {h}×{w}; "
                             "pad the RAW and crop the output")
        if not isinstance(raw_full, torch.Tensor) or raw_full.ndim != 4 or raw_full.shape[1] != 3 \
                or raw_full.shape[-1] % 16 or raw_full.shape[-2] % 16 or min(raw_full.shape[-2:]) < 16:
            raise InputError(f"MetaISPNet: raw_full must be N×3×h×w with h, w multiples of 16, got "
                             f"{getattr(raw_full, 'shape', type(raw_full).__name__)}")

    def embed(self, mobile_id: torch.Tensor | int) -> torch.Tensor:
        """Return the N×emb_dim×1×1 embedding of device ids."""
        if not isinstance(mobile_id, torch.Tensor):  # a constant row (keeps ONNX graphs free of an id input)
            i = int(mobile_id)
            if not 0 <= i < self.config.num_devices:
                raise InputError(f"MetaISPNet: device ids must be in 0..{self.config.num_devices - 1}, got {i}")
            return self.emb.weight[i][None, :, None, None]
        ids = mobile_id.to(self.emb.weight.device).long().reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.num_devices):
            raise InputError(f"MetaISPNet: device ids must be in 0..{self.config.num_devices - 1}, got {ids.tolist()}")
        return self.emb(ids)[:, :, None, None]

    def condition(self, raw: torch.Tensor, raw_full: torch.Tensor, color_scaler: torch.Tensor | None,
                  embedding: torch.Tensor, illum_patch: int | None = None) -> dict[str, torch.Tensor]:
        """Compute everything the local branch needs from the whole frame once.

        Returns a dict with ``embedding``, ``color_scaler`` (given or estimated),
        ``features`` (global N×4·ch2×1×1) and ``bottleneck`` (N×4·ch2×1×1).
        ``illum_patch`` overrides ``config.illum_patch`` (see :meth:`estimate_color_scaler`).
        """
        if self.config.illuminant:
            color_scaler = self.estimate_color_scaler(raw, embedding, illum_patch)
        elif color_scaler is None:
            raise InputError("MetaISPNet: color_scaler is required without the illuminant head")
        return {"embedding": embedding, "color_scaler": color_scaler, "features": self.xcit(raw_full),
                "bottleneck": self.emb_lv1(embedding)}

    def estimate_color_scaler(self, raw: torch.Tensor, embedding: torch.Tensor,
                              patch: int | None = None) -> torch.Tensor:
        """The illuminant head's N×4×1×1 colour scaler of a packed RAW (needs ``config.illuminant``).

        ``patch`` overrides ``config.illum_patch`` for this call: None keeps the
        configuration's, 0 sees the whole input, n ≥ 8 tiles it n×n.

        Notes
        -----
        With ``config.illum_patch`` None the head sees the whole input, as the
        release does. The head ends in a global max pool, so its estimate
        depends on the size of what it sees: trained on crops, it is biased on
        a whole frame (a small head trained alone on 64² crops of the
        synthetic benchmark's scenes: 14.3° of angular error on whole held-out
        frames, 3.3° averaged over 32² packed tiles).
        With ``illum_patch = n`` the input is covered by n×n tiles (evenly
        spaced, overlapping at most one tile's worth), the head runs on each,
        and the estimates are combined as the mean of their unit vectors
        rescaled to their mean length. An input no larger than n×n is one tile,
        so training on n×n crops computes exactly the release's head.
        """
        n_patch = self.config.illum_patch if patch is None else (int(patch) or None)
        if n_patch is not None and n_patch < 8:
            raise ParameterError(f"MetaISPNet: the illuminant head's patch must be 0 (whole input) or >= 8, got {patch}")
        x = torch.pow(raw, 1 / 2.2)
        gate = self.emb_4(embedding)
        n, _, h, w = x.shape
        if n_patch is None or (h <= n_patch and w <= n_patch):
            return self.illumination(x, gate)
        ys, xs = _tile_origins(h, n_patch), _tile_origins(w, n_patch)
        ph, pw = min(n_patch, h), min(n_patch, w)
        tiles = torch.stack([x[:, :, y:y + ph, x0:x0 + pw] for y in ys for x0 in xs], dim=1)
        est = self.illumination(tiles.reshape(-1, 4, ph, pw), gate.repeat_interleave(len(ys) * len(xs), dim=0))
        est = est.reshape(n, len(ys) * len(xs), 4)
        length = est.norm(dim=2, keepdim=True).clamp_min(1e-12)
        mean_dir = (est / length).mean(dim=1)
        mean_dir = mean_dir / mean_dir.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (mean_dir * length.mean(dim=1))[:, :, None, None]

    # -- local branch ------------------------------------------------------------------------
    def local(self, raw: torch.Tensor, coord: torch.Tensor, cond: dict[str, torch.Tensor],
              coords: torch.Tensor | list[torch.Tensor], exp: torch.Tensor | None = None,
              iso: torch.Tensor | None = None, pooling: GlobalPooling | None = None) -> torch.Tensor:
        """Run the encoder–decoder on (a tile of) the packed RAW → N×3×2H×2W.

        ``coords`` is the full-resolution attention grid (resized per level
        as the official code does) or a list of the grids at levels 0 and 1
        (tiles pass slices of the whole frame's grids).
        """
        lv = coords if isinstance(coords, (list, tuple)) else [coords, coords]
        x = torch.pow(raw, 1 / 2.2)
        cs0 = self.color_scaler_lv_0(cond["color_scaler"])
        cs64 = self.color_scaler_lv_1(cs0)
        x = x * cs0
        if self.config.iso_exp:
            if exp is None or iso is None:
                raise InputError("MetaISPNet: exp and iso are required by this configuration (iso_exp)")
            x = self.IsoExp(exp.reshape(-1, 1).float(), iso.reshape(-1, 1).float(), x)
        h = self.head(x)
        d1 = self.down1_0(torch.cat((h * cs64, coord.to(h.dtype)), 1))
        d1 = self.down1_3(self.down1_2(self.down1_1(d1, None, lv[0], pooling)))
        d2 = self.down2_2(self.down2_1(self.down2_0(d1), None, lv[1], pooling))
        d3 = self.down3_2(self.down3_1(self.down3_0(d2)))
        g = self.middle_group2(self.middle_group1(self.middle_conv1(d3)))
        m = (self.middle_conv2(g) + d3) * cond["bottleneck"] * cond["features"]
        emb = cond["embedding"]
        u3 = self.up3_conv(self.up3_att(self.up3_up(m))) + d2
        u2 = self.up2_conv(self.up2_att(self.up2_up(u3), self.emb_ada_up2(emb), lv[1], pooling)) + d1
        u1 = self.up1_conv(self.up1_att(self.up1_up(u2), self.emb_ada_up1(emb), lv[0], pooling)) + h
        return self.tail(u1)

    def render(self, raw, raw_full, color_scaler, coord, embedding, coords, exp=None, iso=None):
        """Forward pass with an explicit N×emb_dim×1×1 embedding (mixes of devices interpolate it)."""
        self._check(raw, raw_full)
        cond = self.condition(raw, raw_full, color_scaler, embedding)
        out = self.local(raw, coord, cond, coords, exp, iso)
        return (out, cond["color_scaler"]) if self.config.illuminant else out

    def default_inputs(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stand-ins for every input but ``raw``, so ``net(raw)`` runs (registry battery, ONNX export).

        The global view is the packed RAW's (B, (G_r+G_b)/2, R) resized to
        :func:`global_view_size`; colour scaler ones (already white-balanced);
        the coordinate grids of the packed size; exposure :data:`DEFAULT_EXPOSURE`
        and ISO :data:`DEFAULT_ISO` in the network's units. The stage builds the
        real inputs from the frame's metadata instead.
        """
        n, _, h, w = raw.shape
        bgr = torch.stack([raw[:, 0], 0.5 * (raw[:, 1] + raw[:, 3]), raw[:, 2]], dim=1)
        gh, gw = global_view_size(2 * int(h), 2 * int(w))
        mode = "area" if gh <= h and gw <= w else "bilinear"
        view = F.interpolate(bgr, size=(gh, gw), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        ones = torch.ones(n, 4, 1, 1, dtype=raw.dtype, device=raw.device)
        return {"raw_full": view, "color_scaler": ones,
                "coord": make_coord(int(h), int(w)).to(raw.device).expand(n, -1, -1, -1),
                "coords": make_attention_coords(int(h), int(w)).to(raw.device, raw.dtype).expand(n, -1, -1, -1),
                "exp": torch.full((n,), DEFAULT_EXPOSURE * 100, dtype=raw.dtype, device=raw.device),
                "iso": torch.full((n,), DEFAULT_ISO / 100, dtype=raw.dtype, device=raw.device)}

    def forward(self, raw, raw_full=None, color_scaler=None, coord=None, mobile_id=0, latent=False, coords=None,
                exp=None, iso=None):
        if not isinstance(raw, torch.Tensor) or raw.ndim != 4 or raw.shape[1] != 4:
            raise InputError(f"MetaISPNet: raw must be an N×4×H×W packed RAW tensor, got "
                             f"{getattr(raw, 'shape', type(raw).__name__)}")
        d = self.default_inputs(raw) if any(v is None for v in (raw_full, color_scaler, coord, coords, exp, iso)) \
            else {}
        raw_full = d["raw_full"] if raw_full is None else raw_full
        color_scaler = d["color_scaler"] if color_scaler is None else color_scaler
        coord = d["coord"] if coord is None else coord
        coords = d["coords"] if coords is None else coords
        exp = d["exp"] if exp is None else exp
        iso = d["iso"] if iso is None else iso
        if latent:
            if self.config.illuminant:
                raise ParameterError("MetaISPNet: the latent interpolation mode is not defined with the illuminant head")
            ids = [self.embed(i) for i in (2, 0, 1)]  # iPhone, Pixel, Galaxy
            ratios = torch.linspace(0, 1, self.config.latent_n)
            vectors = [(1.0 - r) * ids[0] + r * ids[1] for r in ratios]
            vectors += [(1.0 - r) * ids[1] + r * ids[2] for r in ratios]
            return [self.render(raw, raw_full, color_scaler, coord, v, coords, exp, iso) for v in vectors]
        return self.render(raw, raw_full, color_scaler, coord, self.embed(mobile_id), coords, exp, iso)


def global_view_size(height: int, width: int, area: int = GLOBAL_VIEW_AREA) -> tuple[int, int]:
    """Size (h, w) of the global view of a ``height``×``width`` mosaic: about ``area`` pixels, aspect kept.

    Notes
    -----
    Multiples of 16 (XCiT's patch), at least 32 (two patches, so its
    BatchNorms see more than one value), never larger than the mosaic
    rounded up to 16. A 2688² crop gives the release's 448².
    """
    s = min(1.0, math.sqrt(area / float(height * width)))

    def side(n: int) -> int:
        return max(32, min(int(math.ceil(n / 16) * 16), int(round(n * s / 16)) * 16))
    return side(height), side(width)


def receptive_radius() -> int:
    """Packed pixels on each side of an output pixel that reach it through the convolutions (144).

    Notes
    -----
    Beyond this the local branch sees the image only through its four global
    attention pools; a tile with this much context therefore reproduces the
    untiled result once the pools are shared (:class:`GlobalPooling`).
    3×3 convs per level (encoder + decoder): level 0: 6 + 6, level 1: 8,
    level 2: 8, level 3: 8, each costing 2^level packed pixels; the three
    DWT/IDWT pairs add up to 2·(1 + 2 + 4). Rounded up to a multiple of 8.
    """
    r = 12 + 2 * 8 + 4 * 8 + 8 * 8 + 2 * (1 + 2 + 4)
    return int(math.ceil(r / 8) * 8)
