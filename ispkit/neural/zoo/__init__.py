"""The model zoo: importing this package registers every model family.

Families are imported explicitly (no file scanning). A family that is not
written yet is skipped only when its own module is the one missing; any
other import error propagates.
"""

from __future__ import annotations

import importlib

from . import fc4, unet

__all__ = ["fc4", "unet", "FAMILIES", "LOADED_FAMILIES"]

#: Every family module the zoo knows, in registration order.
FAMILIES = ("fc4", "unet", "mwispnet", "deepflexisp", "pynet", "hat")

LOADED_FAMILIES: list[str] = ["fc4", "unet"]

try:
    mwispnet = importlib.import_module(f"{__name__}.mwispnet")
except ModuleNotFoundError as exc:
    if exc.name != f"{__name__}.mwispnet":
        raise
else:
    LOADED_FAMILIES.append("mwispnet")

try:
    deepflexisp = importlib.import_module(f"{__name__}.deepflexisp")
except ModuleNotFoundError as exc:
    if exc.name != f"{__name__}.deepflexisp":
        raise
else:
    LOADED_FAMILIES.append("deepflexisp")

try:
    pynet = importlib.import_module(f"{__name__}.pynet")
except ModuleNotFoundError as exc:
    if exc.name != f"{__name__}.pynet":
        raise
else:
    LOADED_FAMILIES.append("pynet")

try:
    hat = importlib.import_module(f"{__name__}.hat")
except ModuleNotFoundError as exc:
    if exc.name != f"{__name__}.hat":
        raise
else:
    LOADED_FAMILIES.append("hat")

