"""Tiled inference: exactness against the untiled run, blending, budgets and padding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import InputError, ParameterError
from ispkit.neural import create_model
from ispkit.neural.models.unet import UNet
from ispkit.neural.stages import UNET_OVERLAP
from ispkit.neural.tiling import (
    CPU_PEAK_FACTOR,
    SURE_FIT_BYTES_PER_PIXEL,
    estimate_bytes_per_pixel,
    pad_to_multiple,
    run_tiled,
    tile_starts,
)


def _receptive_radius(net: torch.nn.Module, channels: int, block: int = 8, side: int = 160) -> int:
    """An upper bound of the receptive-field radius over every phase of a ``block``-periodic net.

    The gradient of a ``block``×``block`` patch of outputs marks the union of
    their receptive fields; its extent beyond the patch bounds every radius.
    """
    x = torch.rand(1, channels, side, side, requires_grad=True)
    c = side // 2
    net(x)[0, :, c:c + block, c:c + block].sum().backward()
    ys, xs = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0).unbind(1)
    far = c + block - 1
    return int(max(far - ys.min(), ys.max() - c, far - xs.min(), xs.max() - c))


@pytest.fixture(scope="module")
def unet_raw():
    torch.manual_seed(0)
    net = create_model("unet.raw")
    with torch.no_grad():
        net.head.weight.normal_(0, 0.1)  # not the identity start
    return net


def test_unet_raw_tiled_equals_untiled(unet_raw):
    radius = _receptive_radius(unet_raw, 5)
    assert 40 < radius <= UNET_OVERLAP  # the denoise method's overlap covers the receptive field
    x = torch.rand(1, 5, 237, 261)  # not multiples of 8: padding and cropping are exercised
    calls = []

    def fn(t):
        calls.append(tuple(t.shape[-2:]))
        return unet_raw(t)

    with torch.inference_mode():
        ref = run_tiled(unet_raw, x, tile=None, overlap=0, scale=1.0, multiple=8)
        assert ref.shape == (1, 4, 237, 261)
        for tile in (200,):
            out = run_tiled(fn, x, tile=tile, overlap=radius, scale=1.0, multiple=8)
            assert out.shape == ref.shape
            assert (out - ref).abs().max().item() < 1e-4
    assert len(calls) >= 4 and all(h % 8 == 0 and w % 8 == 0 for h, w in calls)


def test_scaled_outputs_tile_exactly():
    torch.manual_seed(1)
    net = UNet(4, 12, base=8, depth=2, residual=False).eval()
    up = torch.nn.Sequential(net, torch.nn.PixelShuffle(2))  # packed → 2× like a raw-to-RGB model
    down = lambda t: F.avg_pool2d(net(t), 4)                # a ¼-scale enhancer
    radius = _receptive_radius(net, 4, block=4, side=128)
    x = torch.rand(1, 4, 90, 118)
    with torch.inference_mode():
        ref2 = run_tiled(up, x, tile=None, overlap=0, scale=2.0, multiple=4)
        out2 = run_tiled(up, x, tile=96, overlap=radius, scale=2.0, multiple=4)
        assert out2.shape == (1, 3, 180, 236)
        assert (out2 - ref2).abs().max().item() < 1e-4
        ref4 = run_tiled(down, x, tile=None, overlap=0, scale=0.25, multiple=4)
        out4 = run_tiled(down, x, tile=96, overlap=radius + 4, scale=0.25, multiple=4)
        assert out4.shape == (1, 12, 23, 30)  # ⌊90/4 + ½⌋, ⌊118/4 + ½⌋
        assert (out4 - ref4).abs().max().item() < 1e-4


def test_no_output_pixel_comes_from_near_a_cut():
    """A fn returning its tile's start column shows which tiles feed each output pixel."""
    x = torch.zeros(1, 1, 8, 200)
    overlap = 10

    def start_marker(t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, float(start_marker.starts.pop(0)))

    starts = tile_starts(200, 64, overlap, 1)
    assert starts[0] == 0 and starts[-1] == 136 and all(b - a <= 64 - 3 * overlap for a, b in zip(starts, starts[1:]))
    start_marker.starts = list(starts)  # type: ignore[attr-defined]
    out = run_tiled(start_marker, x, tile=64, overlap=overlap, scale=1.0, multiple=1)[0, 0, 0]
    for a, b in zip(starts, starts[1:]):
        # within `overlap` of tile b's left edge only tile a counts, and vice versa
        assert torch.all(out[b:b + overlap] <= a + 1e-4)
        assert torch.all(out[a + 64 - overlap:a + 64] >= b - 1e-4) if a + 64 <= 200 else True
    # the blend is monotone between neighbouring tiles (a smooth ramp, no jump)
    assert torch.all(out[1:] - out[:-1] >= -1e-4)


