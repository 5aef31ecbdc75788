"""The model zoo: importing this package registers every model family.

Families are imported explicitly (no file scanning); an import error in any
of them propagates.
"""

from __future__ import annotations

from . import deepflexisp, dictionary_isp, fc4, hat, mai, metaisp, mwispnet, pynet, reverse_isp, unet

__all__ = ["fc4", "unet", "mwispnet", "deepflexisp", "pynet", "hat", "metaisp", "mai", "reverse_isp", "dictionary_isp", "FAMILIES", "LOADED_FAMILIES"]

#: Every family module the zoo knows, in registration order.
FAMILIES = ("fc4", "unet", "mwispnet", "deepflexisp", "pynet", "hat", "metaisp", "mai", "reverse_isp", "dictionary_isp")

#: The families registered by this import (all of them).
LOADED_FAMILIES: list[str] = list(FAMILIES)
