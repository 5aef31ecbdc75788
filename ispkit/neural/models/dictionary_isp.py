"""A model-based, exactly invertible ISP whose parameters are mixtures over learnable dictionaries.

Conde et al. (AAAI 2022) replace the black box of a learned ISP by the
classical steps — white balance, colour matrix, gamma, tone curve — whose
parameters a small encoder predicts per image as convex combinations of
*learnable dictionaries*: K colour matrices and K white-balance gain sets.
Every step is invertible in closed form, so one fitted model renders RAW →
RGB and reconstructs RGB → RAW (and synthesises RAW training data). No
official code was released; this module follows the paper's structure:

* white balance: per-channel gains ``g = exp(Σ_k w_k log G_k)`` (positive by
  construction; the overall brightness is part of the gains);
* colour matrix: ``M = Σ_k v_k C_k`` (camera RGB → linear sRGB), inverted
  with ``torch.linalg.inv`` in float64;
* gamma: ``x^(1/γ)`` with a learned γ > 1 and a linear toe below ``ε``
  (odd-symmetric, so negative values from the matrix invert too);
* tone curve: a learned monotone piecewise-linear map of [0, 1] onto [0, 1]
  (positive increments through softplus), continued linearly outside, so it
  is a bijection of the real line;
* two encoders predicting (w, v): one from camera RGB (RAW → RGB) and one
  from sRGB (RGB → RAW), each a three-layer strided CNN on a 64×64 area
  average of the image plus its log channel means.

References
----------
.. [1] Conde, M. V., McDonagh, S., Maggioni, M., Leonardis, A.,
   Pérez-Pellitero, E. "Model-Based Image Signal Processors via Learnable
   Dictionaries." AAAI 2022. arXiv:2201.03210.
.. [2] Brooks, T., et al. "Unprocessing Images for Learned Raw Denoising."
   CVPR 2019 (the invertible steps and their order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ispkit.errors import InputError, ParameterError

__all__ = ["DictionaryParams", "ParamEncoder", "MonotoneToneCurve", "DictionaryISP", "packed_to_camera_rgb"]

#: Side of the area-averaged thumbnail the encoders see.
ENCODER_SIDE = 64
#: Below this magnitude the gamma curve is linear (finite slope at 0).
GAMMA_TOE = 1e-3


@dataclass(frozen=True)
class DictionaryParams:
    """Per-image parameters of the ISP: ``wb_gains`` N×3 and ``ccm`` N×3×3 (camera RGB → linear sRGB)."""

    wb_gains: torch.Tensor
    ccm: torch.Tensor


def packed_to_camera_rgb(packed: torch.Tensor) -> torch.Tensor:
    """Average the two greens of packed R, Gr, Gb, B planes: N×4×H×W → N×3×H×W camera RGB."""
    if packed.ndim != 4 or packed.shape[1] != 4:
        raise InputError(f"DictionaryISP: expected N×4×H×W packed R, Gr, Gb, B planes, got {tuple(packed.shape)}")
    return torch.cat([packed[:, :1], 0.5 * (packed[:, 1:2] + packed[:, 2:3]), packed[:, 3:]], 1)


class ParamEncoder(nn.Module):
    """Predict mixture weights over K WB gain sets and K colour matrices from an N×3×H×W image.

    Notes
    -----
    The image is area-averaged to 64×64 (so the cost and the receptive field
    do not depend on its size), passed through three stride-2 3×3
    convolutions, average- and max-pooled, concatenated with the log of its
    channel means, and mapped by one linear layer to 2K logits; softmax
    gives the two weight vectors (each N×K, rows summing to 1).
    """

    def __init__(self, k: int, width: int = 16) -> None:
        super().__init__()
        w = int(width)
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(4 * w + 3, 2 * k)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.k = int(k)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        thumb = F.adaptive_avg_pool2d(x, ENCODER_SIDE)
        f = self.features(thumb)
        stats = torch.log(thumb.clamp_min(0).mean((2, 3)) + 1e-4)
        logits = self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3)), stats], 1))
        return torch.softmax(logits[:, : self.k], 1), torch.softmax(logits[:, self.k:], 1)


class MonotoneToneCurve(nn.Module):
    """A learned strictly increasing piecewise-linear curve, [0, 1] onto [0, 1], extended linearly.

    Notes
    -----
    ``knots`` equal segments of [0, 1]; segment i rises by
    ``softplus(θ_i) / Σ softplus(θ)`` (positive increments summing to 1),
    so f(0) = 0, f(1) = 1. Outside [0, 1] the end segments continue, which
    makes f a bijection of the real line with a closed-form inverse.
    Initialised to the identity.
    """

    def __init__(self, knots: int = 16) -> None:
        super().__init__()
        if int(knots) != knots or knots < 1:
            raise ParameterError(f"MonotoneToneCurve: knots must be an int >= 1, got {knots!r}")
        self.knots = int(knots)
        self.theta = nn.Parameter(torch.zeros(self.knots))

    def increments(self) -> torch.Tensor:
        d = F.softplus(self.theta) + 1e-4
        return d / d.sum()

    def _table(self, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.increments().to(ref.dtype)
        start = torch.cat([d.new_zeros(1), torch.cumsum(d, 0)[:-1]])
        return start, d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start, d = self._table(x)
        t = x * self.knots
        idx = torch.floor(t).clamp(0, self.knots - 1)
        i = idx.long()
        return start[i] + (t - idx) * d[i]

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        start, d = self._table(y)
        i = torch.bucketize(y.contiguous(), start[1:].contiguous(), right=True)
        return (i.to(y.dtype) + (y - start[i]) / d[i]) / self.knots


class DictionaryISP(nn.Module):
    """Render RAW → sRGB and reconstruct sRGB → RAW with dictionary-mixture WB, CCM, gamma and tone.

    Parameters
    ----------
    k : dictionary size (K colour matrices and K gain sets).
    knots : segments of the tone curve.
    encoder_width : channels of the encoders' first convolution.
    init_ccms : optional K×3×3 initial colour matrices (camera RGB → linear
        sRGB), e.g. from real cameras; default the identity plus small
        deterministic perturbations.

    Notes
    -----
    ``forward`` takes N×4×H×W packed R, Gr, Gb, B planes (black-level
    normalised), averages the greens, upsamples bilinearly to 2H×2W and
    renders N×3×2H×2W display sRGB (not clipped). :meth:`render` /
    :meth:`unrender` work on N×3×H×W camera RGB / sRGB and are exact
    inverses for the same :class:`DictionaryParams`. Default size (K = 8,
    16 knots, width 16): 30 961 parameters.

    References
    ----------
    .. [1] Conde et al., "Model-Based Image Signal Processors via Learnable
       Dictionaries", AAAI 2022.
    """

    size_multiple = 1

    def __init__(self, k: int = 8, knots: int = 16, encoder_width: int = 16,
                 init_ccms: torch.Tensor | None = None) -> None:
        super().__init__()
        if int(k) != k or k < 1:
            raise ParameterError(f"DictionaryISP: k must be an int >= 1, got {k!r}")
        self.k = int(k)
        if init_ccms is None:
            g = torch.Generator().manual_seed(0)
            init_ccms = torch.eye(3).expand(self.k, 3, 3) + 0.05 * torch.randn(self.k, 3, 3, generator=g)
        init_ccms = torch.as_tensor(init_ccms, dtype=torch.float32)
        if init_ccms.shape != (self.k, 3, 3):
            raise ParameterError(f"DictionaryISP: init_ccms must be {self.k}×3×3, got {tuple(init_ccms.shape)}")
        self.ccms = nn.Parameter(init_ccms.clone())
        spread = torch.linspace(-0.3, 0.3, self.k)
        self.log_gains = nn.Parameter(torch.stack([0.7 + spread, torch.zeros(self.k), 0.45 - spread], 1))
        self.log_gamma_minus_1 = nn.Parameter(torch.tensor(math.log(1.2)))  # γ = 2.2
        self.tone = MonotoneToneCurve(knots)
        self.encoder_raw = ParamEncoder(self.k, encoder_width)
        self.encoder_rgb = ParamEncoder(self.k, encoder_width)

    @property
    def scale(self) -> float:
        """Output size over packed input size (2: full sensor resolution)."""
        return 2.0

    @property
    def gamma(self) -> torch.Tensor:
        return 1.0 + torch.exp(self.log_gamma_minus_1)

    # -- parameters ------------------------------------------------------------
    def mix(self, w_gain: torch.Tensor, w_ccm: torch.Tensor) -> DictionaryParams:
        """Mix the dictionaries with weights N×K (gains) and N×K (matrices)."""
        gains = torch.exp(w_gain @ self.log_gains)
        ccm = torch.einsum("nk,kij->nij", w_ccm, self.ccms)
        return DictionaryParams(wb_gains=gains, ccm=ccm)

    def params_from_raw(self, camera_rgb: torch.Tensor) -> DictionaryParams:
        """Parameters for rendering, predicted from N×3×H×W linear camera RGB."""
        w_gain, w_ccm = self.encoder_raw(camera_rgb.clamp_min(0) ** 0.5)
        return self.mix(w_gain, w_ccm)

    def params_from_rgb(self, srgb: torch.Tensor) -> DictionaryParams:
        """Parameters for reconstruction, predicted from N×3×H×W display sRGB."""
        w_gain, w_ccm = self.encoder_rgb(srgb)
        return self.mix(w_gain, w_ccm)

    # -- the invertible steps ------------------------------------------------------
    def _gamma_compress(self, x: torch.Tensor) -> torch.Tensor:
        p = 1.0 / self.gamma.to(x.dtype)
        a = x.abs()
        power = a.clamp_min(GAMMA_TOE) ** p
        linear = a * GAMMA_TOE ** (p - 1.0)
        return torch.sign(x) * torch.where(a >= GAMMA_TOE, power, linear)

    def _gamma_expand(self, y: torch.Tensor) -> torch.Tensor:
        g = self.gamma.to(y.dtype)
        knee = GAMMA_TOE ** (1.0 / g)
        b = y.abs()
        power = b.clamp_min(knee) ** g
        linear = b / GAMMA_TOE ** (1.0 / g - 1.0)
        return torch.sign(y) * torch.where(b >= knee, power, linear)

    def render(self, camera_rgb: torch.Tensor, params: DictionaryParams | None = None) -> torch.Tensor:
        """Camera RGB → display sRGB: gains, matrix, gamma, tone curve."""
        p = self.params_from_raw(camera_rgb) if params is None else params
        x = camera_rgb * p.wb_gains.to(camera_rgb.dtype)[:, :, None, None]
        x = torch.einsum("nij,njhw->nihw", p.ccm.to(x.dtype), x)
        return self.tone(self._gamma_compress(x))

    def unrender(self, srgb: torch.Tensor, params: DictionaryParams | None = None) -> torch.Tensor:
        """Display sRGB → camera RGB: the exact inverse of :meth:`render` for the same parameters."""
        p = self.params_from_rgb(srgb) if params is None else params
        x = self._gamma_expand(self.tone.inverse(srgb))
        inv = torch.linalg.inv(p.ccm.double()).to(x.dtype)
        x = torch.einsum("nij,njhw->nihw", inv, x)
        return x / p.wb_gains.to(x.dtype)[:, :, None, None]

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        cam = packed_to_camera_rgb(packed)
        params = self.params_from_raw(cam)
        full = F.interpolate(cam, scale_factor=2, mode="bilinear", align_corners=False)
        return self.render(full, params)
