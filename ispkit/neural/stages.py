"""Neural stages: registered models wrapped as pipeline stages and stage methods.

Every wrapper owns what surrounds its network — packing in the model's
channel order, padding to its size multiple, tiling with blended overlaps,
device and dtype, ``torch.inference_mode()``, cropping, metadata — so a
model is one line in a pipeline::

    pipe = pipe.replace("white_balance", WhiteBalance(method="fc4", weights="fc4.pth"))
    Pipeline([BlackLevel(), LearnedRawToRGB(model="mwispnet.aim2020", weights="mw.pth")])

The network is built once per stage instance and cached outside the
dataclass fields (never pickled, never compared). Importing this module also
registers ``"fc4"`` as an illuminant-estimation method and ``"unet"`` and
``"deepflexisp"`` as Bayer-denoise methods of the classical stages.

No silent random weights: an explicit ``weights`` path must exist when the
stage is built, and a stage with no weights to load refuses to run
(:class:`~ispkit.errors.MissingWeightsError`, naming the model's official
source and the options) unless built with ``random_weights=True`` — a
keyword-only field every model stage inherits from the shared base.

``weights="auto"`` looks for ``<model>.pth`` / ``.safetensors`` in
``$ISPKIT_WEIGHTS`` (:mod:`ispkit.pipeline.models`). A stage whose lookup
finds nothing runs its ``fallback`` (``"skip"`` for :class:`Enhance` and
:class:`SuperResolution`; a classical method for the Bayer-denoise and
illuminant stages), announces it once per process with a
:class:`~ispkit.errors.FallbackWarning`, and — like every stage that runs a
model — appends ``{"stage", "model", "weights", "sha256", "fallback", "random_weights"}`` to
``meta.extra["models"]`` (``"random_weights": True`` when it ran untrained).
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame, check_cfa_pattern
from ..pipeline import Stage, StageSpec, register_stage
from ..pipeline.models import (add_model_record, announce_fallback, check_weights_param, model_record,
                               require_weights, resolve_weights, set_model_source_lookup)
from ._io import pack_bayer, to_numpy, to_tensor, unpack_bayer
from .device import DTYPES, check_device_name, inference_context, resolve_device
from .registry import MODELS, create_model, get_model_entry
from .tiling import default_memory_budget, estimate_bytes_per_pixel, run_tiled
from .weights import InputContract

__all__ = [
    "MODEL_KINDS",
    "models_of_kind",
    "LearnedRawToRGB",
    "Enhance",
    "SuperResolution",
    "estimate_illuminant_fc4",
    "denoise_bayer_unet",
    "denoise_bayer_deepflexisp",
    "FULL_SIZE_KEY",
    "FC4_MAX_SIDE",
    "UNET_OVERLAP",
    "REGISTERED_METHODS",
]

#: Longest side FC4 sees; larger images are box-averaged down first (the
#: official test pipeline halves Shi-Gehler's ≈1.4k×2.1k frames).
FC4_MAX_SIDE = 1024
#: Shortest side FC4 sees; smaller images are enlarged by pixel repetition
#: (SqueezeNet's four poolings need it, see ``FC4.min_size``).
FC4_MIN_SIDE = 64
#: Smallest illuminant component FC4 returns, relative to the largest (its
#: final ReLU can zero a channel, which no real illuminant does).
FC4_MIN_COMPONENT = 1e-3
#: Overlap of the U-Net denoiser's tiles: ≥ its receptive-field radius.
UNET_OVERLAP = 64
#: ``meta.extra`` key holding the (H, W) a frame had before an :class:`Enhance`
#: model shrank it; ``SuperResolution(size="full")`` returns to it.
FULL_SIZE_KEY = "full_size"
#: Values of the ``fallback`` parameter of :class:`Enhance` / :class:`SuperResolution`.
SKIP = "skip"


# -- which models fit which wrapper ---------------------------------------
def _is_raw_to_rgb(c: InputContract) -> bool:
    return c.domain == "raw_packed" and c.in_channels == 4 and c.out_channels == 3 and c.scale > 0 \
        and not c.side_inputs


def _is_rgb_image_model(c: InputContract) -> bool:
    return c.domain in ("rgb_linear", "rgb_display") and c.in_channels == 3 and c.out_channels == 3 \
        and not c.side_inputs


MODEL_KINDS: dict[str, Callable[[InputContract], bool]] = {
    "raw-to-RGB": _is_raw_to_rgb,
    "enhancement": lambda c: _is_rgb_image_model(c) and 0 < c.scale <= 1,
    "super-resolution": lambda c: _is_rgb_image_model(c) and c.scale > 1,
}


def models_of_kind(kind: str) -> list[str]:
    """Registered model names a wrapper of ``kind`` accepts (see :data:`MODEL_KINDS`)."""
    test = MODEL_KINDS[kind]
    return sorted(n for n, e in MODELS.items() if test(e.weights.contract))


def _run_rgb(stage: "_NeuralStage", data: np.ndarray) -> np.ndarray:
    """Feed H×W×3 RGB to an RGB-image network in its channel order; return H'×W'×3 RGB."""
    order = stage.contract.channel_order.replace(",", "").replace(" ", "").upper()
    if order not in ("RGB", "BGR"):
        raise ParameterError(f"model {stage.model!r}: unsupported RGB channel order {order!r} (RGB or BGR)")
    flip = order == "BGR"
    y = to_numpy(stage.run_network(to_tensor(data[..., ::-1] if flip else data)))
    return np.ascontiguousarray(y[..., ::-1] if flip else y, dtype=np.float32)


def _rgb_domains(contract: InputContract) -> tuple[Domain, ...]:
    if contract.domain == "rgb_display":
        return (Domain.DISPLAY_RGB,)
    return (Domain.LINEAR_RGB, Domain.CAMERA_RGB)


_BUILD_LOCK = threading.Lock()


def official_source(name: str) -> str | None:
    """Where model ``name``'s official weights come from, in words (URL, repository, licence), from the zoo."""
    entry = MODELS.get(name)
    if entry is None:
        return None
    w = entry.weights
    parts = [w.url] if w.url else [f"none are published (train them: ispkit train {name} --data DIR --out DIR, "
                                   f"then pass OUT/best.pth)"]
    if w.source and w.source != w.url:
        parts.append(f"code {w.source}")
    if w.license:
        parts.append(f"licence {w.license}")
    return ", ".join(parts)