def test_memory_budget_picks_the_tile(unet_raw):
    x = torch.rand(1, 5, 160, 200)
    sizes = []

    def fn(t):
        sizes.append(tuple(t.shape[-2:]))
        return unet_raw(t)

    with torch.inference_mode():
        ref = run_tiled(unet_raw, x, tile=None, overlap=0, scale=1.0, multiple=8)
        out = run_tiled(fn, x, tile=None, overlap=48, scale=1.0, multiple=8,
                        memory_budget_bytes=300_000_000, bytes_per_pixel=1e6)
    # budget / bpp = 300 px → 17 px sides, raised to the minimum 3·overlap + 2·8 = 160
    assert len(sizes) > 1 and max(max(s) for s in sizes) == 160
    assert (out - ref).abs().max().item() < 1e-4


def test_small_images_skip_the_probe():
    called = []

    def bpp():
        called.append(1)
        return 1e3

    x = torch.rand(1, 3, 20, 30)
    out = run_tiled(lambda t: t * 2, x, tile=None, overlap=4, scale=1.0, multiple=1,
                    memory_budget_bytes=20 * 30 * SURE_FIT_BYTES_PER_PIXEL, bytes_per_pixel=bpp)
    torch.testing.assert_close(out, x * 2)
    assert not called
    run_tiled(lambda t: t * 2, x, tile=None, overlap=4, scale=1.0, multiple=1,
              memory_budget_bytes=1000, bytes_per_pixel=bpp)
    assert called


def test_estimate_bytes_per_pixel_is_size_independent(unet_raw):
    a = estimate_bytes_per_pixel(unet_raw, 5, multiple=8, side=32)
    b = estimate_bytes_per_pixel(unet_raw, 5, multiple=8, side=64)
    assert abs(a - b) / b < 0.05
    # the largest module output is a 16-channel float32 map at full resolution (64 B/px)
    assert a == pytest.approx(CPU_PEAK_FACTOR * 64 + 5 * 4)
    assert estimate_bytes_per_pixel(lambda t: t, 3) == 4096.0


def test_padding_reflects_and_respects_minimum():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    p, ph, pw = pad_to_multiple(x, 4)
    assert (ph, pw) == (1, 0) and torch.equal(p[0, 0, 3], x[0, 0, 1])  # reflected row
    q, ph, pw = pad_to_multiple(x, 1, min_size=8)
    assert q.shape[-2:] == (8, 8) and (ph, pw) == (5, 4)
    assert torch.equal(q[0, 0, 7, :4], x[0, 0, 2])  # too small to reflect: replicated
    same, ph, pw = pad_to_multiple(x, 1)
    assert same is x and (ph, pw) == (0, 0)


def test_min_size_pads_the_input():
    seen = []

    def fn(t):
        seen.append(tuple(t.shape[-2:]))
        return t

    out = run_tiled(fn, torch.rand(1, 2, 10, 12), tile=None, overlap=0, scale=1.0, multiple=16, min_size=32)
    assert seen == [(32, 32)] and out.shape == (1, 2, 10, 12)


def test_errors_are_clear():
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ParameterError, match="too small for overlap"):
        run_tiled(lambda t: t, torch.rand(1, 3, 200, 200), tile=40, overlap=16, scale=1.0, multiple=1)
    with pytest.raises(InputError, match="N×C×H×W"):
        run_tiled(lambda t: t, x[0], tile=None, overlap=0, scale=1.0, multiple=1)
    with pytest.raises(ParameterError, match="scale"):
        run_tiled(lambda t: t, x, tile=None, overlap=0, scale=2.0, multiple=1)
    with pytest.raises(ParameterError, match="overlap"):
        run_tiled(lambda t: t, x, tile=None, overlap=-1, scale=1.0, multiple=1)
    with pytest.raises(ParameterError, match="simple ratio"):
        run_tiled(lambda t: t, x, tile=None, overlap=0, scale=math.pi, multiple=1)
    with pytest.raises(ParameterError, match="multiple"):
        run_tiled(lambda t: t, x, tile=None, overlap=0, scale=1.0, multiple=0)
