"""``ispkit train`` and ``ispkit evaluate``: the training and evaluation commands of the CLI.

Kept beside ``cli.py`` (an application of :mod:`ispkit.neural.train`), which
only registers the two sub-commands with :func:`add_train_commands`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ConfigError, InputError, ParameterError

__all__ = ["add_train_commands", "cmd_train", "cmd_evaluate", "detect_loader"]


def _parse_opts(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--opt {item!r}: expected key=value (e.g. --opt loader=paired)")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """Build the recipe of ``args.model`` and train it; exit 130 when stopped by Ctrl-C."""
    from .neural.train import RecipeArgs, TrainConfig, Trainer
    from .neural.train.recipes import resolve_recipe

    extra = _parse_opts(args.opt)
    if getattr(args, "levels", None) is not None:
        if "levels" in extra and extra["levels"] != args.levels:
            raise ParameterError(f"ispkit train: --levels {args.levels} and --opt levels={extra['levels']} disagree; "
                                 "give one of them")
        extra["levels"] = args.levels
    name, builder = resolve_recipe(args.model)
    model = args.model if args.model != name else extra.get("model")  # MODEL names a model, not the recipe
    rargs = RecipeArgs(data=Path(args.data), out=Path(args.out), epochs=args.epochs, steps=args.steps,
                       batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, crop=args.crop,
                       config=args.config, extra=extra, model=model)
    recipe = builder(rargs)
    fields = {**recipe.config_overrides, **rargs.overrides(), "progress": not args.quiet}
    if recipe.run is not None:  # a multi-phase schedule (e.g. PyNET's levels) runs its own trainers
        print(f"ispkit train: recipe {name!r}, {len(recipe.train_data)} training samples, phased schedule")
        result = recipe.run(fields, args.resume)
        _report_training(result)
        return 130 if result.interrupted else 0
    config = TrainConfig(out_dir=Path(args.out), **fields)
    trainer = Trainer(recipe.model, recipe.train_data, loss=recipe.loss, config=config, val_data=recipe.val_data,
                      forward=recipe.forward, metrics=recipe.metrics)
    print(f"ispkit train: recipe {name!r}, {len(recipe.train_data)} training samples, "
          f"{trainer.total_steps} steps on {trainer.device}")
    result = trainer.fit(resume=args.resume)
    _report_training(result)
    return 130 if result.interrupted else 0


def _report_training(result: Any) -> None:
    if result.history:
        last = result.history[-1]
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items()))
    state = "interrupted; resume with --resume" if result.interrupted else "done"
    print(f"ispkit train: {state} after {result.steps} steps; last state {result.last_path}")
    if result.best_path is not None:
        print(f"ispkit train: best weights {result.best_path}")


def detect_loader(folder: Path) -> str:
    """Guess a dataset folder's loader from its layout: ``zurich``, ``paired``, ``aim``, ``ntire`` or ``synthetic``."""
    if (folder / "huawei_raw").is_dir() or (folder / "test" / "huawei_raw").is_dir() \
            or (folder / "train" / "huawei_raw").is_dir():
        return "zurich"
    if (folder / "raw").is_dir() and (folder / "rgb").is_dir():
        return "paired"
    if not folder.is_dir():
        raise InputError(f"ispkit evaluate: dataset folder {str(folder)!r} does not exist")
    suffixes = {p.suffix.lower() for p in folder.iterdir() if p.is_file()}
    if ".npy" in suffixes:
        return "aim"
    if ".json" in suffixes and ".png" in suffixes:
        return "ntire"
    return "synthetic"


def _open_eval_dataset(kind: str, folder: Path, crop: int | None, channel_order: str | None) -> Any:
    from .neural.train.data import open_dataset

    opts: dict[str, Any] = {"crop": crop, "train": False}
    if kind == "zurich":
        opts["split"] = "test" if (folder / "test" / "huawei_raw").is_dir() else "train"
    if kind == "synthetic":
        opts["flip"] = False
    if channel_order is not None and kind != "aim":
        opts["channel_order"] = channel_order
    return open_dataset(kind, folder, **opts)