set_model_source_lookup(official_source)


def _min_size(net: nn.Module) -> int:
    """The smallest input side a network accepts (its ``min_size`` attribute, else 1)."""
    v = getattr(net, "min_size", 1)
    return int(v) if isinstance(v, int) and v > 0 else 1


def _prepare_cpu_model(model: nn.Module, device: torch.device) -> nn.Module:
    if device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


# -- the stage base ------------------------------------------------------------
@dataclass(frozen=True)
class _NeuralStage(Stage):
    """Shared behaviour of the model-wrapping stages (not registered itself).

    Every subclass inherits the keyword-only field ``random_weights`` (False):
    the explicit opt-in to run without a checkpoint. :meth:`weights_path`
    (behind :meth:`network`) refuses (``MissingWeightsError``) without it;
    :meth:`check_weights` runs after every subclass's ``__post_init__``
    (wrapped by ``__init_subclass__``), so a path that does not exist fails
    when the stage is built, whatever the subclass validates itself.
    """

    kind: ClassVar[str] = ""
    _CACHE: ClassVar[str] = "_neural_cache"

    random_weights: bool = field(default=False, kw_only=True)

    if TYPE_CHECKING:  # fields every subclass declares (not dataclass fields of the base)
        model: str
        weights: str | None
        device: str
        dtype: str
        tile: int | None
        overlap: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is None or getattr(own, "_checks_weights", False):
            return

        @functools.wraps(own)
        def post_init(self: "_NeuralStage") -> None:
            own(self)
            self.check_weights()

        post_init._checks_weights = True  # type: ignore[attr-defined]
        cls.__post_init__ = post_init  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        self.check_weights()

    def to_config(self) -> dict[str, Any]:
        """As :meth:`Stage.to_config`; ``random_weights`` is written only when True, as the last parameter."""
        cfg = super().to_config()
        flag = cfg["params"].pop("random_weights", False)
        if flag:
            cfg["params"]["random_weights"] = True
        return cfg

    @classmethod
    def parameters(cls) -> list[dict[str, Any]]:
        """As :meth:`Stage.parameters`, with the inherited ``random_weights`` listed last."""
        params = super().parameters()
        return sorted(params, key=lambda p: p["name"] == "random_weights")

    def check_weights(self) -> None:
        """Build-time checks of ``weights`` (an explicit path must exist) and ``random_weights``."""
        where = f"stage {self.type_name!r}"
        object.__setattr__(self, "weights", check_weights_param(self.weights, where, self.model))
        if not isinstance(self.random_weights, bool):
            raise ParameterError(f"{where} parameter 'random_weights': expected true or false, "
                                 f"got {self.random_weights!r}")

    def _validate(self) -> None:
        name = self.type_name
        valid = models_of_kind(self.kind)
        if self.model not in valid:
            raise unknown_name(f"{self.kind} model", self.model, valid, f"stage {name!r} parameter 'model'")
        check_device_name(self.device, f"stage {name!r} parameter 'device'")
        if self.dtype not in DTYPES:
            raise ParameterError(
                f"stage {name!r} parameter 'dtype': expected one of {', '.join(DTYPES)}, got {self.dtype!r}"
            )
        if self.tile is not None and (not isinstance(self.tile, int) or isinstance(self.tile, bool)
                                      or self.tile < 16):
            raise ParameterError(
                f"stage {name!r} parameter 'tile': expected None (automatic) or an int >= 16, got {self.tile!r}"
            )
        if not isinstance(self.overlap, int) or isinstance(self.overlap, bool) or self.overlap < 0:
            raise ParameterError(f"stage {name!r} parameter 'overlap': expected an int >= 0, got {self.overlap!r}")
        if self.tile is not None and self.tile <= 3 * self.overlap:
            raise ParameterError(
                f"stage {name!r} parameter 'tile': neighbouring tiles share 3·overlap = {3 * self.overlap} "
                f"pixels, so tile must exceed that, got tile={self.tile}; raise tile or lower overlap"
            )

    # pickling leaves the built network behind
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop(self._CACHE, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def contract(self) -> InputContract:
        """The :class:`InputContract` of the wrapped model."""
        return get_model_entry(self.model).weights.contract

    def network(self) -> tuple[nn.Module, torch.device]:
        """Return the (built once, cached) network and the device it lives on."""
        cached = self.__dict__.get(self._CACHE)
        if cached is None:
            with _BUILD_LOCK:
                cached = self.__dict__.get(self._CACHE)
                if cached is None:
                    path = self.weights_path()
                    dev = resolve_device(self.device)
                    net = create_model(self.model, weights=path, device=dev)
                    net = _prepare_cpu_model(net, dev)
                    cached = {"net": net, "device": dev, "bpp": None, "weights": path}
                    object.__setattr__(self, self._CACHE, cached)
        return cached["net"], cached["device"]

    def resolve(self) -> tuple[str | None, str | None]:
        """(checkpoint path or None, why ``weights="auto"`` found nothing or None); see :func:`resolve_weights`."""
        return resolve_weights(self.model, self.weights, f"stage {self.type_name!r}")

    def weights_path(self) -> str | None:
        """The checkpoint to load; None only with ``random_weights=True``.

        Raises
        ------
        MissingWeightsError : no checkpoint (``weights=None``, or ``"auto"``
            found none) and no ``random_weights=True`` — the one place every
            model stage refuses to run untrained.
        """
        path, missing = self.resolve()
        if missing is not None and hasattr(self, "fallback"):
            missing += "; fallback='skip' would pass the frame through instead"
        require_weights(self.model, path, random_weights=self.random_weights, where=f"stage {self.type_name!r}",
                        reason=missing)
        return path

    def with_record(self, frame: Frame, data: np.ndarray | None = None, fallback: str | None = None,
                    extra: dict[str, Any] | None = None, **changes: Any) -> Frame:
        """``frame`` with new ``data`` / fields ``changes`` / ``extra`` keys, plus this stage's model record."""
        cache = self.__dict__.get(self._CACHE)
        path = None if fallback is not None else cache["weights"] if cache else self.resolve()[0]
        record = model_record(self.type_name, self.model, path, fallback,
                              random_weights=fallback is None and path is None)
        ex = add_model_record(frame.meta.extra, record)
        ex.update(extra or {})
        if data is not None:
            changes["data"] = data
        return frame.replace(extra=ex, **changes)

    def skipped(self, frame: Frame, missing: str, data: np.ndarray | None = None, what: str = "skipped") -> Frame:
        """Apply ``fallback="skip"`` (or raise without it): announce once, record, return ``data``/the frame."""
        if getattr(self, "fallback", None) != SKIP:
            self.weights_path()  # raises, naming what is missing
        text = f"{what} ({missing})"
        announce_fallback(self.type_name, self.model, text)
        return self.with_record(frame, data, fallback=text)

    def run_network(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network on a CPU NCHW tensor: pad, tile, blend, crop; return a CPU float32 tensor."""
        net, dev = self.network()
        c = self.contract
        cache = self.__dict__[self._CACHE]

        def fn(t: torch.Tensor) -> torch.Tensor:
            t = t.to(dev, non_blocking=True)
            if dev.type == "cpu":
                t = t.contiguous(memory_format=torch.channels_last)
            return net(t).float().to("cpu")

        def bytes_per_pixel() -> float:
            if cache["bpp"] is None:
                cache["bpp"] = estimate_bytes_per_pixel(net, c.in_channels, multiple=c.size_multiple, device=dev,
                                                        side=max(32, 2 * c.size_multiple, _min_size(net)))
            return cache["bpp"]

        with inference_context(dev, self.dtype):
            return run_tiled(fn, x, tile=self.tile, overlap=self.overlap, scale=float(c.scale),
                             multiple=c.size_multiple, memory_budget_bytes=default_memory_budget(dev),
                             bytes_per_pixel=bytes_per_pixel, min_size=_min_size(net))


@register_stage
@dataclass(frozen=True)
class LearnedRawToRGB(_NeuralStage):
    """Render a black-level-normalised Bayer mosaic to display RGB with a learned ISP.

    Parameters
    ----------
    model : a raw-to-RGB model (``"mwispnet.aim2020"``, ``"pynet.level0"`` …).
    weights : the checkpoint path (it must exist when the stage is built) or
        ``"auto"``; with None the stage refuses to run
        (:class:`~ispkit.errors.MissingWeightsError`) unless ``random_weights``.
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    dtype : ``"float32"``, ``"float16"`` (CUDA autocast) or ``"bfloat16"``.
    tile : tile side in packed pixels; None picks it from the memory budget.
    overlap : packed pixels of context kept beside every tile cut.
    random_weights : keyword-only, every model stage has it — run on random
        initial weights when there are none (warned once per model, recorded
        as ``"random_weights": True`` in ``meta.extra["models"]``).

    Notes
    -----
    RAW_MOSAIC H×W float32 (after BlackLevel, nominally [0, 1]) → packed in
    the model's channel order and mapped to its input levels (its
    InputContract: PyNET keeps the P20's black pedestal, ``raw / 1020``;
    MW-ISPNet clips below black) → DISPLAY_RGB at
    ``scale`` × the packed size (H×W×3 for the 2× models), sRGB-encoded as
    the model was trained, not clipped.

    References
    ----------
    A. Ignatov, L. Van Gool, R. Timofte, "Replacing Mobile Camera ISP with a
    Single Deep Learning Model" (PyNET), CVPRW 2020. Z. Dai et al.,
    "AWNet"/MW-ISPNet entries of the AIM 2020 Learned Smartphone ISP Challenge.
    """

    type_name = "learned_raw_to_rgb"
    kind = "raw-to-RGB"
    model: str = "mwispnet.aim2020"
    weights: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    tile: int | None = None
    overlap: int = 32

    def __post_init__(self) -> None:
        self._validate()

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.DISPLAY_RGB,
                         requires=("cfa_pattern",), provides=("color_space",))

    def process(self, frame: Frame) -> Frame:
        c = self.contract
        packed = c.encode_raw(pack_bayer(frame.data, frame.meta.cfa_pattern, c.channel_order))
        y = self.run_network(to_tensor(packed))
        out = np.ascontiguousarray(to_numpy(y), dtype=np.float32)
        return self.with_record(frame, out, domain=Domain.DISPLAY_RGB, color_space="sRGB")


class _RGBNeuralStage(_NeuralStage):
    """RGB → RGB model stages: domain from the contract, tiled run, output at ``contract.scale``."""

    def __post_init__(self) -> None:
        self._validate()
        if self.fallback not in (None, SKIP):
            raise ParameterError(f"stage {self.type_name!r} parameter 'fallback': expected None (raise when "
                                 f"weights='auto' finds no file) or 'skip', got {self.fallback!r}")

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=_rgb_domains(self.contract))

    def process(self, frame: Frame) -> Frame:
        path, missing = self.resolve()
        if missing is not None and self.fallback == SKIP:
            return self.skipped(frame, missing)
        h, w = frame.data.shape[:2]
        out = _run_rgb(self, frame.data)
        extra = {}
        if out.shape[:2] != (h, w) and FULL_SIZE_KEY not in frame.meta.extra:
            extra[FULL_SIZE_KEY] = (h, w)
        return self.with_record(frame, out, extra=extra)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize H×W×3 float32 to ``size`` = (H', W'): area averaging down, bicubic up."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == tuple(size):
        return img
    interp = cv2.INTER_AREA if size[0] <= h and size[1] <= w else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(img, dtype=np.float32), (int(size[1]), int(size[0])), interpolation=interp)
    return out.reshape(int(size[0]), int(size[1]), img.shape[2])


@register_stage
@dataclass(frozen=True)
class Enhance(_RGBNeuralStage):
    """Enhance an RGB image with a learned image-to-image network.

    Parameters
    ----------
    model : an enhancement model (``"deepflexisp.enhance_2023"`` …); its
        contract fixes the domain and the output scale (≤ 1).
    weights, device, dtype, tile, overlap : as for :class:`LearnedRawToRGB`
        (``tile`` and ``overlap`` in input pixels); ``weights="auto"`` looks
        for ``<model>.pth`` in ``$ISPKIT_WEIGHTS``.
    fallback : ``"skip"`` passes the frame through when ``weights="auto"``
        finds no file (announced once, recorded in ``meta.extra["models"]``);
        None raises instead.

    Notes
    -----
    DISPLAY_RGB (or LINEAR_RGB/CAMERA_RGB for linear-domain models) H×W×3
    float32 → the same domain at ``contract.scale`` × H×W, not clipped. A
    model that shrinks the frame (``deepflexisp.enhance_2023``: ×1/4) records
    the size before in ``meta.extra["full_size"]`` for
    ``SuperResolution(size="full")``.

    References
    ----------
    S. Liu et al., "Deep-FlexISP: A Three-Stage Framework for Night
    Photography Rendering", CVPRW 2022; NEW Deep-FlexISP, NTIRE 2023 Night
    Photography Rendering Challenge.
    """

    type_name = "enhance"
    kind = "enhancement"
    model: str = "deepflexisp.enhance_2023"
    weights: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    tile: int | None = None
    overlap: int = 32
    fallback: str | None = None


@register_stage
@dataclass(frozen=True)
class SuperResolution(_RGBNeuralStage):
    """Upscale an RGB image with a learned super-resolution network.

    Parameters
    ----------
    model : a super-resolution model (``"hat.srx4"`` …); its contract fixes
        the scale factor.
    weights, device, dtype, tile, overlap : as for :class:`LearnedRawToRGB`
        (``tile`` and ``overlap`` in input pixels); ``weights="auto"`` looks
        for ``<model>.pth`` in ``$ISPKIT_WEIGHTS``.
    fallback : ``"skip"`` runs no network when ``weights="auto"`` finds no
        file (announced once, recorded in ``meta.extra["models"]``): the
        frame passes through, resized bicubically to the full size when
        ``size="full"`` and an earlier stage shrank it; None raises instead.
    size : ``"scaled"`` — output at ``scale`` × the input; ``"full"`` — output
        at the frame's full size (``meta.extra["full_size"]`` recorded by a
        shrinking :class:`Enhance`, else the input size): the input is
        area-downscaled by the model's factor first when needed, so the
        network restores detail at the size it started from.

    Notes
    -----
    DISPLAY_RGB H×W×3 float32 [0, 1] → DISPLAY_RGB (scale·H)×(scale·W)×3
    (or the full size), not clipped.

    References
    ----------
    X. Chen et al., "Activating More Pixels in Image Super-Resolution
    Transformer" (HAT), CVPR 2023.
    """

    type_name = "super_resolution"
    kind = "super-resolution"
    model: str = "hat.srx4"
    weights: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    tile: int | None = None
    overlap: int = 16
    fallback: str | None = None
    size: str = "scaled"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in ("scaled", "full"):
            raise unknown_name("super-resolution size", self.size, ("scaled", "full"),
                               f"stage {self.type_name!r} parameter 'size'")

    def process(self, frame: Frame) -> Frame:
        if self.size == "scaled":
            return super().process(frame)
        h, w = frame.data.shape[:2]
        th, tw = (int(v) for v in frame.meta.extra.get(FULL_SIZE_KEY, (h, w)))
        path, missing = self.resolve()
        if missing is not None and self.fallback == SKIP:
            if (h, w) == (th, tw):
                return self.skipped(frame, missing)
            return self.skipped(frame, missing, _resize(frame.data, (th, tw)), what=f"bicubic resize to {tw}x{th}")
        s = float(self.contract.scale)
        low = (max(1, round(th / s)), max(1, round(tw / s)))
        out = _resize(_run_rgb(self, _resize(frame.data, low)), (th, tw))
        return self.with_record(frame, out)


# -- methods plugged into classical stages ----------------------------------------
_METHOD_MODELS: dict[tuple[str, str | None, int, str], tuple[nn.Module, torch.device]] = {}
_METHOD_LOCK = threading.Lock()
_METHOD_CACHE_SIZE = 4


def _method_model(name: str, weights: str | os.PathLike | None, device: str, where: str,
                  random_weights: bool = False) -> tuple[nn.Module, torch.device]:
    """Build (or reuse) the network of a stage method; keyed by name, file, file mtime and device.

    Without a checkpoint it raises :class:`~ispkit.errors.MissingWeightsError`
    unless ``random_weights`` is True (see :func:`~ispkit.pipeline.models.require_weights`).
    """
    wkey: str | None = None
    stamp = 0
    missing: str | None = None
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise ParameterError(f"{where}: weights must be a checkpoint path, 'auto' or None, got {weights!r}")
        wkey, missing = resolve_weights(name, weights, where)
    if missing is not None:
        missing += "; a stage with a fallback method would run that instead"
    require_weights(name, wkey, random_weights=random_weights, where=where, reason=missing)
    if wkey is not None:
        stamp = os.stat(wkey).st_mtime_ns
    dev = resolve_device(device)
    key = (name, wkey, stamp, str(dev))
    with _METHOD_LOCK:
        hit = _METHOD_MODELS.get(key)
        if hit is None:
            net = create_model(name, weights=wkey, device=dev)
            net = _prepare_cpu_model(net, dev)
            if len(_METHOD_MODELS) >= _METHOD_CACHE_SIZE:
                _METHOD_MODELS.pop(next(iter(_METHOD_MODELS)))
            hit = _METHOD_MODELS[key] = (net, dev)
    return hit


def _bin_bayer_rgb(mosaic: np.ndarray, cfa_pattern: str) -> np.ndarray:
    """Demosaic cheaply by 2×2 binning: (R, (Gr+Gb)/2, B) at half resolution."""
    p = pack_bayer(mosaic, cfa_pattern, "R,Gr,Gb,B")
    return np.stack([p[..., 0], 0.5 * (p[..., 1] + p[..., 2]), p[..., 3]], axis=-1)


def _box_downscale(img: np.ndarray, factor: int) -> np.ndarray:
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    v = img[:h, :w].reshape(h // factor, factor, w // factor, factor, img.shape[2])
    return v.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def estimate_illuminant_fc4(image: np.ndarray, cfa_pattern: str | None = None, weights: str | None = None,
                            device: str = "auto", variant: str = "cwp", random_weights: bool = False) -> np.ndarray:
    """Estimate the scene illuminant with FC4.

    Parameters
    ----------
    image : an H×W×3 linear camera-RGB image, or an H×W Bayer mosaic
        (black-level-normalised) with ``cfa_pattern`` (binned 2×2 to RGB).
    cfa_pattern : the mosaic's CFA layout; needed for a mosaic only.
    weights : an ``fc4.cwp``/``fc4.sum`` checkpoint or ``"auto"``; None
        raises :class:`~ispkit.errors.MissingWeightsError` unless ``random_weights``.
    device : ``"auto" | "cpu" | "cuda" | "cuda:N"``.
    variant : ``"cwp"`` (confidence-weighted pooling) or ``"sum"``.
    random_weights : opt in to running without a checkpoint (warned once; meaningless output).

    Returns
    -------
    (3,) float64 camera-RGB illuminant with unit L2 norm; components are at
    least :data:`FC4_MIN_COMPONENT` times the largest one.

    Notes
    -----
    Pre-processing follows the official data pipeline: negatives clipped,
    divided by the image maximum, raised to 1/2.2; images are box-averaged
    to at most :data:`FC4_MAX_SIDE` pixels on their long side.

    References
    ----------
    Y. Hu, B. Wang, S. Lin, "FC4: Fully Convolutional Color Constancy with
    Confidence-weighted Pooling", CVPR 2017.
    """
    where = "illuminant method 'fc4'"
    if variant not in ("cwp", "sum"):
        raise unknown_name("FC4 variant", variant, ("cwp", "sum"), where)
    a = np.asarray(image)
    if a.ndim == 2:
        if cfa_pattern is None:
            raise InputError(f"{where}: an H×W mosaic needs cfa_pattern (e.g. 'RGGB')")
        rgb = _bin_bayer_rgb(a.astype(np.float32, copy=False), check_cfa_pattern(cfa_pattern, where))
    elif a.ndim == 3 and a.shape[2] == 3:
        rgb = a.astype(np.float32, copy=False)
    else:
        raise InputError(f"{where}: expected an H×W×3 image or an H×W mosaic, got shape {a.shape}")
    if rgb.size == 0:
        raise InputError(f"{where}: the image is empty (shape {a.shape})")
    if not np.isfinite(rgb).all():
        raise InputError(f"{where}: the image holds NaN or infinite values")
    longest = max(rgb.shape[:2])
    if longest > FC4_MAX_SIDE:
        rgb = _box_downscale(rgb, math.ceil(longest / FC4_MAX_SIDE))
    shortest = min(rgb.shape[:2])
    if shortest < FC4_MIN_SIDE:
        k = math.ceil(FC4_MIN_SIDE / shortest)
        rgb = np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    rgb = np.maximum(rgb, 0.0)
    peak = float(rgb.max())
    if peak <= 0.0:
        raise InputError(f"{where}: the image is black (maximum {peak}); FC4 needs light to estimate from")
    rgb = np.power(rgb / peak, 1.0 / 2.2, dtype=np.float32)
    net, dev = _method_model(f"fc4.{variant}", weights, device, where, random_weights)
    with inference_context(dev, "float32"):
        x = to_tensor(rgb, dev)
        if dev.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        y = net(x)[0].double().cpu().numpy()
    peak_out = float(np.max(y)) if np.all(np.isfinite(y)) else 0.0
    if peak_out <= 0.0:
        # an all-zero output (dead ReLUs of an untrained net) carries no information
        return np.full(3, 1.0 / math.sqrt(3.0))
    # FC4 ends in a ReLU: a channel can come out exactly 0; keep the illuminant physical
    y = np.maximum(y, FC4_MIN_COMPONENT * peak_out)
    return y / np.linalg.norm(y)


def denoise_bayer_unet(mosaic: np.ndarray, cfa_pattern: str, sigma: float | np.ndarray,
                       weights: str | None = None, device: str = "auto", random_weights: bool = False) -> np.ndarray:
    """Denoise a Bayer mosaic with the packed-Bayer U-Net ``unet.raw``.

    Parameters
    ----------
    mosaic : H×W black-level-normalised mosaic (even H and W).
    cfa_pattern : its CFA layout.
    sigma : noise standard deviation in the mosaic's units: a scalar, or an
        H×W map (averaged over each 2×2 block).
    weights : a ``unet.raw`` checkpoint or ``"auto"``; None raises
        :class:`~ispkit.errors.MissingWeightsError` unless ``random_weights``.
    device : ``"auto" | "cpu" | "cuda" | "cuda:N"``.
    random_weights : opt in to the (identity) initialisation without a checkpoint (warned once).

    Returns
    -------
    The denoised H×W float32 mosaic.

    Notes
    -----
    Packs R, Gr, Gb, B, appends the σ map as a 5th channel, runs the network
    tiled (overlap :data:`UNET_OVERLAP`), unpacks.
    """
    where = "Bayer-denoise method 'unet'"
    m = np.asarray(mosaic, dtype=np.float32)
    pattern = check_cfa_pattern(cfa_pattern, where)
    packed = pack_bayer(m, pattern, "R,Gr,Gb,B")
    s = np.asarray(sigma, dtype=np.float32)
    if s.ndim == 0:
        smap = np.full(packed.shape[:2] + (1,), float(s), dtype=np.float32)
    elif s.shape == m.shape:
        smap = s.reshape(m.shape[0] // 2, 2, m.shape[1] // 2, 2).mean(axis=(1, 3))[..., None]
    else:
        raise ParameterError(f"{where}: sigma must be a scalar or an H×W map like the mosaic {m.shape}, got shape {s.shape}")
    if not np.isfinite(smap).all() or (smap < 0).any():
        raise ParameterError(f"{where}: sigma must be finite and >= 0")
    x = np.concatenate([packed, smap.astype(np.float32)], axis=-1)
    y = _run_method_network("unet.raw", x, weights, device, where, random_weights)
    return unpack_bayer(y, pattern, "R,Gr,Gb,B")


def _run_method_network(name: str, x: np.ndarray, weights: str | None, device: str, where: str,
                        random_weights: bool = False) -> np.ndarray:
    """Run model ``name`` on H×W×C ``x`` (same-size output), tiled with :data:`UNET_OVERLAP`; return H×W×C'."""
    net, dev = _method_model(name, weights, device, where, random_weights)
    contract = get_model_entry(name).weights.contract

    def fn(t: torch.Tensor) -> torch.Tensor:
        t = t.to(dev)
        if dev.type == "cpu":
            t = t.contiguous(memory_format=torch.channels_last)
        return net(t).float().cpu()

    with inference_context(dev, "float32"):
        y = run_tiled(fn, to_tensor(x), tile=None, overlap=UNET_OVERLAP, scale=1.0, multiple=contract.size_multiple,
                      memory_budget_bytes=default_memory_budget(dev),
                      bytes_per_pixel=lambda: estimate_bytes_per_pixel(
                          net, contract.in_channels, multiple=contract.size_multiple, device=dev))
    return to_numpy(y)


