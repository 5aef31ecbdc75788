"""One training loop for every registry model.

:class:`Trainer` runs AdamW with a per-step learning-rate schedule, gradient
clipping and (on CUDA) mixed precision; it validates, keeps the best weights
by a validation metric, logs to CSV, and checkpoints everything needed to
resume bit for bit: model, optimiser, scheduler, AMP scaler, the global RNG
states, and where in which epoch it stopped. The sample order of each epoch
and the loaders' random crops depend only on the seed and the epoch, so a
resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ...errors import ISPError, ParameterError
from ..device import resolve_device
from .checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint, save_weights, seed_everything
from .config import TrainConfig
from .log import CSVLog, open_tensorboard
from .schedule import build_optimizer, build_scheduler

__all__ = ["Trainer", "TrainResult", "default_forward", "psnr_metric", "batch_to", "set_epoch"]

Batch = dict[str, Any]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` leaves behind.

    Attributes
    ----------
    best_path : the best weights (a plain state dict for ``create_model(..., weights=)``), or ``None``
        when the run stopped before its first validation.
    last_path : ``last.ckpt``, the resumable training state.
    history : one dict per validation (``epoch``, ``step``, ``lr``, ``loss``, ``val_<metric>`` …).
    steps : optimiser steps done in total.
    interrupted : the run was stopped by Ctrl-C (``KeyboardInterrupt``) and checkpointed.
    """

    best_path: Path | None
    last_path: Path
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    interrupted: bool = False


