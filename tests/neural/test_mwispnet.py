"""MW-ISPNet (``mwispnet.aim2020``): official layout, Haar transforms, shapes, trainability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import InputError, ParameterError
from ispkit.neural.models.mwispnet import HaarDWT, HaarIDWT, MWISPNet

from ._training import fit_mse

LAYOUTS = Path(__file__).parent / "official_layouts"



@pytest.fixture(scope="module")
def official() -> dict:
    return json.loads((LAYOUTS / "mwispnet_aim2020.json").read_text())


@pytest.fixture(scope="module")
def full_model() -> MWISPNet:
    torch.manual_seed(0)
    return MWISPNet().eval()


def _official_haar_filters() -> np.ndarray:
    # networks.py DWTForward: ll, lh, hl, hh, each flipped [::-1, ::-1], stacked to 4×1×2×2.
    ll = np.array([[0.5, 0.5], [0.5, 0.5]])
    lh = np.array([[-0.5, -0.5], [0.5, 0.5]])
    hl = np.array([[-0.5, 0.5], [-0.5, 0.5]])
    hh = np.array([[0.5, -0.5], [-0.5, 0.5]])
    return np.stack([f[None, ::-1, ::-1] for f in (ll, lh, hl, hh)], axis=0)


def _reference_dwt(x: np.ndarray) -> np.ndarray:
    """Grouped stride-2 cross-correlation with the official filters, written out by hand."""
    f = _official_haar_filters()[:, 0]
    n, c, h, w = x.shape
    out = np.zeros((n, 4 * c, h // 2, w // 2))
    for ch in range(c):
        for k in range(4):
            for a in range(2):
                for b in range(2):
                    out[:, 4 * ch + k] += f[k, a, b] * x[:, ch, a::2, b::2]
    return out


def test_state_dict_matches_official_layout(full_model, official):
    ours = {k: list(v.shape) for k, v in full_model.state_dict().items()}
    assert ours == official["keys"]
    assert list(ours) == list(official["keys"])
    assert len(ours) == official["num_keys"] == 997
    assert sum(v.numel() for v in full_model.state_dict().values()) == official["num_values"] == 29_219_345
    assert sum(p.numel() for p in full_model.parameters()) == 29_219_249


def test_official_checkpoint_loads_strict_through_registry(official):
    from ispkit.neural.registry import create_model, get_model_entry

    # A stand-in for mwcnnvggssim4_epoch_60.pth: DataParallel keys, each tensor filled with its index.
    items = enumerate(official["keys"].items())
    fake = {"module." + k: torch.full(shape, float(i) / 1000.0) for i, (k, shape) in items}
    model = create_model("mwispnet.aim2020", weights=fake)
    sd = model.state_dict()
    for i, k in enumerate(official["keys"]):
        assert torch.all(sd[k] == float(i) / 1000.0), k
    assert not model.training

    entry = get_model_entry("mwispnet.aim2020")
    contract = entry.weights.contract
    assert entry.family == "mwispnet"
    assert contract.domain == "raw_packed"
    assert contract.packed_order == ("B", "Gr", "R", "Gb")
    assert (contract.size_multiple, contract.scale, contract.in_channels, contract.out_channels) == (8, 2.0, 4, 3)
    assert "no licence" in entry.weights.license


def test_haar_filters_equal_official_values():
    assert np.array_equal(HaarDWT().weight.numpy(), _official_haar_filters().astype(np.float32))
    assert np.array_equal(HaarIDWT().weight.numpy(), _official_haar_filters().astype(np.float32))


def test_haar_dwt_matches_hand_written_reference(rng):
    x = rng.standard_normal((2, 3, 8, 6))
    got = HaarDWT().double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, _reference_dwt(x), rtol=0, atol=1e-12)
    # LL is twice the 2×2 block mean; the transform is orthonormal (energy preserved).
    np.testing.assert_allclose(got[:, 0::4], 2.0 * x.reshape(2, 3, 4, 2, 3, 2).mean(axis=(3, 5)), atol=1e-12)
    np.testing.assert_allclose((got ** 2).sum(), (x ** 2).sum(), rtol=1e-12)


def test_haar_idwt_inverts_dwt(rng):
    x = torch.from_numpy(rng.standard_normal((1, 5, 16, 12)))
    dwt, idwt = HaarDWT().double(), HaarIDWT().double()
    torch.testing.assert_close(idwt(dwt(x)), x, rtol=0, atol=1e-12)
    y = torch.from_numpy(rng.standard_normal((1, 8, 4, 4)))
    torch.testing.assert_close(dwt(idwt(y)), y, rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="multiple of 4"):
        idwt(torch.zeros(1, 6, 4, 4, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_haar_transforms_follow_input_dtype(dtype, rng):
    x = torch.from_numpy(rng.random((1, 2, 8, 8)).astype(np.float32))
    dwt, idwt = HaarDWT(), HaarIDWT()  # float32 buffers, low- or high-precision input
    y = dwt(x.to(dtype))
    assert y.dtype == dtype
    back = idwt(y)
    assert back.dtype == dtype
    tol = 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-6
    torch.testing.assert_close(back.float(), x, rtol=0, atol=tol)
    torch.testing.assert_close(y.float(), dwt(x), rtol=0, atol=2 * tol)


def test_forward_shape_follows_contract(full_model):
    x = torch.rand(1, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        y = full_model(x)
    assert y.shape == (1, 3, 64, 64)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_rejects_bad_inputs_and_parameters():
    model = MWISPNet(channels=(8, 8, 8), num_blocks=1)
    with pytest.raises(InputError, match="multiples of 8"):
        model(torch.zeros(1, 4, 12, 16))
    with pytest.raises(InputError, match="4×H×W"):
        model(torch.zeros(1, 3, 16, 16))
    with pytest.raises(InputError, match="4×H×W"):
        model(torch.zeros(4, 16, 16))
    with pytest.raises(ParameterError, match="channels"):
        MWISPNet(channels=(8, 8))
    with pytest.raises(ParameterError, match="num_blocks"):
        MWISPNet(num_blocks=-1)


def test_narrow_model_is_dtype_agnostic():
    torch.manual_seed(0)
    model = MWISPNet(channels=(8, 8, 8), num_blocks=1, reduction=4).eval()
    x = torch.rand(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    ref = model(x)
    cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, ref, rtol=1e-5, atol=1e-6)
    y64 = model.double()(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), ref, rtol=1e-4, atol=1e-5)
    ybf = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert ybf.dtype == torch.bfloat16
    assert torch.isfinite(ybf).all()


def test_narrow_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = MWISPNet(channels=(16, 16, 16), num_blocks=1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 4, 32, 32, generator=g)
    target = F.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(64, 64), mode="bilinear", align_corners=False)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first, best = fit_mse(model, x, target, opt, 150)
    assert all(p.grad is not None for p in model.parameters())
    assert best <= 0.1 * first
