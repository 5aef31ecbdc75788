"""Recipe ``pynet``: PyNET trained as its paper trains it — level by level, coarsest first.

``ispkit train pynet --data ZURICH_DIR --out OUT --levels 5..0`` (or ``--opt levels=5..0``) trains
level 5, then 4, … then 0, each level starting from the weights the level
before it ended with, each with a fresh Adam optimiser and its own loss,
as ``train_model.py`` of aiff22/PyNET-PyTorch does:

========  ============================================  =====================
level     loss                                          default epochs
========  ============================================  =====================
5, 4      MSE                                           8, 8
3, 2, 1   10 · MSE + VGG-19 content                     17, 17, 25
0         MSE + VGG-19 content + 0.4 · (1 − MS-SSIM)    50
========  ============================================  =====================

The target of level L is the RGB image downscaled by 2^L (the output of
level L is 2 / 2^L times the packed input size); the official loader resizes
the DSLR image bicubically, here it is area-averaged (antialiased). The VGG
term needs user-supplied VGG-19 weights (``--opt vgg=PATH``, torchvision
layout; nothing is downloaded); without them the term is left out and a
note is printed. MS-SSIM needs crops of at least 176 pixels; smaller crops
use single-scale SSIM.

Each level writes ``OUT/level_L/`` (``last.ckpt``, ``best.pth``, ``log.csv``)
and, when it is complete, ``final.pth`` (the weights the next level starts
from). ``--resume`` skips every complete level, continues the interrupted
one from its ``last.ckpt``, and starts the rest.

Options (``--opt key=value``): ``levels`` (``5..0``, ``3..0``, ``2`` …,
descending), ``vgg`` (VGG-19 weights), ``width`` (base width; official 32),
``val`` (validation folder; default the Zurich ``test`` split),
``val_limit`` (default 64), ``weights`` (start from a checkpoint).
``--steps N`` / ``--epochs N`` apply to every level; by default each level
runs its official epoch count (``NUM_DEFAULT_TRAIN_EPOCHS`` of the official
``utils.py``). Official optimiser: Adam, lr 5e-5, constant.

References
----------
Ignatov, A., Van Gool, L., Timofte, R. (2020). Replacing mobile camera ISP with a single deep
learning model. *CVPR Workshops*. arXiv:2002.05509 (code: aiff22/PyNET-PyTorch).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ..models.pynet import PyNET
from ..weights import load_state_dict
from . import losses
from .config import TrainConfig
from .data import open_dataset
from .recipes import Recipe, RecipeArgs, register_recipe
from .trainer import Trainer, TrainResult

__all__ = ["LEVEL_EPOCHS", "parse_levels", "downscale_target", "level_loss", "level_psnr", "PyNETSchedule",
           "build_pynet_recipe"]

#: Official epochs per level (index = level): ``NUM_DEFAULT_TRAIN_EPOCHS`` of aiff22/PyNET-PyTorch utils.py.
LEVEL_EPOCHS = (50, 25, 17, 17, 8, 8)
#: Official learning rate (Adam, constant).
PYNET_LR = 5e-5
#: Smallest side MS-SSIM (5 scales, 11-pixel window) accepts.
MS_SSIM_MIN_SIDE = 11 * 2 ** 4
_DONE = "final.pth"


def parse_levels(text: str) -> list[int]:
    """``"5..0"`` → [5, 4, 3, 2, 1, 0]; ``"5,3,0"`` and ``"2"`` also work; levels must descend within 0..5."""
    s = str(text).strip()
    m = re.fullmatch(r"(\d)\s*\.\.\s*(\d)", s)
    try:
        levels = list(range(int(m.group(1)), int(m.group(2)) - 1, -1)) if m else [int(v) for v in s.split(",")]
    except ValueError:
        levels = []
    if not levels or any(not 0 <= v <= 5 for v in levels) or any(a <= b for a, b in zip(levels, levels[1:])):
        raise ConfigError(f"--opt levels={text!r}: expected descending PyNET levels in 0..5, e.g. '5..0', "
                          "'3..0' or '5,4,3'")
    return levels


def downscale_target(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average an NCHW target to ``size`` (the output size of a PyNET level)."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    return F.interpolate(target, size=tuple(size), mode="area")


def level_loss(level: int, vgg: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
               ) -> Callable[[torch.Tensor, dict[str, Any]], torch.Tensor]:
    """The official loss of ``level`` on a batch whose ``"target"`` is full size (see the module table)."""
    def loss(pred: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        target = downscale_target(batch["target"].to(pred.dtype), pred.shape[-2:])
        mse = F.mse_loss(pred, target)
        if level >= 4:
            return mse
        content = vgg(pred, target) if vgg is not None else pred.new_zeros(())
        if level >= 1:
            return 10.0 * mse + content
        if min(pred.shape[-2:]) >= MS_SSIM_MIN_SIDE:
            similarity = losses.ms_ssim(pred, target)
        else:
            similarity = losses.ssim(pred, target)
        return mse + content + 0.4 * (1.0 - similarity)
    return loss


def level_psnr(pred: torch.Tensor, batch: dict[str, Any]) -> float:
    """PSNR (dB, range 1) against the target downscaled to the level's output size."""
    target = downscale_target(batch["target"].to(pred.dtype), pred.shape[-2:])
    mse = (pred.clamp(0, 1) - target).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((-10.0 * torch.log10(mse)).mean())


