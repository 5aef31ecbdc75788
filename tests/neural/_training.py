"""Shared helper for the per-family "overfits a tiny batch" tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_mse(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, opt: torch.optim.Optimizer,
            steps: int) -> tuple[float, float]:
    """Minimise MSE(model(x), target) for up to ``steps`` steps, stopping once the loss is a tenth
    of the first; return (first loss, last loss). Gradients of the last step stay on the parameters."""
    first = last = None
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        last = loss.item()
        first = first if first is not None else last
        if last <= 0.1 * first:
            break
    return first, last
