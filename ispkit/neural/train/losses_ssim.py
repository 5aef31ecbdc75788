"""SSIM and MS-SSIM on NCHW tensors, differentiable, with the authors' Gaussian window.

References
----------
Wang, Z., Bovik, A. C., Sheikh, H. R., Simoncelli, E. P. (2004). Image quality assessment:
from error visibility to structural similarity. *IEEE TIP* 13(4), 600–612.
Wang, Z., Simoncelli, E. P., Bovik, A. C. (2003). Multiscale structural similarity for image
quality assessment. *Asilomar Conference on Signals, Systems and Computers*, 1398–1402.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import ParameterError

__all__ = ["ssim", "ms_ssim", "ssim_loss", "ms_ssim_loss", "MS_SSIM_WEIGHTS"]

_K1, _K2 = 0.01, 0.03
#: The five scale weights of Wang et al. (2003), finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    k = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(k ** 2) / (2.0 * sigma ** 2))
    return (g / g.sum()).to(device=like.device, dtype=like.dtype)


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of each channel of NCHW ``x``."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def _check(pred: torch.Tensor, target: torch.Tensor, size: int, where: str) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ParameterError(f"{where}: expected two NCHW tensors of one shape, got {tuple(pred.shape)} "
                             f"and {tuple(target.shape)}")
    if min(pred.shape[-2:]) < size:
        raise ParameterError(f"{where}: images of {pred.shape[-2]}×{pred.shape[-1]} are smaller than the "
                             f"{size}×{size} window; use larger crops")


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, data_range: float, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean SSIM and mean contrast-structure term (N, C each)."""
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    vx = _blur(x * x, g) - mx * mx
    vy = _blur(y * y, g) - my * my
    cxy = _blur(x * y, g) - mx * my
    cs = (2.0 * cxy + c2) / (vx + vy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(dim=(-2, -1)), cs.mean(dim=(-2, -1))


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Return the mean structural similarity of two NCHW batches (a 0-d tensor).

    Notes
    -----
    NCHW float of at least ``window_size`` pixels a side. An 11×11 Gaussian window (σ = 1.5),
    K1 = 0.01, K2 = 0.03, statistics without the N/(N−1) correction, the SSIM map averaged over
    the 'valid' region and then over channels and images — the numbers of
    :func:`ispkit.metrics.ssim` (the authors' ``ssim_index.m``).

    References
    ----------
    Wang, Bovik, Sheikh, Simoncelli (2004), *IEEE TIP* 13(4), 600–612.
    """
    _check(pred, target, window_size, "ssim")
    s, _ = _ssim_cs(pred, target, data_range, _window(window_size, sigma, pred))
    return s.mean()


def ms_ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, scales: int = 5,
            window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Return the multi-scale SSIM of two NCHW batches (a 0-d tensor).

    Notes
    -----
    NCHW float of at least ``window_size · 2**(scales − 1)`` pixels a side. The contrast-structure
    term at each of the first ``scales − 1`` scales and the full SSIM at the coarsest one, raised
    to Wang et al.'s weights (as published for 5 scales, renormalised to sum 1 for fewer) and
    multiplied; 2×2 average pooling between scales. Terms below 1e-8 are clipped to 1e-8 so the power stays real
    and its gradient finite.

    References
    ----------
    Wang, Simoncelli, Bovik (2003), Multiscale structural similarity for image quality assessment.
    """
    if not isinstance(scales, int) or not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise ParameterError(f"ms_ssim: scales must be an integer in 1..5, got {scales!r}")
    _check(pred, target, window_size * 2 ** (scales - 1), f"ms_ssim ({scales} scales)")
    w = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=pred.dtype, device=pred.device)
    if scales < len(MS_SSIM_WEIGHTS):
        w = w / w.sum()
    g = _window(window_size, sigma, pred)
    terms = []
    x, y = pred, target
    for j in range(scales):
        s, cs = _ssim_cs(x, y, data_range, g)
        terms.append((s if j == scales - 1 else cs).clamp_min(1e-8))
        if j < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(terms, dim=0)  # scales, N, C
    return torch.prod(stacked ** w.view(-1, 1, 1), dim=0).mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Return 1 − :func:`ssim` (0 for identical images)."""
    return 1.0 - ssim(pred, target, data_range)


def ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, scales: int = 5) -> torch.Tensor:
    """Return 1 − :func:`ms_ssim` (0 for identical images)."""
    return 1.0 - ms_ssim(pred, target, data_range, scales)
