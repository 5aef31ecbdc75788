"""Classical stages (NumPy/Numba; never import torch). Importing registers them."""

from . import black_level
from .black_level import BlackLevel, subtract_black_level

__all__ = ["BlackLevel", "subtract_black_level"]