def default_forward(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Return ``model(batch["input"])``."""
    return model(batch["input"])


def psnr_metric(pred: torch.Tensor, batch: Batch, key: str = "target") -> float:
    """Return the mean per-sample PSNR (dB, data range 1) of ``pred`` against ``batch[key]``."""
    target = batch[key].to(pred.dtype)
    mse = (pred - target).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((-10.0 * torch.log10(mse)).mean())


def set_epoch(data: Any, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on ``data`` and on the datasets a ``Subset`` / ``ConcatDataset`` wraps."""
    if hasattr(data, "set_epoch"):
        data.set_epoch(epoch)
    inner = [data.dataset] if hasattr(data, "dataset") else list(getattr(data, "datasets", []))
    for d in inner:
        set_epoch(d, epoch)


def batch_to(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor of ``batch`` to ``device`` (other values unchanged)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@dataclass
class _Progress:
    """Where the loop is: what a checkpoint must remember besides the tensors."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    loss_sum: float = 0.0
    loss_count: int = 0
    finished: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Train ``model`` on ``train_data`` with ``loss``, configured by a :class:`TrainConfig`.

    Parameters
    ----------
    model : any ``nn.Module`` (usually from ``create_model``); moved to the configured device.
    train_data : a torch ``Dataset`` of dicts of CHW float32 tensors (``"input"``, ``"target"`` …).
    loss : ``loss(pred, batch) -> scalar tensor``; wrap a ``fn(pred, target)`` with
        :func:`~ispkit.neural.train.losses.on_target`.
    config : the run's :class:`TrainConfig`.
    val_data : a Dataset for validation and the best checkpoint (optional).
    forward : ``forward(model, batch) -> pred``; default :func:`default_forward`.
    metrics : name → ``fn(pred, batch) -> float``; default ``{"psnr": psnr_metric}``.

    References
    ----------
    Loshchilov, I., Hutter, F. (2019). Decoupled weight decay regularization. *ICLR* (AdamW).
    Loshchilov, I., Hutter, F. (2017). SGDR: stochastic gradient descent with warm restarts. *ICLR*.
    Micikevicius, P. et al. (2018). Mixed precision training. *ICLR* (loss scaling).
    Pascanu, R., Mikolov, T., Bengio, Y. (2013). On the difficulty of training recurrent neural
    networks. *ICML* (gradient-norm clipping).
    """

    def __init__(self, model: nn.Module, train_data: Dataset, *, loss: Callable[[torch.Tensor, Batch], torch.Tensor],
                 config: TrainConfig, val_data: Dataset | None = None,
                 forward: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
                 metrics: Mapping[str, Callable[[torch.Tensor, Batch], float]] | None = None) -> None:
        _check_args(model, train_data, loss, config)
        self.config = config
        self.device = resolve_device(config.device or "auto")
        self.model = model.to(self.device)
        self.train_data, self.val_data = train_data, val_data
        self.loss = loss
        self.forward = forward or default_forward
        self.metrics = dict(metrics) if metrics is not None else {"psnr": psnr_metric}
        if val_data is not None and config.best_metric not in {*self.metrics, "loss"}:
            raise ParameterError(f"TrainConfig.best_metric {config.best_metric!r} is not a metric of this Trainer; "
                                 f"valid: {', '.join(sorted({*self.metrics, 'loss'}))}")
        self._amp = bool(config.amp and self.device.type == "cuda")
        self.steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
        self.total_steps = config.max_steps or config.epochs * self.steps_per_epoch
        self.n_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self._rng_at_step: dict[str, Any] | None = None
        self._writer: Any = None

    # ------------------------------------------------------------------ paths
    @property
    def last_path(self) -> Path:
        """``out_dir/last.ckpt``: the resumable state."""
        return self.config.out_dir / "last.ckpt"

    @property
    def best_path(self) -> Path:
        """``out_dir/best.pth`` (or ``best.safetensors``): the best weights."""
        return self.config.out_dir / f"best.{self.config.save_format}"

    # ------------------------------------------------------------------ public
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``max_steps`` or ``epochs``; ``resume=True`` continues from ``out_dir/last.ckpt``.

        Ctrl-C (``KeyboardInterrupt``) writes ``last.ckpt`` and returns with ``interrupted=True``.
        """
        self._setup(resume)
        interrupted = False
        try:
            self._run()
        except KeyboardInterrupt:
            interrupted = True
            self._save_last(rng=self._rng_at_step)
        finally:
            self._close()
        best = self.best_path if self.best_path.is_file() else None
        return TrainResult(best, self.last_path, list(self.state.history), self.state.step, interrupted)

    @torch.no_grad()
    def evaluate(self, data: Dataset) -> dict[str, float]:
        """Return the mean of each metric (and of the loss) over ``data``, one sample at a time."""
        self.model.eval()
        sums: dict[str, float] = {}
        n = 0
        for batch in DataLoader(data, batch_size=1, shuffle=False, num_workers=self.config.num_workers):
            batch = batch_to(batch, self.device)
            with torch.autocast(device_type=self.device.type, enabled=self._amp):
                pred = self.forward(self.model, batch)
                loss = self.loss(pred, batch)
            pred = pred.float()
            for name, fn in {**self.metrics, "loss": lambda p, b: float(loss)}.items():
                sums[name] = sums.get(name, 0.0) + float(fn(pred, batch))
            n += 1
        if n == 0:
            raise ParameterError("Trainer.evaluate: the dataset is empty")
        return {k: v / n for k, v in sums.items()}

    # ------------------------------------------------------------------ setup
    def _setup(self, resume: bool) -> None:
        cfg = self.config
        seed_everything(cfg.seed)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self._amp)
        self.state = _Progress()
        self.log = CSVLog(cfg.out_dir / "log.csv") if cfg.log_csv else None
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._load_last()
        elif self.log is not None and self.log.path.exists():
            self.log.path.unlink()
        if cfg.tensorboard:
            self._writer = open_tensorboard(cfg.out_dir / "tensorboard")

    def _load_last(self) -> None:
        ck = load_checkpoint(self.last_path)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        restore_rng(ck["rng"])
        self.state = _Progress(**{k: ck[k] for k in _Progress.__dataclass_fields__})
        if self.log is not None:
            self.log.truncate_after(self.state.step)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        from tqdm import tqdm

        st = self.state
        if st.finished and st.step >= self.total_steps:
            return
        with tqdm(total=self.total_steps, initial=st.step, disable=not self.config.progress,
                  desc="train", unit="step", dynamic_ncols=True) as bar:
            while st.epoch < self.n_epochs and st.step < self.total_steps:
                self._run_epoch(bar)
            if st.batch_in_epoch:  # stopped by max_steps inside an epoch
                self._end_of_epoch(final=True)

    def _run_epoch(self, bar: Any) -> None:
        st = self.state
        batches = iter(self._loader(st.epoch, st.batch_in_epoch))
        while True:
            self._rng_at_step = capture_rng()  # before the batch is read: loaders may draw from it
            batch = next(batches, None)
            if batch is None:
                break
            value = self._train_step(batch_to(batch, self.device))
            st.step, st.batch_in_epoch = st.step + 1, st.batch_in_epoch + 1
            st.loss_sum, st.loss_count = st.loss_sum + value, st.loss_count + 1
            self._rng_at_step = None
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            if self.config.checkpoint_every and st.step % self.config.checkpoint_every == 0:
                self._save_last()
            if st.step >= self.total_steps:
                return
        self._rng_at_step = None
        self._end_of_epoch(final=st.epoch + 1 >= self.n_epochs)

    def _loader(self, epoch: int, skip: int) -> DataLoader:
        """The batches of ``epoch`` in a seed- and epoch-determined order, the first ``skip`` left out."""
        cfg = self.config
        set_epoch(self.train_data, epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_data), generator=gen).tolist()
        batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        return DataLoader(self.train_data, batch_sampler=batches[skip:], num_workers=cfg.num_workers,
                          generator=gen, pin_memory=self.device.type == "cuda")

    def _train_step(self, batch: Batch) -> float:
        self.model.train()
        with torch.autocast(device_type=self.device.type, enabled=self._amp):
            pred = self.forward(self.model, batch)
            loss = self.loss(pred, batch)
        if not torch.isfinite(loss.detach()).all():
            raise ISPError(f"training loss became {float(loss):g} at step {self.state.step + 1}; "
                           "lower the learning rate (--lr) or check the data for NaN/inf")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    # ------------------------------------------------------------------ epoch end
    def _end_of_epoch(self, final: bool) -> None:
        st = self.state
        row = self._log_row()
        if self.val_data is not None and (final or (st.epoch + 1) % self.config.val_every == 0):
            scores = self.evaluate(self.val_data)
            row.update({f"val_{k}": v for k, v in scores.items()})
            self._keep_best(scores[self.config.best_metric])
        elif self.val_data is None:
            save_weights(self.model, self.best_path, self.config.save_format)
        self._record(row)
        if st.batch_in_epoch >= self.steps_per_epoch:
            st.epoch, st.batch_in_epoch = st.epoch + 1, 0
        st.finished = final
        self._save_last()

    def _log_row(self) -> dict[str, float]:
        st = self.state
        row = {"epoch": st.epoch + 1, "step": st.step, "lr": self.optimizer.param_groups[0]["lr"],
               "loss": st.loss_sum / max(st.loss_count, 1)}
        st.loss_sum, st.loss_count = 0.0, 0
        return row

    def _keep_best(self, score: float) -> None:
        st = self.state
        better = (st.best is None or (score > st.best if self.config.best_mode == "max" else score < st.best))
        if better and math.isfinite(score):
            st.best = float(score)
            save_weights(self.model, self.best_path, self.config.save_format)

    def _record(self, row: dict[str, float]) -> None:
        self.state.history.append(row)
        if self.log is not None:
            self.log.append(row)
        if self._writer is not None:
            for k, v in row.items():
                if k not in ("epoch", "step"):
                    self._writer.add_scalar(k, v, row["step"])

    def _save_last(self, rng: dict[str, Any] | None = None) -> Path:
        st = self.state
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "rng": rng or capture_rng(), "config": self.config.to_dict(),
                 **{k: getattr(st, k) for k in _Progress.__dataclass_fields__}}
        return save_checkpoint(self.last_path, state)


def _check_args(model: object, train_data: object, loss: object, config: object) -> None:
    if not isinstance(model, nn.Module):
        raise ParameterError(f"Trainer: model must be a torch nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise ParameterError(f"Trainer: config must be a TrainConfig, got {type(config).__name__}")
    if not callable(loss):
        raise ParameterError(f"Trainer: loss must be callable as loss(pred, batch), got {type(loss).__name__}")
    if not hasattr(train_data, "__len__") or len(train_data) == 0:  # type: ignore[arg-type]
        raise ParameterError("Trainer: train_data must be a non-empty map-style Dataset (with __len__)")
