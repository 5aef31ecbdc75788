"""Tiny datasets and models for the trainer tests: fitting a fixed linear colour transform."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

#: The colour transform the tiny model learns (a saturation-boosting 3×3 matrix).
COLOR_MATRIX = torch.tensor([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [-0.1, -0.5, 1.6]])


class ColorPairs(Dataset):
    """``n`` random 3×8×8 images and their images under :data:`COLOR_MATRIX`."""

    def __init__(self, n: int = 12, seed: int = 0, fail_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, 8, 8, generator=g)
        self.y = torch.einsum("ij,njhw->nihw", COLOR_MATRIX, self.x)
        self.fail_at = fail_at
        self.reads = 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.reads += 1
        if self.fail_at is not None and self.reads == self.fail_at:
            raise KeyboardInterrupt  # a user's Ctrl-C while a batch is read
        return {"input": self.x[i], "target": self.y[i]}


class TinyNet(nn.Module):
    """A 1×1 conv with dropout (so the torch RNG state matters for resuming)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.drop(x))


def tiny_net(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()