#: The Deep-FlexISP denoiser's input ceiling: ``max(RAW_DENOISE_CLIP_MEAN · mean, RAW_DENOISE_CLIP_MIN)``.
RAW_DENOISE_CLIP_MEAN = 3.0
RAW_DENOISE_CLIP_MIN = 0.9


def denoise_bayer_deepflexisp(mosaic: np.ndarray, cfa_pattern: str, sigma: float | np.ndarray | None = None,
                              weights: str | None = None, device: str = "auto",
                              random_weights: bool = False) -> np.ndarray:
    """Denoise a Bayer mosaic with Deep-FlexISP's residual U-Net ``deepflexisp.raw_denoise``.

    Parameters
    ----------
    mosaic : H×W black-level-normalised mosaic (even H and W).
    cfa_pattern : its CFA layout.
    sigma : unused — the network estimates the noise itself (accepted so the
        method fits :class:`~ispkit.stages.BayerDenoise`, whose ``strength``
        therefore does not apply either).
    weights : a ``deepflexisp.raw_denoise`` checkpoint or ``"auto"`` (look in
        ``$ISPKIT_WEIGHTS``); None raises :class:`~ispkit.errors.MissingWeightsError`
        unless ``random_weights``.
    device : ``"auto" | "cpu" | "cuda" | "cuda:N"``.
    random_weights : opt in to random initial weights without a checkpoint (warned once).

    Returns
    -------
    The denoised H×W float32 mosaic in [0, 1].

    Notes
    -----
    As the official cascade: packed in the model's order (R, Gr, B, Gb),
    clipped to [0, 1]; the network sees that input clipped again to
    ``max(3 · mean, 0.9)`` (mean over all packed values) and returns a
    residual, which is added to the [0, 1]-clipped input; the sum is clipped
    to [0, 1] and unpacked. Tiles overlap by :data:`UNET_OVERLAP` packed pixels.

    References
    ----------
    S. Liu et al., "Deep-FlexISP: A Three-Stage Framework for Night
    Photography Rendering", CVPRW 2022 (q935970314/Deep-FlexISP,
    ``stage1/denoise.py`` and ``Night_Photography_2024/main_test.py``).
    """
    where = "Bayer-denoise method 'deepflexisp'"
    name = "deepflexisp.raw_denoise"
    m = np.asarray(mosaic, dtype=np.float32)
    if m.ndim != 2 or m.shape[0] % 2 or m.shape[1] % 2:
        raise InputError(f"{where}: expected an H×W mosaic with even H and W, got shape {m.shape}")
    pattern = check_cfa_pattern(cfa_pattern, where)
    order = get_model_entry(name).weights.contract.channel_order
    packed = np.clip(pack_bayer(m, pattern, order), 0.0, 1.0)
    if packed.size == 0:
        raise InputError(f"{where}: the mosaic is empty (shape {m.shape})")
    ceiling = max(RAW_DENOISE_CLIP_MEAN * float(packed.mean(dtype=np.float64)), RAW_DENOISE_CLIP_MIN)
    residual = _run_method_network(name, np.minimum(packed, np.float32(ceiling)), weights, device, where,
                                   random_weights)
    out = np.clip(packed + residual, 0.0, 1.0)
    return unpack_bayer(np.ascontiguousarray(out, dtype=np.float32), pattern, order)


def _register_methods() -> list[str]:
    """Plug FC4 and the U-Net into the classical stages that exist; return what was registered."""
    done = []
    try:
        wb = importlib.import_module("ispkit.stages.white_balance")
    except ModuleNotFoundError as exc:
        if exc.name != "ispkit.stages.white_balance":
            raise
    else:
        wb.register_illuminant_method("fc4", estimate_illuminant_fc4, params=("weights", "device", "random_weights"), model="fc4.cwp")
        done.append("white_balance:fc4")
    try:
        bd = importlib.import_module("ispkit.stages.bayer_denoise")
    except ModuleNotFoundError as exc:
        if exc.name != "ispkit.stages.bayer_denoise":
            raise
    else:
        bd.register_bayer_denoise_method("unet", denoise_bayer_unet, params=("weights", "device", "random_weights"), model="unet.raw")
        bd.register_bayer_denoise_method("deepflexisp", denoise_bayer_deepflexisp, params=("weights", "device", "random_weights"),
                                         model="deepflexisp.raw_denoise")
        done.append("bayer_denoise:unet")
        done.append("bayer_denoise:deepflexisp")
    return done


REGISTERED_METHODS = _register_methods()
