"""Run an image-to-image network over overlapping tiles and blend them smoothly.

Neighbouring tiles share a band of at least ``3·overlap`` input pixels. Each
tile's blending window is zero for the ``overlap`` pixels next to an inner
tile edge, rises with a raised-cosine ramp over the next ``overlap`` pixels
and is one elsewhere; the accumulated weights are normalised. So no output
pixel takes a value computed closer than ``overlap`` to a cut, and for a
convolutional network whose receptive-field radius is at most ``overlap``
the tiled result equals the untiled one (to float rounding), provided tiles
start on multiples of the network's size multiple (they do).
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ParameterError

__all__ = ["run_tiled", "estimate_bytes_per_pixel", "SURE_FIT_BYTES_PER_PIXEL", "default_memory_budget", "pad_to_multiple", "tile_starts"]

_GIB = 1 << 30

#: No network needs more than this per input pixel; an image whose pixels
#: times this fit the budget runs in one piece without probing.
SURE_FIT_BYTES_PER_PIXEL = 1 << 20

#: CPU memory estimate: this many times the largest activation of a probe run.
CPU_PEAK_FACTOR = 10


def default_memory_budget(device: torch.device | str = "cpu") -> int:
    """Bytes a tiled run may use: half the free CUDA memory, or min(2 GiB, ¼ of available RAM)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free * 0.5)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8 * _GIB
    return int(max(256 << 20, min(2 * _GIB, avail // 4)))


def estimate_bytes_per_pixel(model: Callable[[torch.Tensor], torch.Tensor], in_channels: int, *,
                             multiple: int = 1, device: torch.device | str = "cpu",
                             dtype: torch.dtype = torch.float32, side: int | None = None) -> float:
    """Estimate the memory a forward pass needs per input pixel from a small probe.

    Notes
    -----
    On CUDA the probe's peak allocation is measured. On the CPU (whose
    allocator torch does not track) it is :data:`CPU_PEAK_FACTOR` times the
    largest single leaf-module output, plus the input: on the zoo's models
    (U-Net, FC4, MW-ISPNet, PyNET, DeepFlexISP, HAT) the peak the torch
    profiler measures is 1.5–8.4 times the largest activation. A callable
    that is not an ``nn.Module`` gets 4 KiB per pixel.
    """
    dev = torch.device(device)
    if side is None:
        side = max(32, 2 * multiple)
    side = int(math.ceil(side / multiple) * multiple)
    probe = torch.rand(1, in_channels, side, side, device=dev, dtype=dtype)
    pixels = float(side * side)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        with torch.inference_mode():
            model(probe)
        torch.cuda.synchronize(dev)
        return max(1.0, (torch.cuda.max_memory_allocated(dev) - base) / pixels)
    if not isinstance(model, nn.Module):
        return 4096.0
    largest = [0]

    def hook(_mod: nn.Module, _inp: object, out: object) -> None:
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for o in outs:
            if isinstance(o, torch.Tensor):
                largest[0] = max(largest[0], o.numel() * o.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(True for _ in m.children())]
    try:
        with torch.inference_mode():
            model(probe)
    finally:
        for h in handles:
            h.remove()
    return max(1.0, (CPU_PEAK_FACTOR * largest[0] + probe.numel() * probe.element_size()) / pixels)


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 1) -> tuple[torch.Tensor, int, int]:
    """Pad the bottom and right of an NCHW tensor to multiples of ``multiple`` and at least ``min_size``.

    Reflection padding, or edge replication where the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph = max(h, min_size) + (-max(h, min_size)) % multiple - h
    pw = max(w, min_size) + (-max(w, min_size)) % multiple - w
    if ph == 0 and pw == 0:
        return x, 0, 0
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), ph, pw


def tile_starts(length: int, tile: int, overlap: int, align: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with bands ≥ 3·overlap."""
    if tile >= length:
        return [0]
    stride = (tile - 3 * overlap) // align * align
    if stride <= 0:
        raise ParameterError(
            f"tile {tile} is too small for overlap {overlap}: tiles must exceed 3·overlap by at least "
            f"{align} pixels; raise tile or lower overlap"
        )
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return sorted(set(starts))


def _window(length: int, margin: float, ramp: float, lead: bool, trail: bool,
            device: torch.device) -> torch.Tensor:
    """1-D blending window: 0 within ``margin`` of an inner edge, raised-cosine ramp, then 1."""
    w = torch.ones(length, dtype=torch.float32, device=device)
    if margin <= 0 and ramp <= 0:
        return w
    centre = torch.arange(length, dtype=torch.float32, device=device) + 0.5

    def edge(dist: torch.Tensor) -> torch.Tensor:
        t = ((dist - margin) / ramp).clamp(0.0, 1.0) if ramp > 0 else (dist >= margin).float()
        return 0.5 - 0.5 * torch.cos(math.pi * t)

    if lead:
        w = w * edge(centre)
    if trail:
        w = w * edge(length - centre)
    return w


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int | None,
              overlap: int, scale: float, multiple: int, memory_budget_bytes: int | None = None,
              bytes_per_pixel: float | Callable[[], float] | None = None, min_size: int = 1) -> torch.Tensor:
    """Apply ``fn`` to ``x`` tile by tile, blending overlaps, and return the whole output.

    Parameters
    ----------
    fn : maps an N×C×h×w tensor (h, w multiples of ``multiple``) to N×C'×h·scale×w·scale.
    x : the N×C×H×W input (any size; padded here by reflection, output cropped).
    tile : tile side in input pixels; ``None`` picks it from the memory budget.
    overlap : context pixels kept beside every inner cut (≥ the receptive-field
        radius for an exact result); neighbouring tiles share ≥ 3·overlap pixels.
    scale : output size / input size (e.g. 2 for packed RAW → RGB, 4 for ×4 SR).
    multiple : the network's input size multiple.
    memory_budget_bytes : bytes a tile may use when ``tile`` is None
        (default: :func:`default_memory_budget`).
    bytes_per_pixel : the network's memory per input pixel when ``tile`` is None,
        or a callable computing it (called only when the image might not fit;
        default: :func:`estimate_bytes_per_pixel` on ``fn``).
    min_size : the smallest tile side the network accepts (inputs are padded up to it).

    Returns
    -------
    The N×C'×⌊H·scale+½⌋×⌊W·scale+½⌋ output on ``fn``'s output device, float32.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise InputError(f"run_tiled: expected an N×C×H×W tensor, got {getattr(x, 'shape', type(x))}")
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InputError(f"run_tiled: the input is empty (shape {tuple(x.shape)})")
    if not isinstance(multiple, int) or multiple < 1:
        raise ParameterError(f"run_tiled: multiple must be a positive int, got {multiple!r}")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 0:
        raise ParameterError(f"run_tiled: overlap must be an int >= 0, got {overlap!r}")
    if not (scale > 0):
        raise ParameterError(f"run_tiled: scale must be > 0, got {scale!r}")
    frac = Fraction(scale).limit_denominator(64)
    if abs(float(frac) - scale) > 1e-9:
        raise ParameterError(f"run_tiled: scale {scale} is not a simple ratio of integers")
    align = multiple * frac.denominator // math.gcd(multiple, frac.denominator)

    n, _, h, w = x.shape
    if not isinstance(min_size, int) or min_size < 1:
        raise ParameterError(f"run_tiled: min_size must be a positive int, got {min_size!r}")
    min_side = int(math.ceil(min_size / align) * align)
    xp, _, _ = pad_to_multiple(x, align, min_side)
    hp, wp = xp.shape[-2:]
    out_h, out_w = math.floor(h * scale + 0.5), math.floor(w * scale + 0.5)

    if tile is None:
        budget = memory_budget_bytes if memory_budget_bytes is not None else default_memory_budget(x.device)
        if n * hp * wp * SURE_FIT_BYTES_PER_PIXEL <= budget:
            t = max(hp, wp)  # fits whatever the network: skip the probe
        else:
            bpp = bytes_per_pixel() if callable(bytes_per_pixel) else bytes_per_pixel
            if bpp is None:
                bpp = estimate_bytes_per_pixel(fn, x.shape[1], multiple=align, device=x.device, dtype=x.dtype)
            side = int(math.sqrt(max(1.0, budget / (float(bpp) * n))))
            t = max(side // align * align, (3 * overlap // align + 2) * align, min_side)
    else:
        if not isinstance(tile, int) or isinstance(tile, bool) or tile < 1:
            raise ParameterError(f"run_tiled: tile must be a positive int or None, got {tile!r}")
        t = max(tile // align * align, min_side)

    th, tw = min(t, hp), min(t, wp)
    if th >= hp and tw >= wp:
        out = fn(xp)
        _check_out(out, n, hp, wp, frac)
        return out[..., :out_h, :out_w].float()

    ys = tile_starts(hp, th, overlap, align)
    xs = tile_starts(wp, tw, overlap, align)
    margin_o = ramp_o = float(overlap * frac)
    acc: torch.Tensor | None = None
    wsum: torch.Tensor | None = None
    for y0 in ys:
        for x0 in xs:
            out = fn(xp[..., y0:y0 + th, x0:x0 + tw])
            _check_out(out, n, th, tw, frac)
            if acc is None:
                acc = torch.zeros((n, out.shape[1], int(hp * frac), int(wp * frac)), dtype=torch.float32,
                                  device=out.device)
                wsum = torch.zeros((int(hp * frac), int(wp * frac)), dtype=torch.float32, device=out.device)
            oh, ow = out.shape[-2:]
            wy = _window(oh, margin_o, ramp_o, y0 > 0, y0 + th < hp, out.device)
            wx = _window(ow, margin_o, ramp_o, x0 > 0, x0 + tw < wp, out.device)
            win = wy[:, None] * wx[None, :]
            oy, ox = int(y0 * frac), int(x0 * frac)
            acc[..., oy:oy + oh, ox:ox + ow] += out.float() * win
            wsum[oy:oy + oh, ox:ox + ow] += win  # type: ignore[index]
    if acc is None or wsum is None:  # unreachable: ys and xs are never empty
        raise InputError("run_tiled: no tile was processed")
    acc /= wsum.clamp_min(1e-12)
    return acc[..., :out_h, :out_w]


def _check_out(out: torch.Tensor, n: int, h: int, w: int, frac: Fraction) -> None:
    want = (int(h * frac), int(w * frac))
    if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[0] != n or tuple(out.shape[-2:]) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ParameterError(
            f"run_tiled: the network mapped a {h}×{w} tile to {got}, but scale {float(frac)} needs "
            f"{n}×C×{want[0]}×{want[1]}; check the model's InputContract.scale"
        )
