"""Weights: what a checkpoint is, where it came from, and how to load it safely.

A :class:`WeightsSpec` records the provenance of an official checkpoint (paper,
URL, licence, source repository, SHA-256) and the :class:`InputContract` its
network was trained under. :func:`load_state_dict` reads ``.pth``/``.pt``
files with ``torch.load(weights_only=True)`` and ``.safetensors`` files with
safetensors — never an arbitrary pickle — and unwraps the usual training
containers; :func:`load_weights` fits a state dict to a model and reports
every missing, unexpected or mis-shaped key in one :class:`WeightsError`.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError, RandomWeightsWarning, WeightsError  # RandomWeightsWarning: re-exported

__all__ = [
    "InputContract",
    "WeightsSpec",
    "RandomWeightsWarning",
    "CONTRACT_DOMAINS",
    "CONTAINER_KEYS",
    "load_state_dict",
    "load_weights",
    "fit_state_dict",
    "unwrap_state_dict",
    "remap_keys",
    "sha256_file",
]

#: The domains an :class:`InputContract` may name.
CONTRACT_DOMAINS = ("raw_packed", "rgb_linear", "rgb_display")

#: Containers training frameworks wrap a state dict in, most preferred first
#: (BasicSR's ``params_ema`` before ``params``, Lightning's ``state_dict`` …).
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "net")

_CHANNEL_NAMES = {"R", "Gr", "Gb", "B"}
_MAX_LISTED = 25


@dataclass(frozen=True)
class InputContract:
    """What a network expects to be fed, and what it returns.

    Attributes
    ----------
    domain : ``"raw_packed"`` (a 2×2-packed Bayer mosaic), ``"rgb_linear"``
        (scene-linear RGB) or ``"rgb_display"`` (display-encoded RGB).
    channel_order : the input channel order. For ``raw_packed`` a comma
        separated permutation of ``R, Gr, Gb, B`` in ispkit's naming (``Gr``
        is the green on the red row); ``"RGB"`` for colour images.
    normalization : how the training pipeline scaled the input, in words.
    gamma : the transfer function applied before feeding (``None`` = linear).
    size_multiple : input height and width must be multiples of this
        (the wrapper pads, then crops).
    scale : output spatial size / input spatial size; ``0.0`` for a network
        returning one global vector (FC4's illuminant).
    in_channels, out_channels : channel counts of the input and output tensors.
    raw_black_white : for ``raw_packed``, the network input values of black
        and white. ispkit feeds black-level-normalised planes (black 0,
        white 1); a model trained on raw values with the pedestal kept (PyNET:
        ``raw / 1020`` with black 63) gets ``(63/1020, 1.0)``.
    raw_clip_black : clip inputs below black to black, as the official
        loader did (MW-ISPNet: ``max(raw - 63, 0)``).
    side_inputs : names of the forward arguments besides the image that the
        network needs (MetaISP: ``raw_full``, ``color_scaler`` …); a model
        with side inputs runs only in its own stage, never in a generic
        image wrapper.
    """

    domain: str
    channel_order: str
    normalization: str
    gamma: str | None
    size_multiple: int
    scale: float
    in_channels: int
    out_channels: int
    raw_black_white: tuple[float, float] = (0.0, 1.0)
    raw_clip_black: bool = False
    side_inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.domain not in CONTRACT_DOMAINS:
            raise ParameterError(
                f"InputContract.domain: expected one of {', '.join(CONTRACT_DOMAINS)}, got {self.domain!r}"
            )
        if not isinstance(self.size_multiple, int) or self.size_multiple < 1:
            raise ParameterError(
                f"InputContract.size_multiple must be a positive int, got {self.size_multiple!r}"
            )
        if not (float(self.scale) >= 0.0):
            raise ParameterError(f"InputContract.scale must be >= 0, got {self.scale!r}")
        for attr in ("in_channels", "out_channels"):
            v = getattr(self, attr)
            if not isinstance(v, int) or v < 1:
                raise ParameterError(f"InputContract.{attr} must be a positive int, got {v!r}")
        black, white = (float(v) for v in self.raw_black_white)
        if not white > black:
            raise ParameterError(f"InputContract.raw_black_white must be (black, white) with white > black, "
                                 f"got {self.raw_black_white!r}")
        if self.domain == "raw_packed":
            names = [c.strip() for c in self.channel_order.split(",")]
            if sorted(names) != sorted(_CHANNEL_NAMES):
                raise ParameterError(
                    "InputContract.channel_order for raw_packed must be a permutation of "
                    f"'R,Gr,Gb,B', got {self.channel_order!r}"
                )

    def encode_raw(self, normalised: np.ndarray) -> np.ndarray:
        """Map black-level-normalised raw values (black 0, white 1) to this network's input values."""
        x = np.maximum(normalised, 0.0) if self.raw_clip_black else normalised
        black, white = self.raw_black_white
        if (black, white) == (0.0, 1.0):
            return x
        return (x * np.float32(white - black) + np.float32(black)).astype(normalised.dtype, copy=False)

    @property
    def packed_order(self) -> tuple[str, ...]:
        """The raw_packed channel names as a tuple (e.g. ``("B", "Gr", "R", "Gb")``)."""
        return tuple(c.strip() for c in self.channel_order.split(","))


@dataclass(frozen=True)
class WeightsSpec:
    """Provenance and layout of a model's official checkpoint.

    Attributes
    ----------
    paper : citation of the paper that introduced the network.
    url : where the official checkpoint is published.
    license : the licence of the code/weights as stated by the source.
    source : the repository whose ``state_dict`` layout the model reproduces.
    contract : the :class:`InputContract` the weights were trained under.
    sha256 : hex digest of the official file; checked when a path is loaded.
    key_remap : ``(regex, replacement)`` pairs applied in order to every
        checkpoint key before loading.
    notes : anything else worth knowing (which file of a release, caveats).
    """

    paper: str
    url: str
    license: str
    source: str
    contract: InputContract
    sha256: str | None = None
    key_remap: tuple[tuple[str, str], ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise ParameterError(f"WeightsSpec.sha256 must be 64 hex digits, got {self.sha256!r}")
        for pair in self.key_remap:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ParameterError(f"WeightsSpec.key_remap entries are (regex, replacement) pairs, got {pair!r}")
            re.compile(pair[0])


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def unwrap_state_dict(obj: Any, name: str = "") -> dict[str, torch.Tensor]:
    """Return the plain ``{key: tensor}`` state dict inside a training checkpoint.

    Descends into ``params_ema`` > ``params`` > ``state_dict`` > ``model`` >
    ``net`` containers (repeatedly), drops non-tensor bookkeeping entries
    (epoch, optimizer …) when no container is found, and strips the
    ``module.`` prefixes ``DataParallel`` adds.
    """
    where = f" ({name})" if name else ""
    for _ in range(8):
        if _is_tensor_dict(obj):
            break
        if not isinstance(obj, Mapping):
            raise WeightsError(
                f"checkpoint{where} holds a {type(obj).__name__}, not a state dict; expected a mapping of "
                "parameter names to tensors (optionally inside one of "
                f"{', '.join(CONTAINER_KEYS)})"
            )
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
        else:
            tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
            if not tensors:
                keys = ", ".join(repr(k) for k in list(obj)[:10]) or "(empty)"
                raise WeightsError(
                    f"checkpoint{where} contains no tensors; top-level keys are {keys}; expected a state "
                    f"dict, or one inside one of {', '.join(CONTAINER_KEYS)}"
                )
            obj = tensors
    else:
        raise WeightsError(f"checkpoint{where} nests containers too deeply to find its state dict")
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == b"PK\x03\x04":
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "torch"  # legacy (non-zip) torch.save pickle
    return "safetensors" if path.suffix.lower() == ".safetensors" else "torch"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely and return its unwrapped state dict.

    Notes
    -----
    ``.pth``/``.pt`` files go through ``torch.load(weights_only=True,
    map_location="cpu")``, ``.safetensors`` files through safetensors (the
    format is sniffed from the bytes, the suffix breaks ties). Tensors are on
    the CPU in their stored dtype.

    Raises
    ------
    WeightsError : the file is missing, truncated, not a checkpoint, or a
        pickle that needs arbitrary globals.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {str(p)!r} does not exist; pass the path of a .pth or .safetensors file")
    kind = _sniff(p)
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(p), device="cpu")
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*pickle protocol.*")
                obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many kinds; report them as one
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("it needs arbitrary Python objects to unpickle, which ispkit refuses; re-save it with "
                "torch.save(model.state_dict(), path)" if "weights_only" in str(exc) or "global" in str(exc).lower()
                else "it may be truncated or not a checkpoint; download it again")
        raise WeightsError(
            f"weights file {str(p)!r} could not be read as a {kind} checkpoint ({type(exc).__name__}: "
            f"{reason[:300]}); {hint}"
        ) from exc
    return unwrap_state_dict(obj, name=str(p))


def remap_keys(state_dict: Mapping[str, torch.Tensor],
               key_remap: tuple[tuple[str, str], ...] | list = ()) -> dict[str, torch.Tensor]:
    """Apply ``(regex, replacement)`` pairs in order to every key."""
    if not key_remap:
        return dict(state_dict)
    compiled = [(re.compile(pat), rep) for pat, rep in key_remap]
    out: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        new = k
        for pat, rep in compiled:
            new = pat.sub(rep, new)
        if new in out:
            raise WeightsError(f"key_remap maps two checkpoint keys onto {new!r}; fix the remapping rules")
        out[new] = v
    return out


def _fmt_shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def _listing(title: str, items: list[str], note: str = "") -> str:
    shown = items[:_MAX_LISTED]
    more = f"\n    … and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    note = f", {note}" if note else ""
    return f"  {title} ({len(items)}{note}):\n" + "\n".join(f"    {s}" for s in shown) + more


def load_weights(model: nn.Module, weights: str | Path | Mapping[str, torch.Tensor], *,
                 key_remap: tuple[tuple[str, str], ...] | list = (), strict: bool = True,
                 name: str = "") -> nn.Module:
    """Load a checkpoint (path or state dict) into ``model`` and return it.

    Parameters
    ----------
    model : the network to fill.
    weights : a checkpoint path, or a (possibly wrapped) state dict.
    key_remap : ``(regex, replacement)`` rules applied to the checkpoint keys.
    strict : refuse missing and unexpected keys (mis-shaped keys are always refused).
    name : the model's registry name, used in messages.

    Raises
    ------
    WeightsError : listing every missing, unexpected and mis-shaped key with
        its shape, instead of torch's traceback.
    """
    label = f"model {name!r}" if name else f"{type(model).__name__}"
    if isinstance(weights, (str, Path)):
        return fit_state_dict(model, load_state_dict(weights), key_remap=key_remap, strict=strict, name=name,
                              source=f"file {str(weights)!r}", assign=True)
    if isinstance(weights, Mapping):
        return fit_state_dict(model, unwrap_state_dict(weights, name=name), key_remap=key_remap, strict=strict,
                              name=name, source="the given state dict", assign=False)
    raise WeightsError(f"weights for {label} must be a path or a state dict, got {type(weights).__name__}")


def fit_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], *,
                   key_remap: tuple[tuple[str, str], ...] | list = (), strict: bool = True, name: str = "",
                   source: str = "the given state dict", assign: bool = False) -> nn.Module:
    """Check an unwrapped state dict against ``model`` and load it (see :func:`load_weights`).

    ``assign=True`` hands the tensors themselves to the model (cast to its
    dtypes) instead of copying — for tensors nobody else holds, such as a
    freshly read file; it avoids touching a second copy of the weights.
    """
    label = f"model {name!r}" if name else f"{type(model).__name__}"
    sd = remap_keys(sd, tuple(key_remap))
    own = model.state_dict()
    missing = [f"{k} {_fmt_shape(v)}" for k, v in own.items() if k not in sd]
    unexpected = [f"{k} {_fmt_shape(v)}" for k, v in sd.items() if k not in own]
    misshaped = [f"{k}: checkpoint {_fmt_shape(v)} vs model {_fmt_shape(own[k])}"
                 for k, v in sd.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    nonfloat = [f"{k}: {v.dtype}" for k, v in sd.items()
                if k in own and own[k].is_floating_point() and not v.is_floating_point()]
    if misshaped or nonfloat or (strict and (missing or unexpected)):
        parts = [f"weights from {source} do not fit {label}:"]
        if missing and strict:
            parts.append(_listing("missing keys", missing, "in the model, not in the checkpoint"))
        if unexpected and strict:
            parts.append(_listing("unexpected keys", unexpected, "in the checkpoint, not in the model"))
        if misshaped:
            parts.append(_listing("mis-shaped keys", misshaped))
        if nonfloat:
            parts.append(_listing("keys with a non-floating dtype", nonfloat))
        parts.append("  check that the checkpoint belongs to this architecture and variant, "
                     "or give key_remap rules that rename its keys")
        raise WeightsError("\n".join(parts))
    if assign:
        sd = {k: (v.to(device=own[k].device, dtype=own[k].dtype if v.is_floating_point() else v.dtype)
                  if k in own else v) for k, v in sd.items()}
    try:
        model.load_state_dict(sd, strict=strict, assign=assign)
    except RuntimeError as exc:  # shapes and keys were checked; anything left is still reported plainly
        raise WeightsError(f"weights from {source} do not fit {label}: {exc}") from exc
    return model