@dataclass
class PyNETSchedule:
    """Run PyNET's levels in order, each a :class:`Trainer` run in ``out/level_L``; resumable.

    Attributes
    ----------
    model : the PyNET being trained (its ``level`` is set per phase).
    levels : descending levels to train.
    train_data, val_data : full-size targets (the loss downscales them per level).
    out : the run folder.
    vgg : the perceptual loss, or None (term left out).
    steps, epochs : per level (``epochs=None`` and ``steps=None``: the official epochs).
    results : level → :class:`TrainResult` of the runs done by :meth:`run` (complete levels skipped
        on resume are absent).
    scores : level → ``{"before": metrics, "after": metrics}`` on ``val_data`` (loss and PSNR at
        the level's resolution) around each level's run, when there is validation data.
    """

    model: PyNET
    levels: list[int]
    train_data: Any
    val_data: Any
    out: Path
    vgg: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    steps: int | None = None
    epochs: int | None = None
    results: dict[int, TrainResult] = field(default_factory=dict)
    scores: dict[int, dict[str, dict[str, float]]] = field(default_factory=dict)

    def level_dir(self, level: int) -> Path:
        return Path(self.out) / f"level_{level}"

    def is_complete(self, level: int) -> bool:
        """A level is complete when its ``final.pth`` exists (written only after its last step)."""
        return (self.level_dir(level) / _DONE).is_file()

    def trainer(self, level: int, fields: dict[str, Any]) -> Trainer:
        """The Trainer of one level (fresh optimiser; the model's current weights)."""
        cfg = {k: v for k, v in fields.items() if k not in ("out_dir", "epochs", "max_steps")}
        cfg.setdefault("lr", PYNET_LR)
        cfg.setdefault("schedule", "constant")
        if self.steps is not None:
            cfg["max_steps"] = self.steps
        cfg["epochs"] = self.epochs if self.epochs is not None else LEVEL_EPOCHS[level]
        config = TrainConfig(out_dir=self.level_dir(level), **cfg)
        self.model.level = level
        return Trainer(self.model, self.train_data, loss=level_loss(level, self.vgg), config=config,
                       val_data=self.val_data, metrics={"psnr": level_psnr})

    def run(self, fields: dict[str, Any] | None = None, resume: bool = False) -> TrainResult:
        """Train every level not yet complete; return the last level's result (or the interrupted one's)."""
        fields = dict(fields or {})
        result: TrainResult | None = None
        for level in self.levels:
            folder = self.level_dir(level)
            if resume and self.is_complete(level):
                self.model.load_state_dict(load_state_dict(folder / _DONE))
                continue
            trainer = self.trainer(level, fields)
            before = trainer.evaluate(self.val_data) if self.val_data is not None else None
            result = trainer.fit(resume=resume and trainer.last_path.is_file())
            self.results[level] = result
            if before is not None:
                self.scores[level] = {"before": before, "after": trainer.evaluate(self.val_data)}
                print(f"PyNET level {level}: validation loss {before['loss']:.4g} -> "
                      f"{self.scores[level]['after']['loss']:.4g}, PSNR {before['psnr']:.2f} -> "
                      f"{self.scores[level]['after']['psnr']:.2f} dB")
            if result.interrupted:
                return result
            torch.save(self.model.state_dict(), folder / _DONE)
            (folder / "level.json").write_text(json.dumps({"level": level, "steps": result.steps}))
        self.model.level = self.levels[-1]
        if result is None:  # every level was complete already
            folder = self.level_dir(self.levels[-1])
            best = folder / "best.pth"
            result = TrainResult(best if best.is_file() else None, folder / "last.ckpt")
        return result


def _datasets(args: RecipeArgs, crop: int) -> tuple[Any, Any]:
    common = {"crop": crop, "seed": args.seed or 0, "channel_order": "B,Gr,R,Gb"}
    train = open_dataset("zurich", args.data, split="train", train=True, flip=True, **common)
    val_root = args.extra.get("val")
    if val_root is None and (Path(args.data) / "test" / "huawei_raw").is_dir():
        val_root = str(args.data)
    if val_root is None:
        return train, None
    val = open_dataset("zurich", val_root, split="test", train=False, **common)
    limit = int(args.extra.get("val_limit", 64))
    return train, torch.utils.data.Subset(val, range(min(limit, len(val))))


def build_pynet_recipe(args: RecipeArgs) -> Recipe:
    """Build the level-by-level PyNET recipe; ``Recipe.run`` executes the schedule."""
    levels = parse_levels(args.extra.get("levels", "5..0"))
    width = int(args.extra.get("width", 32))
    crop = args.crop or 448  # Zurich patches: 448×448 mosaic (224 packed)
    if crop % 64 or crop < 64:
        raise ConfigError(f"--crop {crop}: PyNET needs crops that are a multiple of 64 pixels (packed multiple of "
                          "16 and at least 32)")
    model = PyNET(level=levels[0], instance_norm=True, instance_norm_level_1=True, width=width)
    if "weights" in args.extra:
        model.load_state_dict(load_state_dict(args.extra["weights"]))
    vgg = None
    if "vgg" in args.extra:
        vgg = losses.VGGPerceptual(args.extra["vgg"], layers=("relu5_4",), distance="mse")
    elif min(levels) <= 3:
        print("recipe 'pynet': no VGG-19 weights (--opt vgg=PATH), so the VGG content term of levels 3-0 is "
              "left out (MSE and SSIM terms only)")
    train, val = _datasets(args, crop)
    schedule = PyNETSchedule(model=model, levels=levels, train_data=train, val_data=val, out=Path(args.out),
                             vgg=vgg, steps=args.steps, epochs=args.epochs)
    return Recipe(model=model, train_data=train, val_data=val, loss=level_loss(levels[-1], vgg),
                  metrics={"psnr": level_psnr}, config_overrides={"lr": PYNET_LR, "schedule": "constant"},
                  run=schedule.run)


register_recipe("pynet", build_pynet_recipe)
