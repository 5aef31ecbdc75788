"""The recipes registry: how ``ispkit train MODEL`` builds a model, its data, loss and config.

A recipe is a builder ``fn(args: RecipeArgs) -> Recipe``. Recipes register
themselves with :func:`register_recipe` when their module is imported;
:func:`get_recipe` imports the modules of :data:`RECIPE_MODULES` lazily, so a
recipe costs nothing until it is asked for.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn
from torch.utils.data import Dataset

from ...errors import ConfigError, unknown_name

__all__ = ["RecipeArgs", "Recipe", "register_recipe", "get_recipe", "resolve_recipe", "list_recipes", "RECIPES",
           "RECIPE_MODULES"]


@dataclass(frozen=True)
class RecipeArgs:
    """The command line of ``ispkit train`` as a recipe sees it.

    Parameters
    ----------
    data : the dataset folder.
    out : the output folder (checkpoints, log).
    epochs, steps, batch_size, lr, seed, device, crop : ``None`` where the user gave nothing
        (the recipe's defaults apply).
    config : a named configuration of the recipe (e.g. ``"small"``, ``"paper"``).
    extra : ``--opt key=value`` pairs, as strings.
    model : the registry model name given on the command line (``ispkit train pynet.zurich``), if any.
    """

    data: Path
    out: Path
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    device: str | None = None
    crop: int | None = None
    config: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    model: str | None = None

    def overrides(self) -> dict[str, Any]:
        """Return the TrainConfig fields the user set explicitly."""
        pairs = {"epochs": self.epochs, "max_steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                 "seed": self.seed, "device": self.device}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass
class Recipe:
    """Everything :class:`~ispkit.neural.train.Trainer` needs, as a recipe built it.

    ``config_overrides`` are TrainConfig fields the recipe chooses (e.g. its learning rate);
    the user's explicit command-line values win over them. A recipe that trains in several
    phases (PyNET's levels) sets ``run(config_fields, resume) -> TrainResult``, which ``ispkit
    train`` calls instead of building one Trainer.
    """

    model: nn.Module
    train_data: Dataset
    val_data: Dataset | None
    loss: Callable[..., Any]
    forward: Callable[..., Any] | None = None
    metrics: Mapping[str, Callable[..., float]] | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)
    run: Callable[[dict[str, Any], bool], Any] | None = None


#: Registered recipe builders, by name.
RECIPES: dict[str, Callable[[RecipeArgs], Recipe]] = {}

#: Recipe name → the module that registers it (imported on first use).
RECIPE_MODULES: dict[str, str] = {
    "generic": "ispkit.neural.train.recipe_generic",
    "pynet": "ispkit.neural.train.recipe_pynet",
    "metaisp": "ispkit.neural.train.recipe_metaisp",
    "reverse_isp": "ispkit.neural.train.recipe_reverse",
    "mai": "ispkit.neural.train.recipe_mai",
    "dictionary": "ispkit.neural.train.recipe_dictionary",
    "dictionary_isp": "ispkit.neural.train.recipe_dictionary",
}


def register_recipe(name: str, builder: Callable[[RecipeArgs], Recipe]) -> None:
    """Add a recipe builder under ``name`` (re-registering the same builder is allowed)."""
    if not isinstance(name, str) or not name or not callable(builder):
        raise ConfigError(f"register_recipe: expected a name and a callable builder, got {name!r}, {builder!r}")
    old = RECIPES.get(name)
    if old is not None and getattr(old, "__qualname__", None) != getattr(builder, "__qualname__", None):
        raise ConfigError(f"recipe {name!r} is already registered by {old.__module__}; pick another name")
    RECIPES[name] = builder


def _import(module: str) -> None:
    """Import a recipe module; a module that is not there (yet) is skipped, other failures raise."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # the recipe module exists but something it needs does not
            raise


def _import_known(strict: bool = True) -> None:
    """Import every module of :data:`RECIPE_MODULES`; ``strict=False`` turns a broken one into a warning."""
    for module in dict.fromkeys(RECIPE_MODULES.values()):
        try:
            _import(module)
        except Exception as exc:  # a broken recipe must not hide the others when only listing them
            if strict:
                raise
            warnings.warn(f"recipe module {module} failed to import ({type(exc).__name__}: {exc}); "
                          "its recipes are not listed", RuntimeWarning, stacklevel=3)


def _import_for(name: str) -> None:
    module = RECIPE_MODULES.get(name) or RECIPE_MODULES.get(name.split(".", 1)[0])
    if module is None:
        _import_known(strict=False)
    else:
        _import(module)


def get_recipe(name: str) -> Callable[[RecipeArgs], Recipe]:
    """Return the builder of recipe ``name``; an unknown name lists the known ones.

    Raises
    ------
    UnknownNameError : no recipe of that name is registered.
    """
    if name not in RECIPES:
        _import_for(name)
    if name not in RECIPES:
        _import_known(strict=False)
        raise unknown_name("recipe", name, RECIPES, "ispkit train")
    return RECIPES[name]


def list_recipes() -> list[str]:
    """Return the sorted names of every available recipe."""
    _import_known()
    return sorted(RECIPES)


def resolve_recipe(model: str) -> tuple[str, Callable[[RecipeArgs], Recipe]]:
    """Return (recipe name, builder) for ``ispkit train MODEL``.

    Notes
    -----
    ``MODEL`` is looked up as a recipe name, then by its family (``pynet.level0`` → ``pynet``),
    and a registry model without a recipe of its own falls back to ``"generic"``.
    """
    family = model.split(".", 1)[0]
    for name in (model, family):
        if name not in RECIPES and name in RECIPE_MODULES:
            _import(RECIPE_MODULES[name])
        if name in RECIPES:
            return name, RECIPES[name]
    if model not in RECIPE_MODULES:
        _import_known(strict=False)  # a recipe module may register a name it is not listed under
        for name in (model, family):
            if name in RECIPES:
                return name, RECIPES[name]
    from ..registry import MODELS

    if model in MODELS:
        return "generic", get_recipe("generic")
    raise unknown_name("model or recipe name", model, {*RECIPES, *MODELS}, "ispkit train")
