"""Training checkpoints: the full state for resuming, and the plain weights for :func:`create_model`.

``last.ckpt`` holds model, optimiser, scheduler and AMP-scaler state, the
Python / NumPy / torch RNG states, the step, epoch and best score — all as
tensors and plain values, so it reads back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import WeightsError

__all__ = ["capture_rng", "restore_rng", "save_checkpoint", "load_checkpoint", "save_weights", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Return the global RNG states as tensors and plain values (safe for ``weights_only`` loading)."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": [version, list(state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Set the global RNG states captured by :func:`capture_rng`."""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write a resumable training state to ``path`` atomically (write, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(state, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_checkpoint` (``weights_only=True``, on the CPU).

    Raises
    ------
    WeightsError : the file is missing or not a training checkpoint.
    """
    if not path.is_file():
        raise WeightsError(f"no training checkpoint at {str(path)!r} to resume from; run without resume first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise WeightsError(f"training checkpoint {str(path)!r} could not be read ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); delete it to start afresh") from exc
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise WeightsError(f"{str(path)!r} is not an ispkit training checkpoint (no model/step entries)")
    return state


def save_weights(model: nn.Module, path: Path, save_format: str = "pth") -> Path:
    """Write ``model``'s state dict as ``path`` (``.pth`` via torch, ``.safetensors`` via safetensors).

    Notes
    -----
    The result is a plain state dict that ``create_model(name, weights=path)`` loads.
    """
    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if save_format == "safetensors":
        from safetensors.torch import save_file

        tmp = path.with_name(path.name + ".tmp")
        save_file(_untie(sd), str(tmp))
        os.replace(tmp, path)
    else:
        _atomic_save(sd, path)
    return path


def _untie(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clone tensors that share storage (safetensors refuses shared memory)."""
    seen: set[int] = set()
    out = {}
    for k, v in sd.items():
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out
