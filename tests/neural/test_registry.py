"""The model zoo registry, and the battery every registered model passes.

Parametrised over ``list_models()``: a model added by any family file is
tested here for free (build, forward shape for its contract, backward,
state-dict round trips through every checkpoint wrapping, corrupt files).
"""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import ispkit.neural as neural
from ispkit.errors import ConfigError, ParameterError, UnknownNameError, WeightsError
from ispkit.neural import (
    InputContract,
    WeightsSpec,
    create_model,
    get_model_entry,
    list_models,
    load_weights,
    register_model,
)
from ispkit.neural.registry import MODELS
from ispkit.neural.weights import CONTRACT_DOMAINS

NAMES = list_models()


@pytest.fixture(scope="module", params=NAMES)
def built(request) -> tuple[str, nn.Module]:
    """Each model built once; pytest groups the battery by model, so one model is alive at a time."""
    torch.manual_seed(0)
    model = create_model(request.param)
    yield request.param, model
    del model


def _probe_input(name: str, model: nn.Module) -> torch.Tensor:
    c = get_model_entry(name).weights.contract
    side = max(16, c.size_multiple, int(getattr(model, "min_size", 1) or 1))
    if c.scale == 0.0:
        side = max(side, 48)  # global estimators (FC4) pool a few patches
    side = int(math.ceil(side / c.size_multiple) * c.size_multiple)
    torch.manual_seed(1)
    return torch.rand(1, c.in_channels, side, side)


def test_the_zoo_registers_the_foundation_families():
    assert {"fc4.cwp", "fc4.sum", "unet.raw"} <= set(NAMES)
    assert {"fc4", "unet"} <= set(neural.zoo.LOADED_FAMILIES)
    assert list_models("fc4") == ["fc4.cwp", "fc4.sum"]
    assert list_models("no_such_family") == []
    assert set(NAMES) <= set(MODELS) and NAMES == sorted(NAMES)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        create_model("fc4.cwpp")
    for name in NAMES:
        assert repr(name) in str(info.value)
    with pytest.raises(UnknownNameError):
        get_model_entry("nope")


def test_register_model_checks_names_and_collisions():
    contract = InputContract("rgb_linear", "RGB", "", None, 1, 1.0, 3, 3)
    spec = WeightsSpec("p", "u", "l", "s", contract)
    with pytest.raises(ConfigError, match="arch.variant"):
        register_model("NoDot", nn.Identity, spec)
    with pytest.raises(ConfigError, match="WeightsSpec"):
        register_model("x.y", nn.Identity, {"url": "u"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="already registered"):
        register_model("fc4.cwp", nn.Identity, spec)
    try:
        register_model("regtest.one", nn.Identity, spec, family="custom")
        register_model("regtest.one", nn.Identity, spec, family="custom")  # same builder: idempotent
        assert list_models("custom") == ["regtest.one"]
        assert get_model_entry("regtest.one").family == "custom"
    finally:
        MODELS.pop("regtest.one", None)


def test_create_model_device_dtype_and_mode():
    m = create_model("unet.raw", device="cpu", dtype="float64", eval=False)
    assert m.training and next(m.parameters()).dtype == torch.float64
    assert not create_model("unet.raw").training
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA"):
            create_model("unet.raw", device="cuda")
    with pytest.raises(ParameterError):
        create_model("unet.raw", device="gpu")
    with pytest.raises(ParameterError):
        create_model("unet.raw", dtype="int8")


# -- the per-model battery -------------------------------------------------------
def test_entry_is_documented(built):
    name, _ = built
    e = get_model_entry(name)
    assert e.name == name and e.family == name.split(".")[0]
    w = e.weights
    assert w.paper and w.license and w.source and e.description
    c = w.contract
    assert isinstance(c, InputContract) and c.domain in CONTRACT_DOMAINS
    if c.domain == "raw_packed":
        assert sorted(c.packed_order) == ["B", "Gb", "Gr", "R"]


def test_forward_shape_matches_contract_and_backward_runs(built):
    name, model = built
    c = get_model_entry(name).weights.contract
    x = _probe_input(name, model)
    side = x.shape[-1]
    want = (1, c.out_channels) if c.scale == 0.0 else (1, c.out_channels, round(side * c.scale),
                                                           round(side * c.scale))
    def first(out):  # models with an auxiliary output (MetaISP's illuminant head) return the image first
        return out[0] if isinstance(out, tuple) else out

    with torch.inference_mode():
        y = first(model(x))
    assert tuple(y.shape) == want and torch.isfinite(y).all()
    # backward (train mode): every parameter that took part gets a finite gradient
    model.train()
    try:
        model.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_(True)
        yg = first(model(xg))
        assert tuple(yg.shape) == want
        yg.float().square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, f"{name}: no parameter received a gradient"
        assert all(torch.isfinite(g).all() for g in grads)
        assert xg.grad is not None and torch.isfinite(xg.grad).all()
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    bad = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not bad, f"tensors differ after loading: {bad[:5]}"


def test_state_dict_round_trips(built, tmp_path):
    name, model = built
    sd = model.state_dict()
    # torch.save file → create_model
    path = tmp_path / "model.pth"
    torch.save(sd, path)
    loaded = create_model(name, weights=path)
    _assert_same_state(loaded, model)
    # safetensors (clones: safetensors refuses tensors sharing storage)
    st = tmp_path / "model.safetensors"
    save_file({k: v.detach().clone().contiguous() for k, v in sd.items()}, str(st))
    _assert_same_state(create_model(name, weights=st), model)
    st.unlink()
    # BasicSR's params_ema and DataParallel/Lightning wrappings, loaded into a scrambled copy
    for wrapped in ({"params_ema": sd, "params": {}},
                    {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 1}):
        with torch.no_grad():
            for p in loaded.parameters():
                p.zero_()
        load_weights(loaded, wrapped, key_remap=get_model_entry(name).weights.key_remap, name=name)
        _assert_same_state(loaded, model)
    del loaded
    # a truncated file names the file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as info:
        create_model(name, weights=path)
    assert str(path) in str(info.value)
    path.unlink()


def test_misshaped_and_missing_tensors_are_listed(built):
    name, model = built
    sd = dict(model.state_dict())
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim >= 1)
    bad = dict(sd)
    bad[key] = torch.zeros(tuple(s + 1 for s in sd[key].shape))
    with pytest.raises(WeightsError) as info:
        load_weights(model, bad, name=name)
    msg = str(info.value)
    shape = "[" + ", ".join(str(s) for s in sd[key].shape) + "]"
    assert key in msg and f"vs model {shape}" in msg and repr(name) in msg
    missing = dict(sd)
    last = list(sd)[-1]
    missing.pop(last)
    with pytest.raises(WeightsError, match="missing keys") as info:
        load_weights(model, missing, name=name)
    assert last in str(info.value)
    # nothing was loaded by the failed attempts
    assert all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())
