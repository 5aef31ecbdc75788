"""The generic recipe: any registry model with a packed-RAW input and an RGB output, on a RAW→RGB loader.

``ispkit train MODEL --data DIR`` falls back to it when no recipe of the
model's own name or family exists. The model is trained as a whole (no level
schedule), with the loader's packing set from the model's input contract.

Options (``--opt key=value``): ``loader`` (``zurich`` | ``paired`` | ``synthetic``;
default ``zurich``), ``loss`` (``l1`` | ``charbonnier`` | ``mse`` | ``ssim`` |
``ms_ssim`` | ``l1+ssim``), ``val`` (a validation folder; default the Zurich
``test`` split when there is one), ``val_limit`` (default 64), ``limit``,
``weights`` (start from a checkpoint), ``flip`` (default 1), ``vgg`` (a VGG-19
checkpoint in torchvision's layout: adds a perceptual term, Johnson et al. 2016)
with ``vgg_weight`` (default 0.1).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Callable

import torch

from ...errors import ConfigError, unknown_name
from ..registry import create_model, get_model_entry
from . import losses
from .data import open_dataset
from .recipes import Recipe, RecipeArgs, register_recipe
from .trainer import psnr_metric

__all__ = ["build_raw_to_rgb", "ms_ssim_scales", "PAIR_LOSSES", "RAW_TO_RGB_LOADERS"]

#: ``--opt loss=NAME`` choices.
PAIR_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": losses.l1,
    "mse": losses.mse,
    "charbonnier": losses.charbonnier,
    "ssim": losses.ssim_loss,
    "ms_ssim": losses.ms_ssim_loss,
    "l1+ssim": losses.weighted({losses.l1: 1.0, losses.ssim_loss: 0.2}),
}
#: Loaders whose input is packed RAW and whose target is RGB.
RAW_TO_RGB_LOADERS = ("zurich", "paired", "synthetic")
_DEFAULT_CROP = 128


def _ssim_metric(pred: torch.Tensor, batch: dict[str, Any]) -> float:
    return float(losses.ssim(pred.clamp(0, 1), batch["target"].to(pred.dtype)))


def _model_name(args: RecipeArgs) -> str:
    name = args.model or args.extra.get("model")
    if not name:
        raise ConfigError("recipe 'generic' needs a registry model: ispkit train MODEL (e.g. mai.compact) "
                          "or --opt model=NAME")
    return name


def _check_contract(name: str) -> Any:
    contract = get_model_entry(name).weights.contract
    if contract.domain != "raw_packed" or contract.out_channels != 3 or contract.side_inputs:
        side = ", side inputs" if contract.side_inputs else ""
        raise ConfigError(f"recipe 'generic' trains packed-RAW → RGB models with no side inputs; {name!r} takes "
                          f"{contract.domain} ({contract.in_channels} channels{side}) and gives "
                          f"{contract.out_channels} channels — use that model's own recipe")
    return contract


def _check_crop(crop: int, contract: Any) -> int:
    step = 2 * max(int(contract.size_multiple), 1)
    if crop % step:
        raise ConfigError(f"--crop {crop}: this model needs crops that are a multiple of {step} pixels "
                          f"(packed side a multiple of {contract.size_multiple})")
    return crop


def _loader_options(loader: str, args: RecipeArgs, order: str, crop: int, *, train: bool) -> dict[str, Any]:
    opts: dict[str, Any] = {"crop": crop, "seed": args.seed or 0, "channel_order": order, "train": train}
    if train:
        opts["flip"] = args.extra.get("flip", "1") not in ("0", "false", "no")
    if loader == "zurich":
        opts["split"] = "train" if train else "test"
    return opts


def _datasets(args: RecipeArgs, order: str, crop: int) -> tuple[Any, Any]:
    loader = args.extra.get("loader", "zurich")
    if loader not in RAW_TO_RGB_LOADERS:
        raise unknown_name("loader", loader, RAW_TO_RGB_LOADERS, "recipe 'generic'")
    train = open_dataset(loader, args.data, **_loader_options(loader, args, order, crop, train=True))
    val_root = args.extra.get("val")
    if val_root is None and loader == "zurich" and (Path(args.data) / "test" / "huawei_raw").is_dir():
        val_root = str(args.data)
    if val_root is None:
        return train, None
    val = open_dataset(loader, val_root, **_loader_options(loader, args, order, crop, train=False))
    limit = int(args.extra.get("val_limit", 64))
    return train, torch.utils.data.Subset(val, range(min(limit, len(val))))


def ms_ssim_scales(side: int) -> int:
    """The most MS-SSIM scales (≤ 5) whose coarsest level still holds the 11-pixel window."""
    return max(1, min(5, int(math.floor(math.log2(max(side, 11) / 11))) + 1))


def _pair_loss(name: str, args: RecipeArgs, side: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The ``--opt loss=`` term (MS-SSIM with as many scales as the crop allows), plus ``vgg_weight`` ×
    VGG-19 perceptual distance when ``--opt vgg=PATH``."""
    term = PAIR_LOSSES[name]
    if name == "ms_ssim" and ms_ssim_scales(side) < 5:
        term = functools.partial(losses.ms_ssim_loss, scales=ms_ssim_scales(side))
    if "vgg" not in args.extra:
        return term
    vgg = losses.VGGPerceptual(args.extra["vgg"])
    return losses.weighted({term: 1.0, vgg: float(args.extra.get("vgg_weight", 0.1))})


def build_raw_to_rgb(args: RecipeArgs) -> Recipe:
    """Build the generic packed-RAW → RGB recipe for ``args.model``."""
    name = _model_name(args)
    contract = _check_contract(name)
    crop = _check_crop(args.crop or _DEFAULT_CROP, contract)
    loss_name = args.extra.get("loss", "l1")
    if loss_name not in PAIR_LOSSES:
        raise unknown_name("loss", loss_name, PAIR_LOSSES, "recipe 'generic'")
    model = create_model(name, weights=args.extra.get("weights"), eval=False)
    train, val = _datasets(args, contract.channel_order, crop)
    if "limit" in args.extra:
        train = torch.utils.data.Subset(train, range(min(int(args.extra["limit"]), len(train))))
    return Recipe(model=model, train_data=train, val_data=val, loss=losses.on_target(_pair_loss(loss_name, args, crop)),
                  metrics={"psnr": psnr_metric, "ssim": _ssim_metric}, config_overrides={"best_metric": "psnr"})


register_recipe("generic", build_raw_to_rgb)
