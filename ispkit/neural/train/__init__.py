"""Training: one trainer for every registry model, its losses, dataset loaders and recipes.

:class:`Trainer` with a :class:`TrainConfig` trains any ``nn.Module`` on a
Dataset of dicts of tensors, checkpoints and resumes exactly, and keeps the
best weights as a plain state dict that ``create_model(name, weights=...)``
loads. :mod:`~ispkit.neural.train.losses` holds the losses; recipes
(:func:`register_recipe`, :func:`get_recipe`) tell ``ispkit train MODEL`` how
to build a model, its data and its loss.
"""

from __future__ import annotations

from . import losses
from .config import TrainConfig
from .recipes import Recipe, RecipeArgs, get_recipe, list_recipes, register_recipe
from .trainer import Trainer, TrainResult, default_forward, psnr_metric

__all__ = [
    "TrainConfig", "Trainer", "TrainResult", "default_forward", "psnr_metric", "losses",
    "Recipe", "RecipeArgs", "register_recipe", "get_recipe", "list_recipes",
]
