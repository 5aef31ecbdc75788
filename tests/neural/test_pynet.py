"""PyNET (``pynet.level0``): official layout, level outputs, shapes, trainability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import InputError, ParameterError
from ispkit.neural.models.pynet import ConvMultiBlock, PyNET

from ._training import fit_mse

LAYOUTS = Path(__file__).parent / "official_layouts"



@pytest.fixture(scope="module")
def official() -> dict:
    return json.loads((LAYOUTS / "pynet_level0.json").read_text())


@pytest.fixture(scope="module")
def full_model() -> PyNET:
    torch.manual_seed(0)
    return PyNET(level=0).eval()


def test_state_dict_matches_official_layout(full_model, official):
    ours = {k: list(v.shape) for k, v in full_model.state_dict().items()}
    assert ours == official["keys"]
    assert list(ours) == list(official["keys"])
    assert len(ours) == official["num_keys"] == 542
    assert sum(p.numel() for p in full_model.parameters()) == official["num_values"] == 47_554_738


def test_every_level_holds_all_modules(official):
    # The official model builds every level whatever `level` is, so any level loads the level-0 file.
    ours = {k: list(v.shape) for k, v in PyNET(level=5, width=32).state_dict().items()}
    assert ours == official["keys"]


def test_official_checkpoint_loads_strict_through_registry(official):
    from ispkit.neural.registry import create_model, get_model_entry

    fake = {"module." + k: torch.full(s, i / 1000.0) for i, (k, s) in enumerate(official["keys"].items())}
    model = create_model("pynet.level0", weights=fake)
    sd = model.state_dict()
    for i, k in enumerate(official["keys"]):
        assert torch.all(sd[k] == i / 1000.0), k
    entry = get_model_entry("pynet.level0")
    c = entry.weights.contract
    assert c.packed_order == ("B", "Gr", "R", "Gb")
    assert (c.size_multiple, c.scale, c.in_channels, c.out_channels) == (16, 2.0, 4, 3)
    assert "CC BY-NC-SA 4.0" in entry.weights.license


def test_full_model_forward_shape_and_range(full_model):
    x = torch.rand(1, 4, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        y = full_model(x)
    assert y.shape == (1, 3, 64, 96)
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0  # sigmoid output


def test_levels_share_weights_and_scale_by_two():
    torch.manual_seed(0)
    model0 = PyNET(level=0, width=4).eval()
    x = torch.rand(1, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    sizes = {}
    with torch.inference_mode():
        for level in range(6):
            m = PyNET(level=level, width=4).eval()
            m.load_state_dict(model0.state_dict(), strict=True)
            y = m(x)
            sizes[level] = y.shape[-1]
            assert m.scale == 2.0 ** (1 - level)
            if level == 1:  # level 1 output is computed on the way to level 0
                l1_d1 = model0.conv_l1_d1(x)
                l2_d1 = model0.conv_l2_d1(model0.pool1(l1_d1))
                l3_d1 = model0.conv_l3_d1(model0.pool2(l2_d1))
                l4_d1 = model0.conv_l4_d1(model0.pool3(l3_d1))
                _, a, b = model0.level_5(model0.pool4(l4_d1))
                _, a, b = model0.level_4(l4_d1, a, b)
                _, a, b = model0.level_3(l3_d1, a, b)
                _, a, b = model0.level_2(l2_d1, a, b)
                out1, _ = model0.level_1(l1_d1, a, b)
                torch.testing.assert_close(y, out1)
    assert sizes == {0: 64, 1: 32, 2: 16, 3: 8, 4: 4, 5: 2}


def test_conv_multi_block_concatenates_branches():
    block = ConvMultiBlock(6, 5, 7, instance_norm=True)
    y = block(torch.rand(2, 6, 12, 12))
    assert y.shape == (2, 15, 12, 12)
    assert sorted(n.split(".")[0] for n, _ in block.named_children()) == [
        "conv_3a", "conv_3b", "conv_5a", "conv_5b", "conv_7a", "conv_7b"]


def test_rejects_bad_inputs_and_parameters():
    model = PyNET(width=2)
    with pytest.raises(InputError, match="multiples of 16"):
        model(torch.zeros(1, 4, 40, 32))
    with pytest.raises(InputError, match="at least 32"):
        model(torch.zeros(1, 4, 16, 32))
    with pytest.raises(InputError, match="4×H×W"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ParameterError, match="level"):
        PyNET(level=6)
    with pytest.raises(ParameterError, match="width"):
        PyNET(width=3)


def test_narrow_model_is_dtype_agnostic():
    torch.manual_seed(0)
    model = PyNET(width=2).eval()
    x = torch.rand(1, 4, 32, 32, generator=torch.Generator().manual_seed(3))
    ref = model(x)
    torch.testing.assert_close(model.double()(x.double()).float(), ref, rtol=1e-4, atol=1e-5)


def test_narrow_model_backward_reaches_every_level():
    torch.manual_seed(0)
    model = PyNET(level=0, width=2)
    model(torch.rand(1, 4, 32, 32)).mean().backward()
    with_grad = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
    without = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is None}
    # Level 0 uses every module but the side outputs of levels 1-5, exactly as in the official model.
    assert without == {"conv_l1_out", "conv_l2_out", "conv_l3_out", "conv_l4_out", "conv_l5_out"}
    assert {"conv_l1_d1", "conv_l5_d4", "conv_t4b", "conv_l2_d12", "conv_l1_d14", "conv_t0", "conv_l0_d1"} <= with_grad


def test_narrow_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = PyNET(level=0, width=4)
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(1, 4, 4, 4, generator=g), size=(32, 32), mode="bilinear", align_corners=False)
    quad = torch.tensor([[0.9, 0.1], [0.2, 0.7]])
    quads = torch.stack([quad, quad.flip(0), quad.flip(1)])[None]
    target = F.interpolate(quads, size=(64, 64), mode="bilinear", align_corners=True)
    # The goal is a third of the first loss with a cap of 300 steps: here (AMD EPYC) seeds 0-5 reach a
    # third in ~15 steps and a tenth in 35-65, but an Intel CPU's float path reached only a quarter
    # (0.0041 of 0.0162) in 120 steps — the level-5 instance norms see 2×2 maps, so the trajectory is
    # sensitive to rounding. Training only the last convolution (gradients stopped above it) ends at
    # 0.90 of the first loss after 300 steps, so the test still fails a model whose gradients do not flow.
    opt = torch.optim.Adam(model.parameters(), lr=5e-3, foreach=True)
    first, best = fit_mse(model, x, target, opt, 300, goal=1 / 3)
    assert best <= first / 3, f"PyNET did not overfit: lowest loss {best:.4g} > first {first:.4g} / 3"
