"""The stage registry: type name → Stage class.

Stages register by explicit import (``@register_stage`` in their module);
modules that are costly to import (the neural stages import torch) are named
as *providers* and imported the first time a name is not found.
"""

from __future__ import annotations

import importlib
from typing import TypeVar

from ..errors import ConfigError, unknown_name
from .stage import Stage

__all__ = ["STAGES", "register_stage", "register_provider", "get_stage_class", "stage_names"]

STAGES: dict[str, type[Stage]] = {}
_PROVIDERS: list[str] = []
_LOADED: set[str] = set()

S = TypeVar("S", bound=type)


def register_stage(cls: S) -> S:
    """Class decorator: add a Stage subclass to :data:`STAGES` under ``cls.type_name``."""
    name = getattr(cls, "type_name", "")
    if not name:
        raise ConfigError(f"{cls.__name__} has no type_name; set the class attribute before registering")
    existing = STAGES.get(name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ConfigError(f"stage name {name!r} is taken by {existing.__module__}.{existing.__qualname__}")
    STAGES[name] = cls  # type: ignore[assignment]
    return cls


def register_provider(module: str) -> None:
    """Name a module that registers stages when imported (imported lazily)."""
    if module not in _PROVIDERS:
        _PROVIDERS.append(module)


def load_providers() -> list[str]:
    """Import every provider module; return the ones that could not be imported."""
    failed = []
    for mod in _PROVIDERS:
        if mod in _LOADED:
            continue
        try:
            importlib.import_module(mod)
            _LOADED.add(mod)
        except ImportError:
            failed.append(mod)
    return failed


def get_stage_class(name: str) -> type[Stage]:
    """Return the Stage class registered as ``name``; unknown names list the valid ones."""
    if name not in STAGES:
        load_providers()
    if name not in STAGES:
        raise unknown_name("stage type", name, STAGES)
    return STAGES[name]


def stage_names(include_providers: bool = True) -> list[str]:
    """Sorted registered stage type names."""
    if include_providers:
        load_providers()
    return sorted(STAGES)
