"""Shared fixtures: where the real test data lives, and small synthetic frames."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

warnings.filterwarnings("ignore", message=".*Matplotlib.*")


def data_path(*parts: str) -> Path:
    """Path into ../shared/data, skipping the test with a clear reason when absent."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test data {p} is absent (expected ../shared/data beside the repo)")
    return p


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_configure(config):
    """Run torch single-threaded in tests: tiny tensors gain nothing from threads, and on a
    shared 2-core machine OpenMP spin-waiting made HAT forward/backward 50× slower."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
