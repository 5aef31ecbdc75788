"""Shared helper for the per-family "overfits a tiny batch" tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_mse(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, opt: torch.optim.Optimizer,
            steps: int, goal: float = 0.1) -> tuple[float, float]:
    """Minimise MSE(model(x), target) for up to ``steps`` steps, stopping once the loss is ``goal`` × the
    first; return (first loss, lowest loss). Gradients of the last step stay on the parameters.

    The lowest loss, not the last, is returned so one uphill Adam step at the end cannot decide the
    test, and ``steps`` should leave a wide margin over the steps the goal takes here (the loop stops
    early, so the margin costs nothing where the goal comes fast): another CPU's floating-point path
    (AVX-512 vs AVX2 kernels) follows a slightly different trajectory. A model whose gradients do not
    flow still fails — its loss never falls to a tenth.
    """
    first = best = None
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        value = loss.item()
        first = first if first is not None else value
        best = value if best is None else min(best, value)
        if best <= goal * first:
            break
    return first, best
