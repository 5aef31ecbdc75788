"""Recipe ``mai``: train the compact mobile ISP ``mai.compact`` (MAI 2022 Learned Smartphone ISP).

``ispkit train mai.compact --data DIR`` trains on packed RAW → sRGB pairs.
By default DIR is a folder of sRGB images that are unprocessed on the fly
(random real-camera matrices, white balance, brightness and Brooks noise,
:class:`~ispkit.neural.train.data_synthetic.SyntheticUnprocessed`); the last
``val`` images (default a sixth, at least one) are held out for validation
when DIR has no ``train/`` + ``val/`` folders. ``--opt loader=zurich`` (or
``paired``) trains on real pairs instead, through the generic recipe.

Options (``--opt key=value``): ``loader`` (``synthetic`` | ``zurich`` |
``paired``), ``loss`` (``l1`` | ``charbonnier`` | ``l1+ssim`` …; default
``l1``), ``val`` (held-out image count), ``noise`` (``brooks`` | ``none``),
``weights`` (start from a checkpoint). Defaults: crop 128 (packed 64),
batch 8, AdamW lr 1e-3 with a cosine schedule.

Export the result for phones with :func:`ispkit.neural.export.export_onnx`
(FP32/FP16) and :func:`ispkit.neural.export.quantize_onnx_int8` (int8, QDQ);
``benchmarks/bench_mobile.py`` does all of it and measures it.

References
----------
Ignatov, A., Timofte, R., et al. (2022). Learned smartphone ISP on mobile GPUs with deep learning,
Mobile AI & AIM 2022 challenge: report. *ECCV Workshops*. arXiv:2211.03885.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError
from ..registry import create_model, get_model_entry
from . import losses
from .data import open_dataset
from .recipe_generic import PAIR_LOSSES, build_raw_to_rgb
from .recipes import Recipe, RecipeArgs, register_recipe
from .trainer import psnr_metric

__all__ = ["build_mai_recipe", "synthetic_split", "DEFAULT_CROP"]

DEFAULT_CROP = 128


def synthetic_split(args: RecipeArgs, *, direction: str, crop: int, order: str = "R,Gr,Gb,B",
                    val_crop: int | None = None) -> tuple[Any, Any]:
    """Train and held-out datasets unprocessed from the sRGB images of ``args.data``.

    ``DIR/train`` and ``DIR/val`` are used when both exist; otherwise the
    last ``--opt val=N`` images (default a sixth, at least one) of DIR are
    held out. Validation samples are centred crops with fixed cameras and
    noise (``train=False``), so every evaluation sees the same data.
    """
    root = Path(args.data)
    seed = args.seed or 0
    noise = args.extra.get("noise", "brooks")
    common: dict[str, Any] = {"direction": direction, "channel_order": order, "noise": noise, "seed": seed}
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = open_dataset("synthetic", root / "train", crop=crop, train=True, **common)
        val = open_dataset("synthetic", root / "val", crop=val_crop, train=False, flip=False, **common)
        return train, val
    train = open_dataset("synthetic", root, crop=crop, train=True, **common)
    n = len(train.items)
    held = int(args.extra.get("val", max(1, n // 6)))
    if not 0 < held < n:
        raise ConfigError(f"--opt val={held}: hold out between 1 and {n - 1} of the {n} images in {str(root)!r}")
    val = open_dataset("synthetic", root, crop=val_crop, train=False, flip=False, **common)
    train.items, val.items = train.items[: n - held], val.items[n - held:]
    return train, val


def _ssim_metric(pred: torch.Tensor, batch: dict[str, Any]) -> float:
    return float(losses.ssim(pred.clamp(0, 1), batch["target"].to(pred.dtype)))


def build_mai_recipe(args: RecipeArgs) -> Recipe:
    """Build the ``mai.compact`` recipe (synthetic unprocessed data by default)."""
    name = args.model if args.model and args.model.startswith("mai.") else "mai.compact"
    loader = args.extra.get("loader", "synthetic")
    overrides = {"lr": 1e-3, "batch_size": 8, "best_metric": "psnr"}
    if loader != "synthetic":
        recipe = build_raw_to_rgb(dataclasses.replace(args, model=name, crop=args.crop or DEFAULT_CROP))
        recipe.config_overrides.update(overrides)
        return recipe
    loss_name = args.extra.get("loss", "l1")
    if loss_name not in PAIR_LOSSES:
        raise ConfigError(f"recipe 'mai': unknown loss {loss_name!r}; choose one of {', '.join(PAIR_LOSSES)}")
    crop = args.crop or DEFAULT_CROP
    if crop % 8:
        raise ConfigError(f"--crop {crop}: mai.compact needs crops that are a multiple of 8 pixels")
    order = get_model_entry(name).weights.contract.channel_order
    train, val = synthetic_split(args, direction="raw2rgb", crop=crop, order=order,
                                 val_crop=int(args.extra.get("val_crop", 2 * crop)))
    model = create_model(name, weights=args.extra.get("weights"), eval=False)
    return Recipe(model=model, train_data=train, val_data=val, loss=losses.on_target(PAIR_LOSSES[loss_name]),
                  metrics={"psnr": psnr_metric, "ssim": _ssim_metric}, config_overrides=overrides)


register_recipe("mai", build_mai_recipe)
register_recipe("mai.compact", build_mai_recipe)
