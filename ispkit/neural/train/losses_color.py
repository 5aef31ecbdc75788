"""Colour losses on NCHW tensors: CIEDE2000 from display sRGB, and the angle between RGB vectors.

References
----------
Sharma, G., Wu, W., Dalal, E. N. (2005). The CIEDE2000 color-difference formula: implementation
notes, supplementary test data, and mathematical observations. *Color Res. Appl.* 30(1), 21–30.
IEC 61966-2-1:1999, sRGB. CIE 15:2004 Colorimetry.
Hordley, S. D., Finlayson, G. D. (2006). Reevaluation of color constancy algorithm performance.
*JOSA A* 23(5), 1008–1020.
"""

from __future__ import annotations

import math

import torch

from ...errors import ParameterError

__all__ = ["srgb_to_lab", "deltae2000", "deltae2000_loss", "angular_error", "angular_loss"]

#: IEC 61966-2-1's linear sRGB → XYZ (D65) matrix, as colour-science uses it.
_SRGB_TO_XYZ = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
#: The D65 white (x, y = 0.3127, 0.3290) as XYZ with Y = 1.
_D65_XYZ = (0.3127 / 0.3290, 1.0, (1.0 - 0.3127 - 0.3290) / 0.3290)
_EPS = 1e-12
_ACHROMATIC = 1e-5  # C′ below this counts as 0 (the square-root guard leaves C′ ≥ 1e-6)


def _channels_last(x: torch.Tensor, where: str) -> torch.Tensor:
    if x.ndim < 2 or x.shape[1] != 3:
        raise ParameterError(f"{where}: expected N×3(×H×W) tensors, got shape {tuple(x.shape)}")
    return x.movedim(1, -1)


def srgb_to_lab(srgb: torch.Tensor) -> torch.Tensor:
    """Convert display sRGB (channel axis 1, clipped to [0, 1]) to CIE Lab with the D65 white.

    Notes
    -----
    N×3(×H×W) float → the same shape, L* in [0, 100]. sRGB EOTF, IEC 61966-2-1's sRGB→XYZ
    matrix, CIE 1976 L*a*b* (ε = 216/24389, κ = 24389/27) — the numbers of
    :func:`ispkit.metrics.srgb_to_lab`, differentiable (linear below ε, so no infinite slope at 0).

    References
    ----------
    IEC 61966-2-1:1999; CIE 15:2004.
    """
    c = _channels_last(srgb, "srgb_to_lab").clamp(0.0, 1.0)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055).clamp_min(_EPS) ** 2.4)
    m = torch.tensor(_SRGB_TO_XYZ, device=c.device, dtype=c.dtype)
    xyz = lin @ m.T / torch.tensor(_D65_XYZ, device=c.device, dtype=c.dtype)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1.0 / 3.0), (kappa * xyz + 16.0) / 116.0)
    lab = torch.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                       200.0 * (f[..., 1] - f[..., 2])], dim=-1)
    return lab.movedim(-1, 1)


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x.clamp_min(_EPS))