def _as_packed_rggb(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mosaic an H×W×3 output as RGGB and pack it R, Gr, Gb, B when the target is H/2×W/2×4 (AIM 2022)."""
    if pred.ndim == 3 and pred.shape[2] == 3 and target.shape == (pred.shape[0] // 2, pred.shape[1] // 2, 4):
        return np.stack([pred[0::2, 0::2, 0], pred[0::2, 1::2, 1], pred[1::2, 0::2, 1], pred[1::2, 1::2, 2]], axis=-1)
    return pred


def _scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and (for RGB) mean ΔE2000 of H×W×C images in [0, 1]."""
    from . import metrics

    pred = np.clip(_as_packed_rggb(pred, target), 0.0, 1.0)
    if pred.shape != target.shape:
        raise InputError(f"ispkit evaluate: the output is {pred.shape} but the target is {target.shape}")
    out = {"PSNR": metrics.psnr(pred, target), "SSIM": metrics.ssim(pred, target)}
    out["dE2000"] = metrics.delta_e_summary(pred, target)["mean"] if pred.shape[2] == 3 else math.nan
    return out


def _model_predictor(args: argparse.Namespace) -> tuple[Callable[[Any], np.ndarray], str]:
    import torch

    from .neural import create_model, get_model_entry

    contract = get_model_entry(args.model).weights.contract
    model = create_model(args.model, weights=args.weights, device=args.device or "cpu")
    device = next(model.parameters()).device
    multiple = max(int(contract.size_multiple), 1)

    @torch.no_grad()
    def predict(sample: dict[str, Any]) -> np.ndarray:
        x = sample["input"][None].to(device)
        h, w = x.shape[-2:]
        x = torch.nn.functional.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")
        y = model(x)
        scale = y.shape[-1] / x.shape[-1]
        y = y[..., :round(h * scale), :round(w * scale)]
        return y[0].float().cpu().numpy().transpose(1, 2, 0)

    return predict, contract.channel_order if contract.domain == "raw_packed" else None


def _evaluate_model(args: argparse.Namespace, kind: str) -> list[dict[str, float]]:
    predict, order = _model_predictor(args)
    data = _open_eval_dataset(kind, Path(args.data), args.crop, order)
    rows = []
    for i in range(min(len(data), args.limit or len(data))):
        sample = data[i]
        if "target" not in sample:
            raise InputError(f"ispkit evaluate: sample {i} of {args.data} has no target image to compare with")
        rows.append(_scores(predict(sample), sample["target"].numpy().transpose(1, 2, 0)))
    return rows


def _evaluate_preset(args: argparse.Namespace, kind: str) -> list[dict[str, float]]:
    from .render import build_pipeline

    if kind not in ("zurich", "paired", "ntire"):
        raise ParameterError(f"ispkit evaluate --preset renders RAW captures: use --loader zurich, paired or ntire "
                             f"(got {kind!r})")
    from .cli import _stage_overrides

    # a learned stage without weights refuses here, once (unless --allow-random-weights)
    pipe = build_pipeline(args.preset, overrides=_stage_overrides(args, args.preset))
    data = _open_eval_dataset(kind, Path(args.data), None, None)
    rows = []
    for i in range(min(len(data), args.limit or len(data))):
        target = data.target_image(i)
        if target is None:
            raise InputError(f"ispkit evaluate: capture {data.items[i][0]} has no reference image to compare with")
        rows.append(_scores(pipe(data.raw_frame(i)).data, target))
    return rows


def _print_table(rows: list[dict[str, float]], title: str) -> None:
    names = list(rows[0])
    print(title)
    print(f"{'':>8}" + "".join(f"{n:>10}" for n in names))
    for label, fn in (("mean", np.nanmean), ("median", np.nanmedian)):
        values = [fn([r[n] for r in rows]) if not all(math.isnan(r[n]) for r in rows) else math.nan for n in names]
        print(f"{label:>8}" + "".join(f"{'-':>10}" if math.isnan(v) else f"{v:>10.4f}" for v in values))
    print(f"({len(rows)} images)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model (with weights) or a preset over a dataset folder and print PSNR, SSIM and ΔE2000."""
    if (args.model is None) == (args.preset is None):
        raise ConfigError("ispkit evaluate: give either --model NAME (with --weights FILE) or --preset NAME")
    kind = args.loader if args.loader != "auto" else detect_loader(Path(args.data))
    rows = _evaluate_model(args, kind) if args.model else _evaluate_preset(args, kind)
    if not rows:
        raise InputError(f"ispkit evaluate: no samples in {args.data}")
    what = f"model {args.model}" + (f" ({args.weights})" if args.weights else " (random weights)") if args.model \
        else f"preset {args.preset}"
    _print_table(rows, f"{what} on {args.data} [{kind}]")
    return 0


def add_train_commands(sub: Any) -> None:
    """Register ``train`` and ``evaluate`` on the CLI's sub-parser set."""
    t = sub.add_parser("train", help="train or fine-tune a registry model (recipes: ispkit.neural.train)")
    t.add_argument("model", metavar="MODEL", help="a recipe (metaisp …) or a registry model (mai.compact …)")
    t.add_argument("--data", required=True, metavar="DIR", help="dataset folder")
    t.add_argument("--out", required=True, metavar="DIR", help="output folder (last.ckpt, best.pth, log.csv)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps", type=int, help="optimiser steps (overrides --epochs)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="cpu, cuda, cuda:N or auto (default)")
    t.add_argument("--crop", type=int, help="training crop side in full-resolution pixels (even)")
    t.add_argument("--config", metavar="NAME", help="a named configuration of the recipe (e.g. small, paper)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    t.add_argument("--opt", action="append", metavar="KEY=VALUE", help="recipe option (repeatable), e.g. loader=paired")
    t.add_argument("--levels", metavar="FROM..TO",
                   help="PyNET: the pyramid levels to train, coarsest first (e.g. 5..0); same as --opt levels=…")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="print PSNR / SSIM / ΔE2000 of a model or a preset over a dataset folder",
                       description="Score a model (with its weights) or a preset over a dataset folder. A model's "
                                   "RGB output twice the size of a packed 4-channel target (AIM 2022 reverse ISP) "
                                   "is mosaiced RGGB and packed R, Gr, Gb, B before scoring.")
    e.add_argument("--model", help="a registry model name")
    e.add_argument("--weights", metavar="FILE", help="the model's weights (.pth / .safetensors)")
    e.add_argument("--preset", help="a preset name or pipeline TOML (RAW captures only)")
    e.add_argument("--set", action="append", metavar="STAGE.PARAM=VALUE",
                   help="with --preset: override a parameter, e.g. white_balance.method=gray_world (repeatable)")
    e.add_argument("--allow-random-weights", action="store_true",
                   help="with --preset: run learned stages that have no weights on random initialisation "
                        "(for testing a pipeline's plumbing only)")
    e.add_argument("--data", required=True, metavar="DIR")
    e.add_argument("--loader", default="auto", choices=("auto", "zurich", "paired", "ntire", "aim", "synthetic"))
    e.add_argument("--crop", type=int, help="centre crop side in full-resolution pixels (models only)")
    e.add_argument("--limit", type=int, help="evaluate only the first N samples")
    e.add_argument("--device", help="cpu (default), cuda, cuda:N or auto")
    e.set_defaults(func=cmd_evaluate)
