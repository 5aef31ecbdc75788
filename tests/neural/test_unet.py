"""The packed-Bayer U-Net: shapes, residual identity, equivariance, trainability, the denoise plug-in."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ispkit.errors import InputError, MissingWeightsError, ParameterError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.neural import RandomWeightsWarning, create_model, denoise_bayer_unet, pack_bayer, unpack_bayer
from ispkit.neural.models.unet import UNet

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


@pytest.mark.parametrize("depth, base, cin, cout", [(1, 4, 4, 4), (2, 8, 5, 4), (3, 16, 5, 4), (2, 4, 3, 12)])
def test_shapes_and_channel_widths(depth, base, cin, cout):
    net = UNet(cin, cout, base=base, depth=depth, residual=cin >= cout)
    side = 4 * 2 ** depth
    y = net(torch.rand(2, cin, side, side + 2 ** depth))
    assert tuple(y.shape) == (2, cout, side, side + 2 ** depth)
    assert net.size_multiple == 2 ** depth
    assert net.bottleneck[0].out_channels == base * 2 ** depth
    assert [e[0].out_channels for e in net.encoders] == [base * 2 ** i for i in range(depth)]


def test_unet_raw_is_the_registered_configuration():
    net = create_model("unet.raw")
    assert (net.in_channels, net.out_channels, net.base, net.depth, net.residual) == (5, 4, 16, 3, True)
    assert sum(p.numel() for p in net.parameters()) < 600_000


def test_residual_net_starts_as_identity_and_bad_configs_raise():
    net = UNet(5, 4)
    x = torch.rand(1, 5, 16, 24)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), x[:, :4], rtol=0, atol=0)
    plain = UNet(4, 4, residual=False)
    assert not torch.allclose(plain(torch.rand(1, 4, 16, 16)), torch.zeros(1))
    with pytest.raises(ParameterError, match="residual"):
        UNet(3, 4, residual=True)
    with pytest.raises(ParameterError, match="depth"):
        UNet(4, 4, depth=0)


def test_translation_equivariance_by_the_size_multiple():
    torch.manual_seed(0)
    net = UNet(4, 4, base=8, depth=2, residual=False).eval()
    x = torch.rand(1, 4, 64, 64)
    with torch.inference_mode():
        full = net(x)
        shifted = net(x[..., 8:, 4:])  # shifts by multiples of 2**depth = 4
    # away from the borders (receptive-field radius 22) the outputs agree
    torch.testing.assert_close(shifted[..., 24:-24, 24:-24], full[..., 32:-24, 28:-24], atol=1e-5, rtol=1e-5)


def _bayer_scene(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side] / side
    scenes = []
    for _ in range(n):
        a, b, c = rng.uniform(2, 6, 3)
        base = 0.5 + 0.3 * np.sin(a * xx + b * yy) * np.cos(c * yy)
        scenes.append(base)
    return np.stack(scenes).astype(np.float32)


def test_unet_raw_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    clean_mosaics = _bayer_scene(rng, 2, 64)  # 64² mosaic crops
    sigma = 0.08
    noisy = clean_mosaics + sigma * rng.standard_normal(clean_mosaics.shape).astype(np.float32)
    pack = lambda m: torch.from_numpy(np.stack([pack_bayer(x, "RGGB").transpose(2, 0, 1) for x in m]))
    x = torch.cat([pack(noisy), torch.full((2, 1, 32, 32), sigma)], dim=1)
    # a reverse-ISP flavoured target: white-balance gains on the clean planes (the
    # residual net starts as the identity, so only learning reduces the loss)
    target = pack(clean_mosaics) * torch.tensor([2.0, 1.0, 1.0, 1.6])[None, :, None, None]
    net = create_model("unet.raw", eval=False)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    first = last = torch.mean((net(x) - target) ** 2).item()
    steps = 0
    while steps < 200 and last >= 0.1 * first:
        opt.zero_grad()
        loss = torch.mean((net(x) - target) ** 2)
        loss.backward()
        opt.step()
        last, steps = loss.item(), steps + 1
    assert last < 0.1 * first, f"MSE fell only from {first:.2e} to {last:.2e} in {steps} steps"


# -- the Bayer-denoise method --------------------------------------------------------
@pytest.fixture(scope="module")
def unet_weights(tmp_path_factory):
    torch.manual_seed(5)
    net = create_model("unet.raw")
    with torch.no_grad():
        net.head.weight.normal_(0, 0.05)  # a non-identity checkpoint
        net.head.bias.uniform_(-0.01, 0.01)
    path = tmp_path_factory.mktemp("unet") / "unet_raw.pth"
    torch.save(net.state_dict(), path)
    return path


def _reference_denoise(mosaic: np.ndarray, pattern: str, sigma_plane: np.ndarray, path) -> np.ndarray:
    """Pack R, Gr, Gb, B + σ plane, run untiled (padded by reflection), unpack."""
    net = create_model("unet.raw", weights=path)
    packed = pack_bayer(mosaic, pattern, "R,Gr,Gb,B")
    x = torch.from_numpy(np.concatenate([packed, sigma_plane[..., None]], -1).transpose(2, 0, 1).copy())[None]
    h, w = x.shape[-2:]
    x = torch.nn.functional.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")
    with torch.inference_mode():
        y = net(x)[0, :, :h, :w].numpy().transpose(1, 2, 0)
    return unpack_bayer(y, pattern, "R,Gr,Gb,B")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_denoise_method_matches_pack_run_unpack(unet_weights, pattern):
    rng = np.random.default_rng(1)
    mosaic = rng.random((44, 60)).astype(np.float32)
    out = denoise_bayer_unet(mosaic, pattern, 0.02, weights=str(unet_weights), device="cpu")
    assert out.shape == mosaic.shape and out.dtype == np.float32
    ref = _reference_denoise(mosaic, pattern, np.full((22, 30), 0.02, np.float32), unet_weights)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert np.abs(out - mosaic).max() > 1e-3  # the checkpoint is not the identity


def test_denoise_method_takes_a_sigma_map(unet_weights):
    rng = np.random.default_rng(2)
    mosaic = rng.random((32, 40)).astype(np.float32)
    smap = rng.uniform(0.0, 0.05, mosaic.shape).astype(np.float32)
    out = denoise_bayer_unet(mosaic, "GRBG", smap, weights=str(unet_weights), device="cpu")
    plane = smap.reshape(16, 2, 20, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out, _reference_denoise(mosaic, "GRBG", plane, unet_weights), atol=1e-5)


def test_untrained_denoise_method_is_the_exact_identity():
    rng = np.random.default_rng(3)
    mosaic = rng.random((200, 264)).astype(np.float32)
    with pytest.raises(MissingWeightsError, match="unet.raw"):
        denoise_bayer_unet(mosaic, "BGGR", 0.01, device="cpu")  # refuses unless opted in
    with pytest.warns(RandomWeightsWarning, match="unet.raw"):
        out = denoise_bayer_unet(mosaic, "BGGR", 0.01, device="cpu", random_weights=True)
    np.testing.assert_array_equal(out, mosaic)


def test_denoise_method_errors(unet_weights):
    w = str(unet_weights)
    with pytest.raises(InputError, match="even"):
        denoise_bayer_unet(np.zeros((31, 40), np.float32), "RGGB", 0.01, weights=w, device="cpu")
    with pytest.raises(ParameterError, match="sigma"):
        denoise_bayer_unet(np.zeros((32, 40), np.float32), "RGGB", np.zeros(3), weights=w, device="cpu")
    with pytest.raises(ParameterError, match="sigma"):
        denoise_bayer_unet(np.zeros((32, 40), np.float32), "RGGB", -0.1, weights=w, device="cpu")


def test_bayer_denoise_stage_uses_the_unet(unet_weights):
    bd = pytest.importorskip("ispkit.stages.bayer_denoise")
    rng = np.random.default_rng(4)
    mosaic = rng.random((32, 48)).astype(np.float32)
    frame = Frame(mosaic, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="GBRG"))
    stage = bd.BayerDenoise(method="unet", sigma=0.03, weights=str(unet_weights), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        out = stage(frame)
    ref = _reference_denoise(mosaic, "GBRG", np.full((16, 24), 0.03, np.float32), unet_weights)
    np.testing.assert_allclose(out.data, ref, atol=1e-5)
    assert type(stage).from_params(stage.to_config()["params"]) == stage
