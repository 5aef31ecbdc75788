"""Render a RAW in the look of another phone with MetaISP (stage ``device_rendition``).

:class:`DeviceRendition` builds every MetaISP input from a black-level
normalised mosaic and its metadata — packed planes in the official order,
the bilinear global view, the colour scaler from the as-shot neutral,
exposure and ISO, coordinate grids — and renders display RGB conditioned on
a target device or a mix of devices. The global branch (XCiT, illuminant
head, device embedding) sees the whole frame once; the local encoder–decoder
can run in tiles with enough context that the result equals the untiled one
(:func:`render_device_rendition`).

References
----------
M. Souza and W. Heidrich, "MetaISP — Exploiting Global Scene Structure for
Accurate Multi-Device Color Rendition", VMV 2023, arXiv:2401.03220.
G. D. Finlayson and E. Trezzi, "Shades of Gray and Colour Constancy",
CIC 2004 (the classical colour-scaler fallback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ParameterError, unknown_name
from ..frame import Domain, Frame
from ..pipeline import StageSpec, register_stage
from ._io import pack_bayer
from .device import DTYPES, check_device_name, inference_context
from .models.metaisp import (
    DEFAULT_EXPOSURE,
    DEFAULT_ISO,
    DEVICE_NAMES,
    GlobalPooling,
    MetaISPNet,
    _StopPass,
    global_view_size,
    make_attention_coords,
    make_coord,
    receptive_radius,
)
from .registry import list_models
from .stages import _NeuralStage
from .tiling import default_memory_budget

__all__ = [
    "DeviceRendition",
    "DEVICE_IDS",
    "METAISP_ORDER",
    "COLOR_SCALER_SOURCES",
    "BYTES_PER_PACKED_PIXEL",
    "normalize_target",
    "global_view",
    "color_scaler_from_gains",
    "estimate_color_scaler",
    "render_device_rendition",
]

#: Target device names → embedding rows of the official release.
DEVICE_IDS: dict[str, int] = {name: i for i, name in enumerate(DEVICE_NAMES)}
#: Packed channel order MetaISP was trained with (ispkit naming: Gr is the green on the red row).
METAISP_ORDER = "B,Gr,R,Gb"
#: Values of ``meta.extra["color_scaler_source"]``.
COLOR_SCALER_SOURCES = ("as_shot_neutral", "illuminant_head", "shades_of_gray")
#: Working memory of the released network per packed pixel of a tile (with its context), CPU float32,
#: rounded up: peak resident-set growth of an untiled forward divided by its packed pixels measured
#: 5.2 KB at 256² and 4.2 KB at 512² (torch 2.13, 2 threads, channels_last).
BYTES_PER_PACKED_PIXEL = 6 * 1024
#: Minkowski norm of the shades-of-gray fallback.
SHADES_OF_GRAY_P = 6
#: Packed values at or above this are treated as clipped by the fallback estimator.
CLIP_LEVEL = 0.98


def normalize_target(target: str | Mapping[str, float], where: str = "DeviceRendition") -> dict[str, float]:
    """Return ``{device name: weight}`` with weights summing to one.

    A name gives ``{name: 1.0}``. A mix must name known devices with finite
    weights ≥ 0, not all zero; weights that do not sum to one are
    normalised (``{"iphone_xr": 1, "pixel_6_pro": 3}`` is a 0.25/0.75 mix).

    Raises
    ------
    UnknownNameError : a device name not in :data:`DEVICE_IDS`.
    ParameterError : a negative, non-finite or all-zero weight, or an empty mix.
    """
    if isinstance(target, str):
        target = {target: 1.0}
    if not isinstance(target, Mapping) or not target:
        raise ParameterError(f"{where}: target must be a device name or a non-empty {{name: weight}} mix, "
                             f"got {target!r}")
    mix: dict[str, float] = {}
    for name, w in target.items():
        if name not in DEVICE_IDS:
            raise unknown_name("target device", name, DEVICE_IDS, where)
        if isinstance(w, bool) or not isinstance(w, (int, float, np.floating, np.integer)) \
                or not math.isfinite(float(w)) or float(w) < 0:
            raise ParameterError(f"{where}: target weight of {name!r} must be a finite number >= 0, got {w!r}")
        mix[name] = mix.get(name, 0.0) + float(w)
    total = sum(mix.values())
    if total <= 0:
        raise ParameterError(f"{where}: target weights sum to 0 ({target!r}); give at least one positive weight")
    return {k: v / total for k, v in sorted(mix.items())}


def global_view(mosaic: np.ndarray, cfa_pattern: str) -> np.ndarray:
    """Return MetaISP's global view: a bilinear demosaic (B, G, R) area-resized to about 448².

    Notes
    -----
    RAW_MOSAIC H×W float32 (black-level normalised) → h×w×3 float32 with
    (h, w) = :func:`~ispkit.neural.models.metaisp.global_view_size`. As the
    official ``extract_bayer_channels``: each Bayer plane is enlarged 2× by
    bilinear interpolation (``cv2.resize``), G is the mean of the two green
    planes, then ``cv2.INTER_AREA`` shrinks the (B, G, R) image.
    """
    planes = pack_bayer(mosaic, cfa_pattern, "R,Gr,Gb,B").astype(np.float32)
    hp, wp = planes.shape[:2]
    up = [cv2.resize(np.ascontiguousarray(planes[..., i]), (2 * wp, 2 * hp), interpolation=cv2.INTER_LINEAR)
          for i in range(4)]
    bgr = np.dstack([up[3], 0.5 * up[1] + 0.5 * up[2], up[0]])
    gh, gw = global_view_size(2 * hp, 2 * wp)
    mode = cv2.INTER_AREA if gh <= 2 * hp and gw <= 2 * wp else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(bgr, (gw, gh), interpolation=mode), dtype=np.float32)


def color_scaler_from_gains(wb_gains: np.ndarray) -> np.ndarray:
    """Return MetaISP's colour scaler (B, G, R, G) from white-balance gains (R, G, B).

    Notes
    -----
    Official ``meta_data_process``: 1 / AsShotNeutral per channel with the
    green neutral (1 in DNGs) as is; gains are normalised to G = 1 first.
    """
    g = np.asarray(wb_gains, dtype=np.float64).reshape(-1)[:3]
    if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise InputError(f"DeviceRendition: wb_gains must be three positive finite gains (R, G, B), got {wb_gains!r}")
    g = g / g[1]
    return np.array([g[2], 1.0, g[0], 1.0], dtype=np.float32)


def estimate_color_scaler(packed: np.ndarray, p: float = SHADES_OF_GRAY_P) -> np.ndarray:
    """Estimate the colour scaler (B, G, R, G) of a packed RAW by shades of gray.

    Notes
    -----
    ``packed`` H×W×4 in :data:`METAISP_ORDER`, black-level normalised. The
    illuminant is the Minkowski p-mean of each channel over pixels with no
    channel at or above :data:`CLIP_LEVEL` (all pixels if none remain); the
    gains are green / channel. p = 1 is gray world, p → ∞ max-RGB.
    """
    x = np.clip(np.asarray(packed, dtype=np.float64), 0.0, None)
    ok = np.all(x < CLIP_LEVEL, axis=-1)
    pix = x[ok] if np.count_nonzero(ok) >= 16 else x.reshape(-1, 4)
    e = np.power(np.mean(np.power(pix, p), axis=0), 1.0 / p)
    b, g, r = e[0], 0.5 * (e[1] + e[3]), e[2]
    if not (b > 0 and g > 0 and r > 0):
        return np.ones(4, dtype=np.float32)
    return np.array([g / b, 1.0, g / r, 1.0], dtype=np.float32)


def _tiles(n: int, core: int) -> list[tuple[int, int]]:
    return [(s, min(s + core, n)) for s in range(0, n, core)]


def render_device_rendition(net: MetaISPNet, raw: torch.Tensor, raw_full: torch.Tensor,
                            color_scaler: torch.Tensor | None, embedding: torch.Tensor,
                            exp: torch.Tensor | None, iso: torch.Tensor | None, *,
                            tile: int | None = None, overlap: int | None = None,
                            illum_patch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run MetaISP on a whole frame, its local branch optionally in tiles; return (rgb, colour scaler used).

    Parameters
    ----------
    net : a :class:`MetaISPNet`.
    raw : 1×4×H×W packed RAW (H, W multiples of 8).
    raw_full, color_scaler, exp, iso : the official inputs (``color_scaler``
        may be None with the illuminant head).
    embedding : 1×E×1×1 device embedding (a row of ``net.emb`` or a mix).
    tile : core side of a tile in packed pixels (rounded up to a multiple of
        8); None or a side ≥ the frame runs untiled.
    overlap : context on every side of a core, packed pixels (rounded up to 8);
        default :func:`~ispkit.neural.models.metaisp.receptive_radius`.
    illum_patch : the illuminant head's field of view (None: the network's
        configuration; 0: the whole frame; n: averaged over n×n tiles; see
        :meth:`~ispkit.neural.models.metaisp.MetaISPNet.estimate_color_scaler`).

    Notes
    -----
    Returns 1×3×2H×2W. The global branch, illuminant head and embedding run
    once on the whole frame. Each of the local branch's four query
    attentions pools every token of its level; tiled, those pools are summed
    over the tiles' cores in one extra pass per attention (softmax
    statistics merged exactly), so a tiled render costs about 3.5 untiled
    ones in arithmetic but only one tile's memory, and with ``overlap`` ≥ the
    receptive radius it equals the untiled render to float rounding.
    """
    _, _, h, w = raw.shape
    cond = net.condition(raw, raw_full, color_scaler, embedding, illum_patch)
    coord = make_coord(h, w).to(raw.device, raw.dtype)
    coords0 = make_attention_coords(h, w).to(raw.device, raw.dtype)
    if tile is None or (tile >= h and tile >= w):
        return net.local(raw, coord, cond, coords0, exp, iso), cond["color_scaler"]
    core = int(math.ceil(tile / 8) * 8)
    ctx = int(math.ceil((receptive_radius() if overlap is None else overlap) / 8) * 8)
    coords1 = F.interpolate(coords0, (h // 2, w // 2), mode="bilinear", align_corners=True)
    pieces = []
    for y0, y1 in _tiles(h, core):
        for x0, x1 in _tiles(w, core):
            ey0, ey1, ex0, ex1 = max(0, y0 - ctx), min(h, y1 + ctx), max(0, x0 - ctx), min(w, x1 + ctx)
            pieces.append(((y0, y1, x0, x1), (ey0, ey1, ex0, ex1)))
    pooling = GlobalPooling()

    def run(piece, collect):
        (y0, y1, x0, x1), (ey0, ey1, ex0, ex1) = piece
        pooling.core = (y0 - ey0, y1 - ey0, x0 - ex0, x1 - ex0)
        pooling.tile_height = ey1 - ey0
        pooling.counter = 0
        lv = [coords0[..., ey0:ey1, ex0:ex1], coords1[..., ey0 // 2:ey1 // 2, ex0 // 2:ex1 // 2]]
        return net.local(raw[..., ey0:ey1, ex0:ex1], coord[..., ey0:ey1, ex0:ex1], cond, lv, exp, iso, pooling)

    for k in range(4):
        pooling.start_pass(k)
        for piece in pieces:
            try:
                run(piece, k)
            except _StopPass:
                pass
        pooling.pooled[k] = pooling.finish()
    pooling.start_pass(None)
    out = torch.empty((1, 3, 2 * h, 2 * w), dtype=torch.float32, device=raw.device)
    for piece in pieces:
        (y0, y1, x0, x1), (ey0, _, ex0, _) = piece
        y = run(piece, None)
        out[..., 2 * y0:2 * y1, 2 * x0:2 * x1] = y[..., 2 * (y0 - ey0):2 * (y1 - ey0), 2 * (x0 - ex0):2 * (x1 - ex0)]
    return out, cond["color_scaler"]


def _auto_tile(h: int, w: int, overlap: int, budget: int) -> int | None:
    """Tile core side (packed) whose tile-with-context fits ``budget`` bytes; None when the frame fits whole."""
    if h * w * BYTES_PER_PACKED_PIXEL <= budget:
        return None
    side = int(math.sqrt(budget / BYTES_PER_PACKED_PIXEL)) - 2 * overlap
    return max(64, side // 8 * 8)


@register_stage
@dataclass(frozen=True)
class DeviceRendition(_NeuralStage):
    """Render a Bayer mosaic in the colour and tone of a target phone (MetaISP).

    Parameters
    ----------
    model : ``"metaisp.real_e"`` (WB + ISO/exposure inputs),
        ``"metaisp.real_illuminants"`` (estimates the colour scaler itself) or
        ``"metaisp.real_d"`` (no ISO/exposure input).
    weights : a checkpoint path, ``"auto"`` (``<model>.pth`` in
        ``$ISPKIT_WEIGHTS``; raises when absent) or None (refuses to run
        unless ``random_weights=True``: random weights, with a warning).
    target : ``"pixel_6_pro"``, ``"galaxy_s22"``, ``"iphone_xr"``, or a mix
        ``{"iphone_xr": 0.3, "pixel_6_pro": 0.7}`` whose device embeddings are
        interpolated (the paper's appearance interpolation). Mix weights must
        be ≥ 0; weights that do not sum to 1 are **normalised** (divided by
        their sum).
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    dtype : ``"float32"``, ``"float16"`` (CUDA autocast) or ``"bfloat16"``.
    tile : core side of a local-branch tile in packed pixels; None picks it
        from the memory budget (untiled when the frame fits).
    overlap : context kept around each core, packed pixels; the default
        (144, the receptive radius) makes tiled equal untiled.
    illuminant_patch : with the illuminant head, its field of view in packed
        pixels: None (the release: the whole frame) or n ≥ 8 (the mean
        estimate over n×n tiles). The head ends in a global max pool, so it
        is most accurate on inputs the size it was trained on: 224 for a
        head trained on the release's 448² patches, ``crop / 2`` for one
        trained by ``ispkit train metaisp --opt illuminant=1``.

    Notes
    -----
    RAW_MOSAIC H×W float32 after BlackLevel (nominally [0, 1], clipped below
    0 as the official loader does) → DISPLAY_RGB H×W×3 float32 sRGB, not
    clipped (odd trailing rows/columns are dropped). The colour scaler comes
    from ``meta.wb_gains`` (the as-shot neutral); without them the
    illuminant head of ``real_illuminants`` estimates it (that model always
    does), otherwise shades of gray on the packed RAW. Exposure and ISO
    default to 1/60 s and ISO 100 when missing. ``meta.device`` gets the
    target (``"galaxy_s22"``, or ``"iphone_xr:0.3+pixel_6_pro:0.7"`` for a
    mix); ``meta.extra`` gets ``color_scaler_source`` (one of
    :data:`COLOR_SCALER_SOURCES`), ``color_scaler`` (B, G, R, G),
    ``iso_exposure_source`` and the model record.

    References
    ----------
    M. Souza and W. Heidrich, "MetaISP — Exploiting Global Scene Structure
    for Accurate Multi-Device Color Rendition", VMV 2023, arXiv:2401.03220.
    """

    type_name = "device_rendition"
    kind: ClassVar[str] = "device rendition"
    model: str = "metaisp.real_e"
    weights: str | None = None
    target: str | dict[str, float] = "pixel_6_pro"
    device: str = "auto"
    dtype: str = "float32"
    tile: int | None = None
    overlap: int = receptive_radius()
    illuminant_patch: int | None = None

    def __post_init__(self) -> None:
        where = f"stage {self.type_name!r}"
        valid = list_models("metaisp")
        if self.model not in valid:
            raise unknown_name("MetaISP model", self.model, valid, f"{where} parameter 'model'")
        if self.weights is not None and not isinstance(self.weights, str):
            if hasattr(self.weights, "__fspath__"):
                object.__setattr__(self, "weights", str(self.weights))
            else:
                raise ParameterError(f"{where} parameter 'weights': expected a path, 'auto' or None, got {self.weights!r}")
        normalize_target(self.target, f"{where} parameter 'target'")
        if isinstance(self.target, Mapping):
            object.__setattr__(self, "target", {str(k): float(v) for k, v in self.target.items()})
        check_device_name(self.device, f"{where} parameter 'device'")
        if self.dtype not in DTYPES:
            raise ParameterError(f"{where} parameter 'dtype': expected one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 8):
            raise ParameterError(f"{where} parameter 'tile': expected None (automatic) or an int >= 8, got {self.tile!r}")
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise ParameterError(f"{where} parameter 'overlap': expected an int >= 0, got {self.overlap!r}")
        p = self.illuminant_patch
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 8):
            raise ParameterError(f"{where} parameter 'illuminant_patch': expected None (the whole frame) or an "
                                 f"int >= 8 (packed pixels), got {p!r}")

    def __hash__(self) -> int:
        return hash((self.type_name, self.model, self.weights, repr(self.target), self.device, self.dtype,
                     self.tile, self.overlap, self.illuminant_patch))

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.DISPLAY_RGB,
                         requires=("cfa_pattern",), provides=("color_space", "device"))

    @property
    def mix(self) -> dict[str, float]:
        """The target as normalised ``{device name: weight}``."""
        return normalize_target(self.target, f"stage {self.type_name!r} parameter 'target'")

    def embedding(self, net: MetaISPNet) -> torch.Tensor:
        """The 1×E×1×1 embedding of the target: the mix-weighted sum of device embeddings."""
        rows = torch.tensor([DEVICE_IDS[n] for n in self.mix], device=net.emb.weight.device)
        weights = torch.tensor(list(self.mix.values()), dtype=net.emb.weight.dtype, device=rows.device)
        return (weights[:, None] * net.emb(rows)).sum(dim=0)[None, :, None, None]

    def _inputs(self, frame: Frame, net: MetaISPNet) -> tuple[dict[str, Any], dict[str, Any]]:
        meta = frame.meta
        mosaic = np.asarray(frame.data, dtype=np.float32)
        h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
        if h < 2 or w < 2:
            raise InputError(f"stage {self.type_name!r}: the mosaic must be at least 2×2, got {mosaic.shape}")
        mosaic = np.maximum(mosaic[:h, :w], 0.0)
        packed = pack_bayer(mosaic, meta.cfa_pattern, METAISP_ORDER)
        view = global_view(mosaic, meta.cfa_pattern)
        extra: dict[str, Any] = {}
        if net.config.illuminant:
            scaler, extra["color_scaler_source"] = None, "illuminant_head"
        elif meta.wb_gains is not None:
            scaler, extra["color_scaler_source"] = color_scaler_from_gains(meta.wb_gains), "as_shot_neutral"
        else:
            scaler, extra["color_scaler_source"] = estimate_color_scaler(packed), "shades_of_gray"
        have = meta.iso is not None and meta.exposure_time is not None
        exposure = float(meta.exposure_time) if meta.exposure_time is not None else DEFAULT_EXPOSURE
        iso = float(meta.iso) if meta.iso is not None else DEFAULT_ISO
        if net.config.iso_exp:
            extra["iso_exposure_source"] = "metadata" if have else f"default (ISO {DEFAULT_ISO:g}, 1/60 s) for missing"
        ph, pw = packed.shape[:2]
        ph8, pw8 = -(-ph // 8) * 8, -(-pw // 8) * 8
        if (ph8, pw8) != (ph, pw):
            packed = np.pad(packed, ((0, ph8 - ph), (0, pw8 - pw), (0, 0)),
                            mode="reflect" if min(ph, pw) > 8 else "edge")
        t = {"raw": torch.from_numpy(np.ascontiguousarray(packed.transpose(2, 0, 1)))[None],
             "raw_full": torch.from_numpy(np.ascontiguousarray(view.transpose(2, 0, 1)))[None],
             "color_scaler": None if scaler is None else torch.from_numpy(scaler).reshape(1, 4, 1, 1),
             "exp": torch.tensor([exposure * 100.0], dtype=torch.float32),
             "iso": torch.tensor([iso / 100.0], dtype=torch.float32),
             "size": (h, w)}
        return t, extra

    def process(self, frame: Frame) -> Frame:
        net, dev = self.network()
        t, extra = self._inputs(frame, net)
        h, w = t.pop("size")
        tile = self.tile
        if tile is None:
            tile = _auto_tile(t["raw"].shape[2], t["raw"].shape[3], self.overlap, default_memory_budget(dev))
        with inference_context(dev, self.dtype):
            args = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
            rgb, scaler = render_device_rendition(
                net, args["raw"], args["raw_full"], args["color_scaler"], self.embedding(net),
                args["exp"], args["iso"], tile=tile, overlap=self.overlap,
                illum_patch=self.illuminant_patch)
        out = rgb[0, :, :h, :w].float().permute(1, 2, 0).cpu().numpy()
        mix = self.mix
        name = next(iter(mix)) if len(mix) == 1 else "+".join(f"{k}:{v:g}" for k, v in mix.items())
        extra["color_scaler"] = [float(v) for v in scaler.reshape(-1).float().cpu()]
        extra["device_mix"] = mix
        return self.with_record(frame, np.ascontiguousarray(out, dtype=np.float32), extra=extra,
                                domain=Domain.DISPLAY_RGB, color_space="sRGB", device=name)
