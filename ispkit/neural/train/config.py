"""The training configuration: one dataclass, checked when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ...errors import ParameterError

__all__ = ["TrainConfig", "SCHEDULES", "SAVE_FORMATS"]

#: Learning-rate schedules :class:`TrainConfig` accepts.
SCHEDULES = ("cosine", "step", "constant")
#: Formats of the ``best`` checkpoint.
SAVE_FORMATS = ("pth", "safetensors")


@dataclass
class TrainConfig:
    """Everything the :class:`~ispkit.neural.train.Trainer` loop needs besides model, data and loss.

    Parameters
    ----------
    out_dir : folder for ``last.ckpt``, ``best.pth`` (or ``.safetensors``) and ``log.csv``.
    epochs : passes over the training data (ignored when ``max_steps`` is set).
    max_steps : stop after this many optimiser steps, running as many epochs as that takes.
    batch_size : samples per step.
    lr : peak learning rate of AdamW.
    weight_decay : AdamW's decoupled weight decay.
    schedule : ``"cosine"`` (to zero over the run), ``"step"`` (× ``gamma`` every ``step_size`` steps)
        or ``"constant"``.
    step_size, gamma : the ``"step"`` schedule.
    grad_clip : clip the global gradient norm to this (``None``: no clipping).
    amp : mixed precision; effective on CUDA only.
    seed : seeds Python, NumPy and torch, the sampling order and the loaders' crops.
    device : ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``None`` / ``"auto"`` (CUDA when present).
    val_every : validate every this many epochs (and once at the end).
    checkpoint_every : also write ``last.ckpt`` every this many steps (``None``: at epoch ends).
    best_metric, best_mode : the validation metric that picks ``best`` and whether higher
        (``"max"``) or lower (``"min"``) is better.
    num_workers : DataLoader worker processes.
    progress : show a tqdm progress bar.
    log_csv : append one row per validation to ``out_dir/log.csv``.
    tensorboard : also log to TensorBoard (when the ``tensorboard`` package is installed).
    save_format : ``"pth"`` or ``"safetensors"`` for the best weights.

    References
    ----------
    Loshchilov, I., Hutter, F. (2019). Decoupled weight decay regularization. *ICLR*.
    Loshchilov, I., Hutter, F. (2017). SGDR: stochastic gradient descent with warm restarts. *ICLR*.
    """

    out_dir: Path
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: str = "cosine"
    step_size: int = 1000
    gamma: float = 0.5
    grad_clip: float | None = 1.0
    amp: bool = True
    seed: int = 0
    device: str | None = None
    val_every: int = 1
    checkpoint_every: int | None = None
    best_metric: str = "psnr"
    best_mode: str = "max"
    num_workers: int = 0
    progress: bool = True
    log_csv: bool = True
    tensorboard: bool = False
    save_format: str = "pth"

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        for name in ("epochs", "batch_size", "step_size", "val_every"):
            _check_int(name, getattr(self, name), 1)
        _check_int("num_workers", self.num_workers, 0)
        _check_int("seed", self.seed, 0)
        for name in ("max_steps", "checkpoint_every"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("best_mode", self.best_mode, ("max", "min"))
        _check_choice("save_format", self.save_format, SAVE_FORMATS)
        _check_positive("lr", self.lr)
        _check_positive("gamma", self.gamma)
        if self.grad_clip is not None:
            _check_positive("grad_clip", self.grad_clip)
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ParameterError(f"TrainConfig.weight_decay must be a number >= 0, got {self.weight_decay!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain values (``out_dir`` as a string)."""
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d

    def replace(self, **changes: Any) -> "TrainConfig":
        """Return a copy with some fields changed (unknown names raise)."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ParameterError(f"TrainConfig has no field(s) {', '.join(bad)}; "
                                 f"valid fields: {', '.join(sorted(known))}")
        return TrainConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParameterError(f"TrainConfig.{name} must be an integer >= {low}, got {value!r}")


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ParameterError(f"TrainConfig.{name} must be a number > 0, got {value!r}")


def _check_choice(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ParameterError(f"TrainConfig.{name} must be one of {', '.join(map(repr, valid))}, got {value!r}")
