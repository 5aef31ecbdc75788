"""Deep-FlexISP (``deepflexisp.raw_denoise``, ``deepflexisp.enhance_2023``): layouts, shapes, trainability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import InputError, ParameterError
from ispkit.neural.models.deepflexisp import DeepFlexISPEnhancer, DeepFlexISPRawDenoiser

from ._training import fit_mse

LAYOUTS = Path(__file__).parent / "official_layouts"



def _layout(name: str) -> dict:
    return json.loads((LAYOUTS / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def enhancer() -> DeepFlexISPEnhancer:
    torch.manual_seed(0)
    return DeepFlexISPEnhancer().eval()


def _reference_sc_net_1f(m: DeepFlexISPRawDenoiser, x: torch.Tensor) -> torch.Tensor:
    """sc_net_1f.forward of network_raw_denoise.py, written with functional ops on the model's weights."""
    def c(name, t):
        return F.conv2d(t, getattr(m, name).weight, padding=1)

    def up(name, t):
        return F.conv_transpose2d(t, getattr(m, name).weight, stride=2)

    r = F.relu
    conv1 = r(c("conv1_1", x))
    b1 = conv1 + r(c("res_conv1_2", r(c("res_conv1_1", conv1))))
    p2 = F.avg_pool2d(b1, 2)
    b2 = p2 + r(c("res_conv2_2", r(c("res_conv2_1", p2))))
    p3 = F.avg_pool2d(b2, 2)
    b3 = p3 + r(c("res_conv3_2", r(c("res_conv3_1", p3))))
    d1 = up("deconv1", b3) + b2
    conv4 = r(c("conv4_1", d1))
    b4 = conv4 + r(c("res_conv4_2", r(c("res_conv4_1", conv4))))
    d2 = up("deconv2", b4) + b1
    conv5 = r(c("conv5_1", d2))
    b5 = conv5 + r(c("res_conv5_2", r(c("res_conv5_1", conv5))))
    return c("conv7_1", r(c("conv6_1", b5)))


# ---------------------------------------------------------------- raw_denoise


def test_raw_denoiser_state_dict_matches_official_layout():
    official = _layout("deepflexisp_raw_denoise")
    model = DeepFlexISPRawDenoiser()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == official["keys"]
    assert list(ours) == list(official["keys"])
    assert len(ours) == 17
    assert sum(p.numel() for p in model.parameters()) == official["num_values"] == 516_608


def test_raw_denoiser_forward_matches_functional_transcription():
    torch.manual_seed(0)
    model = DeepFlexISPRawDenoiser().eval()
    x = torch.rand(2, 4, 16, 24, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        y = model(x)
        ref = _reference_sc_net_1f(model, x)
    assert y.shape == (2, 4, 16, 24)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)


def test_raw_denoiser_checkpoint_loads_strict_through_registry():
    from ispkit.neural.registry import create_model, get_model_entry

    official = _layout("deepflexisp_raw_denoise")
    fake = {"params": {k: torch.full(s, i + 1.0) for i, (k, s) in enumerate(official["keys"].items())}}
    model = create_model("deepflexisp.raw_denoise", weights=fake)
    for i, k in enumerate(official["keys"]):
        assert torch.all(model.state_dict()[k] == i + 1.0), k
    contract = get_model_entry("deepflexisp.raw_denoise").weights.contract
    assert contract.packed_order == ("R", "Gr", "B", "Gb")
    assert (contract.size_multiple, contract.scale, contract.in_channels, contract.out_channels) == (4, 1.0, 4, 4)


def test_raw_denoiser_rejects_bad_shapes():
    model = DeepFlexISPRawDenoiser(channels=4)
    with pytest.raises(InputError, match="multiples of 4"):
        model(torch.zeros(1, 4, 10, 8))
    with pytest.raises(InputError, match="4×H×W"):
        model(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ParameterError):
        DeepFlexISPRawDenoiser(channels=0)


def test_raw_denoiser_narrow_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = DeepFlexISPRawDenoiser(channels=8)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 4, 32, 32, generator=g)
    residual = 0.1 * (F.interpolate(torch.rand(1, 4, 4, 4, generator=g), size=(32, 32), mode="bilinear",
                                    align_corners=False) - 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first, best = fit_mse(model, x, residual, opt, 450)  # a tenth after ~185 steps on an AMD EPYC
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert best <= 0.1 * first


# ---------------------------------------------------------------- enhance_2023


def test_enhancer_state_dict_matches_official_layout(enhancer):
    official = _layout("deepflexisp_enhance_2023")
    ours = {k: list(v.shape) for k, v in enhancer.state_dict().items()}
    assert ours == official["keys"]
    assert list(ours) == list(official["keys"])
    assert len(ours) == 995
    assert sum(v.numel() for v in enhancer.state_dict().values()) == official["num_values"] == 23_462_689


def test_enhancer_checkpoint_loads_strict_through_registry():
    from ispkit.neural.registry import create_model, get_model_entry

    official = _layout("deepflexisp_enhance_2023")
    keys = list(official["keys"].items())
    # test_night_render_2023.py: {'params': state dict, possibly with 'module.' prefixes}
    fake = {"params": {"module." + k: torch.full(s, i / 100.0) for i, (k, s) in enumerate(keys)}}
    model = create_model("deepflexisp.enhance_2023", weights=fake)
    sd = model.state_dict()
    for i, (k, _) in enumerate(keys):
        assert torch.all(sd[k] == i / 100.0), k
    entry = get_model_entry("deepflexisp.enhance_2023")
    c = entry.weights.contract
    assert (c.domain, c.channel_order, c.size_multiple, c.scale) == ("rgb_display", "BGR", 32, 0.25)
    assert entry.weights.license.startswith("MIT")


def test_enhancer_forward_returns_quarter_resolution(enhancer):
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        y = enhancer(x)
    assert y.shape == (1, 3, 16, 24)
    assert torch.isfinite(y).all()
    with pytest.raises(InputError, match="multiples of 32"):
        enhancer(torch.zeros(1, 3, 48, 64))
    with pytest.raises(InputError, match="3×H×W"):
        enhancer(torch.zeros(1, 4, 64, 64))


def test_enhancer_narrow_is_dtype_agnostic():
    torch.manual_seed(0)
    model = DeepFlexISPEnhancer(channels=(8, 8, 8), num_blocks=1, reduction=4).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    ref = model(x)
    torch.testing.assert_close(model.double()(x.double()).float(), ref, rtol=1e-4, atol=1e-5)
    ybf = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert ybf.dtype == torch.bfloat16 and ybf.shape == (1, 3, 8, 8)


def test_enhancer_narrow_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = DeepFlexISPEnhancer(channels=(8, 8, 8), num_blocks=1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g)
    target = F.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(16, 16), mode="bilinear", align_corners=False)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first, best = fit_mse(model, x, target, opt, 150)
    assert all(p.grad is not None for p in model.parameters())
    assert best <= 0.1 * first
