"""Neural stages: a model zoo that loads official checkpoints, and wrappers for the stage graph.

Importing ``ispkit.neural`` imports torch, registers every model family of
the zoo (:func:`list_models`), the neural stages (``learned_raw_to_rgb``,
``enhance``, ``super_resolution``, ``device_rendition``, ``dictionary_unprocess``, ``reverse_isp``) and the neural methods of classical
stages (``WhiteBalance(method="fc4")``, ``BayerDenoise(method="unet")``,
``BayerDenoise(method="deepflexisp")``). ``weights="auto"`` finds
``<model>.pth`` in ``$ISPKIT_WEIGHTS`` (see :mod:`ispkit.pipeline.models`).
"""

from __future__ import annotations

from . import zoo
from ._io import pack_bayer, to_numpy, to_tensor, unpack_bayer
from .device import resolve_device, resolve_dtype
from .export import export_onnx
from .registry import MODELS, ModelEntry, create_model, get_model_entry, list_models, register_model
from .stages import (
    Enhance,
    LearnedRawToRGB,
    SuperResolution,
    denoise_bayer_deepflexisp,
    denoise_bayer_unet,
    estimate_illuminant_fc4,
    models_of_kind,
)
from .tiling import run_tiled
from .device_rendition import DeviceRendition
from .dictionary_stages import DictionaryUnprocess
from .reverse_isp import ReverseISP
from .weights import InputContract, RandomWeightsWarning, WeightsSpec, load_state_dict, load_weights

__all__ = [
    "create_model", "list_models", "get_model_entry", "register_model", "MODELS", "ModelEntry",
    "WeightsSpec", "InputContract", "RandomWeightsWarning", "load_state_dict", "load_weights",
    "export_onnx", "run_tiled", "resolve_device", "resolve_dtype",
    "pack_bayer", "unpack_bayer", "to_tensor", "to_numpy",
    "LearnedRawToRGB", "Enhance", "SuperResolution", "DeviceRendition", "DictionaryUnprocess", "ReverseISP", "models_of_kind",
    "estimate_illuminant_fc4", "denoise_bayer_unet", "denoise_bayer_deepflexisp",
]
