"""Fixtures shared by the neural tests."""

from __future__ import annotations

import pytest

from ispkit.pipeline import models as _models


@pytest.fixture(autouse=True)
def _random_weights_said_afresh(monkeypatch):
    """Each test sees the once-per-process RandomWeightsWarning afresh (pytest.warns stays order-independent)."""
    monkeypatch.setattr(_models, "_ANNOUNCED_RANDOM", set())
