"""Training losses: pixel, structural, colour and perceptual.

Every loss here is a function of ``(pred, target)`` tensors in NCHW float;
:func:`on_target` turns one into the ``loss(pred, batch)`` the
:class:`~ispkit.neural.train.Trainer` calls, and :func:`weighted` sums several.
Structural, colour and perceptual terms live in :mod:`.losses_ssim`,
:mod:`.losses_color` and :mod:`.losses_vgg` and are re-exported here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ...errors import ParameterError

__all__ = ["on_target", "weighted", "l1", "mse", "charbonnier", "ssim", "ms_ssim", "ssim_loss", "ms_ssim_loss",
           "srgb_to_lab", "deltae2000", "deltae2000_loss", "angular_error", "angular_loss", "VGGPerceptual"]

PairLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def on_target(fn: PairLoss, key: str = "target") -> Callable[[torch.Tensor, dict[str, Any]], torch.Tensor]:
    """Adapt ``fn(pred, target)`` to the trainer's ``loss(pred, batch)`` reading ``batch[key]``."""
    if not callable(fn):
        raise ParameterError(f"on_target: fn must be callable, got {type(fn).__name__}")

    def loss(pred: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if key not in batch:
            raise ParameterError(f"loss: the batch has no {key!r} entry (it has {', '.join(map(repr, batch))})")
        return fn(pred, batch[key].to(pred.dtype))

    loss.__name__ = f"on_target({getattr(fn, '__name__', type(fn).__name__)})"
    return loss


def weighted(terms: Mapping[PairLoss, float]) -> PairLoss:
    """Return ``fn(pred, target) = Σ w · term(pred, target)`` over ``terms`` (loss → weight)."""
    items = list(terms.items())
    if not items or not all(callable(f) for f, _ in items):
        raise ParameterError("weighted: expected a non-empty mapping of callable losses to weights")

    def total(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(float(w) * f(pred, target) for f, w in items)  # type: ignore[return-value]

    return total


def _check_pair(pred: torch.Tensor, target: torch.Tensor, where: str) -> None:
    if pred.shape != target.shape:
        raise ParameterError(f"{where}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean absolute error."""
    _check_pair(pred, target, "l1")
    return (pred - target).abs().mean()


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean squared error."""
    _check_pair(pred, target, "mse")
    return (pred - target).pow(2).mean()


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Return the mean Charbonnier penalty sqrt((pred − target)² + eps²).

    Notes
    -----
    A differentiable L1: quadratic for errors below ``eps``, linear above.

    References
    ----------
    Charbonnier, P., Blanc-Féraud, L., Aubert, G., Barlaud, M. (1994). Two deterministic
    half-quadratic regularization algorithms for computed imaging. *ICIP*, 168–172.
    """
    _check_pair(pred, target, "charbonnier")
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


from .losses_color import angular_error, angular_loss, deltae2000, deltae2000_loss, srgb_to_lab  # noqa: E402
from .losses_ssim import ms_ssim, ms_ssim_loss, ssim, ssim_loss  # noqa: E402
from .losses_vgg import VGGPerceptual  # noqa: E402