def _hue(a: torch.Tensor, b: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Hue angle in [0, 2π), 0 where the chroma is 0 (with finite gradients there)."""
    ok = chroma > _ACHROMATIC
    h = torch.atan2(torch.where(ok, b, torch.zeros_like(b)), torch.where(ok, a, torch.ones_like(a)))
    return torch.where(ok, torch.remainder(h, 2.0 * math.pi), torch.zeros_like(h))


def _primed(lab1: torch.Tensor, lab2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """C′ and h′ of both colours (Sharma et al. eqs. 2–7)."""
    c_mean = 0.5 * (_sqrt(lab1[1] ** 2 + lab1[2] ** 2) + _sqrt(lab2[1] ** 2 + lab2[2] ** 2))
    g = 0.5 * (1.0 - _sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7)))
    a1, a2 = (1.0 + g) * lab1[1], (1.0 + g) * lab2[1]
    c1, c2 = _sqrt(a1 ** 2 + lab1[2] ** 2), _sqrt(a2 ** 2 + lab2[2] ** 2)
    return c1, c2, _hue(a1, lab1[2], c1), _hue(a2, lab2[2], c2)


def _hue_terms(c1: torch.Tensor, c2: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Δh′ and the mean hue h̄′ (eqs. 10 and 14), in radians."""
    zero = (c1 <= _ACHROMATIC) | (c2 <= _ACHROMATIC)
    d = h2 - h1
    dh = torch.where(d > math.pi, d - 2 * math.pi, torch.where(d < -math.pi, d + 2 * math.pi, d))
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    s = h1 + h2
    far = (h1 - h2).abs() > math.pi
    mean = torch.where(far, torch.where(s < 2 * math.pi, 0.5 * s + math.pi, 0.5 * s - math.pi), 0.5 * s)
    return dh, torch.where(zero, s, mean)


def deltae2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Return the CIEDE2000 difference between two Lab tensors (channel axis 1), per colour.

    Notes
    -----
    N×3(×H×W) Lab → N(×H×W) ΔE00, kL = kC = kH = 1. Differentiable: square roots and hue angles
    are guarded where the chroma or the difference is 0 (the value there is off by < 1e-5).

    References
    ----------
    Sharma, Wu, Dalal (2005), *Color Res. Appl.* 30(1), 21–30.
    """
    l1, l2 = _channels_last(lab1, "deltae2000").unbind(-1), _channels_last(lab2, "deltae2000").unbind(-1)
    c1, c2, h1, h2 = _primed(l1, l2)
    dh, h_mean = _hue_terms(c1, c2, h1, h2)
    dl, dc = l2[0] - l1[0], c2 - c1
    d_big_h = 2.0 * _sqrt(c1 * c2) * torch.sin(dh / 2.0)
    l_mean, c_mean = 0.5 * (l1[0] + l2[0]), 0.5 * (c1 + c2)
    t = (1 - 0.17 * torch.cos(h_mean - math.radians(30)) + 0.24 * torch.cos(2 * h_mean)
         + 0.32 * torch.cos(3 * h_mean + math.radians(6)) - 0.20 * torch.cos(4 * h_mean - math.radians(63)))
    d_theta = math.radians(30) * torch.exp(-(((torch.rad2deg(h_mean) - 275.0) / 25.0) ** 2))
    r_c = 2.0 * _sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / torch.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_t = -torch.sin(2 * d_theta) * r_c
    x, y, z = dl / s_l, dc / s_c, d_big_h / s_h
    return _sqrt(x ** 2 + y ** 2 + z ** 2 + r_t * y * z)


def deltae2000_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean CIEDE2000 between two display-sRGB batches (NCHW in [0, 1]).

    Notes
    -----
    :func:`srgb_to_lab` then :func:`deltae2000`, averaged over pixels and images. Values outside
    [0, 1] are clipped as a display would (no gradient pulls them back: pair it with L1).

    References
    ----------
    Sharma, Wu, Dalal (2005), *Color Res. Appl.* 30(1), 21–30.
    """
    return deltae2000(srgb_to_lab(pred), srgb_to_lab(target)).mean()


def angular_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the angle in degrees between RGB vectors along axis 1 (per vector, no reduction).

    Notes
    -----
    N×3 (illuminants) or N×3×H×W (pixels) → N or N×H×W degrees, as atan2(|a × b|, a · b) of the
    unit vectors; a tiny ε under the root keeps the gradient finite at 0°.

    References
    ----------
    Hordley, Finlayson (2006), *JOSA A* 23(5), 1008–1020.
    """
    if pred.shape != target.shape:
        raise ParameterError(f"angular_error: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    a = _channels_last(pred, "angular_error")
    b = _channels_last(target, "angular_error")
    a = a / _sqrt((a * a).sum(-1, keepdim=True))
    b = b / _sqrt((b * b).sum(-1, keepdim=True))
    cross = torch.linalg.cross(a, b, dim=-1)
    return torch.rad2deg(torch.atan2(_sqrt((cross * cross).sum(-1)), (a * b).sum(-1)))


def angular_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean :func:`angular_error` in degrees."""
    return angular_error(pred, target).mean()
