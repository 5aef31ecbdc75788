"""Optimiser and learning-rate schedules, stepped once per optimiser step."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor"]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Return AdamW over the trainable parameters of ``model``.

    References
    ----------
    Loshchilov, I., Hutter, F. (2019). Decoupled weight decay regularization. *ICLR*.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Return the multiplier of the peak learning rate at optimiser step ``step`` of ``total``.

    Notes
    -----
    ``"cosine"``: 0.5 (1 + cos(π step / total)), from 1 at the start to 0 at the end (one SGDR
    cycle without restarts); ``"step"``: ``gamma ** (step // step_size)``; ``"constant"``: 1.

    References
    ----------
    Loshchilov, I., Hutter, F. (2017). SGDR: stochastic gradient descent with warm restarts. *ICLR*.
    """
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    if config.schedule == "step":
        return config.gamma ** (step // config.step_size)
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, total: int,
                    config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Return a per-step scheduler following :func:`lr_factor` over ``total`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, config))
