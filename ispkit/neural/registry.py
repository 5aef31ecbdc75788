"""The model zoo registry: ``arch.variant`` name → builder + :class:`WeightsSpec`.

Families register their models by explicit import (``ispkit.neural.zoo``
imports every family module); :func:`create_model` is the one factory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from ..errors import ConfigError, ParameterError, WeightsError, unknown_name
from .device import DTYPES, resolve_device
from .weights import WeightsSpec, fit_state_dict, load_state_dict, sha256_file, unwrap_state_dict

__all__ = ["ModelEntry", "MODELS", "register_model", "create_model", "list_models", "get_model_entry"]

#: Parameter dtypes :func:`create_model` accepts (float64 for gradient checks).
PARAM_DTYPES = {**DTYPES, "float64": torch.float64}

_NAME_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_.]+$")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and where its weights come from."""

    name: str
    builder: Callable[[], nn.Module]
    weights: WeightsSpec
    description: str
    family: str


#: Every registered model, by ``arch.variant`` name.
MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, builder: Callable[[], nn.Module], weights: WeightsSpec, *,
                   description: str = "", family: str | None = None) -> None:
    """Add a model to :data:`MODELS`.

    Parameters
    ----------
    name : ``"arch.variant"`` in lowercase (e.g. ``"fc4.cwp"``).
    builder : a zero-argument callable returning a freshly initialised ``nn.Module``.
    weights : the official checkpoint's :class:`WeightsSpec`.
    description : one line shown by ``ispkit models``.
    family : defaults to the part of ``name`` before the first dot.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"model name must look like 'arch.variant' (lowercase), got {name!r}")
    if not callable(builder):
        raise ConfigError(f"model {name!r}: builder must be callable, got {type(builder).__name__}")
    if not isinstance(weights, WeightsSpec):
        raise ConfigError(f"model {name!r}: weights must be a WeightsSpec, got {type(weights).__name__}")
    fam = family if family is not None else name.split(".", 1)[0]
    existing = MODELS.get(name)
    if existing is not None:
        same = (getattr(existing.builder, "__module__", None) == getattr(builder, "__module__", None)
                and getattr(existing.builder, "__qualname__", None) == getattr(builder, "__qualname__", None))
        if not same:
            raise ConfigError(
                f"model name {name!r} is already registered by {existing.builder.__module__}; "
                "pick another variant name"
            )
    MODELS[name] = ModelEntry(name=name, builder=builder, weights=weights,
                              description=description, family=fam)


def list_models(family: str | None = None) -> list[str]:
    """Sorted registered model names, optionally of one family."""
    return sorted(n for n, e in MODELS.items() if family is None or e.family == family)


def get_model_entry(name: str) -> ModelEntry:
    """Return the :class:`ModelEntry` of ``name``; unknown names list the valid ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise unknown_name("model", name, MODELS, "ispkit.neural") from None


def create_model(name: str, weights: str | Path | Mapping[str, torch.Tensor] | None = None, *,
                 device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
                 eval: bool = True) -> nn.Module:
    """Build a registered model, optionally load weights, and place it.

    Parameters
    ----------
    name : a registered ``arch.variant`` name (see :func:`list_models`).
    weights : a checkpoint path or state dict; ``None`` keeps the random initialisation.
    device : ``"cpu"``, ``"auto"``, ``"cuda"`` or ``"cuda:N"``.
    dtype : parameter dtype, ``"float32"`` (default), ``"float64"``, ``"float16"`` or ``"bfloat16"``.
    eval : put the model in eval mode.

    Raises
    ------
    UnknownNameError : ``name`` is not registered.
    WeightsError : the checkpoint does not fit, or its SHA-256 differs from the spec's.
    """
    entry = get_model_entry(name)
    state: Mapping[str, torch.Tensor] | None = None
    if weights is not None:
        if isinstance(weights, (str, Path)):
            p = Path(weights)
            if entry.weights.sha256 and p.is_file():
                digest = sha256_file(p)
                if digest.lower() != entry.weights.sha256.lower():
                    raise WeightsError(
                        f"weights file {str(p)!r} has SHA-256 {digest}, but the official {name!r} checkpoint "
                        f"({entry.weights.url}) has {entry.weights.sha256}; the file is corrupt or another "
                        "checkpoint — download it again or load it with load_weights() directly"
                    )
            state = load_state_dict(p)  # read (and fail) before paying for the build
            source, assign = f"file {str(p)!r}", True
        elif isinstance(weights, Mapping):
            state = unwrap_state_dict(weights, name=name)
            source, assign = "the given state dict", False
        else:
            raise WeightsError(f"weights for model {name!r} must be a path or a state dict, got {type(weights).__name__}")
    model = entry.builder()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the builder of model {name!r} returned {type(model).__name__}, not an nn.Module")
    if state is not None:
        fit_state_dict(model, state, key_remap=entry.weights.key_remap, name=name, source=source, assign=assign)
    dev = resolve_device(device)
    if dtype is not None:
        dt = PARAM_DTYPES.get(dtype) if isinstance(dtype, str) else dtype
        if dt not in PARAM_DTYPES.values():
            raise ParameterError(f"create_model: dtype must be one of {', '.join(PARAM_DTYPES)}, got {dtype!r}")
        model = model.to(device=dev, dtype=dt)
    else:
        model = model.to(device=dev)
    if not isinstance(eval, bool):
        raise ParameterError(f"create_model: eval must be a bool, got {eval!r}")
    model.train(not eval)
    return model
