"""Safe checkpoint loading: containers, formats, corrupt files and mismatch reports."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from ispkit.errors import ParameterError, WeightsError
from ispkit.neural import InputContract, WeightsSpec, create_model, load_state_dict, load_weights, register_model
from ispkit.neural.registry import MODELS
from ispkit.neural.weights import remap_keys, sha256_file, unwrap_state_dict


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 1))


def _sd(seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    torch.manual_seed(seed)
    return Tiny().state_dict()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


CONTRACT = InputContract(domain="rgb_linear", channel_order="RGB", normalization="[0, 1]", gamma=None,
                         size_multiple=1, scale=1.0, in_channels=3, out_channels=2)


# -- contracts and specs --------------------------------------------------------
def test_input_contract_validates_fields():
    assert CONTRACT.in_channels == 3
    with pytest.raises(ParameterError, match="domain"):
        InputContract("raw", "RGB", "", None, 1, 1.0, 3, 3)
    with pytest.raises(ParameterError, match="size_multiple"):
        InputContract("rgb_linear", "RGB", "", None, 0, 1.0, 3, 3)
    with pytest.raises(ParameterError, match="permutation"):
        InputContract("raw_packed", "R,G,G,B", "", None, 2, 2.0, 4, 3)
    packed = InputContract("raw_packed", "B, Gr, R, Gb", "", None, 2, 2.0, 4, 3)
    assert packed.packed_order == ("B", "Gr", "R", "Gb")


def test_weights_spec_checks_digest_and_remap():
    with pytest.raises(ParameterError, match="sha256"):
        WeightsSpec("p", "u", "l", "s", CONTRACT, sha256="abc")
    with pytest.raises(ParameterError, match="key_remap"):
        WeightsSpec("p", "u", "l", "s", CONTRACT, key_remap=(("a",),))  # type: ignore[arg-type]
    spec = WeightsSpec("p", "u", "l", "s", CONTRACT, sha256="0" * 64, key_remap=((r"^net\.", ""),))
    assert spec.key_remap[0][1] == ""


# -- reading files ----------------------------------------------------------------
@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}},
    lambda sd: {"params": sd},
    lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 7},
    lambda sd: {"model": sd, "optimizer": {"lr": 1e-3}},
    lambda sd: {"net": sd},
    lambda sd: {"model": {"state_dict": sd}},
    lambda sd: {**sd, "epoch": 3, "note": "trained"},
], ids=["plain", "params_ema_first", "params", "state_dict+module", "model", "net", "nested", "extras"])
def test_load_state_dict_unwraps_containers(tmp_path, wrap):
    sd = _sd()
    path = tmp_path / "w.pth"
    torch.save(wrap(sd), path)
    assert _same(load_state_dict(path), sd)


def test_load_state_dict_reads_safetensors_by_content(tmp_path):
    sd = _sd(1)
    for name in ("w.safetensors", "misnamed.pth"):
        save_file(dict(sd), str(tmp_path / name))
        assert _same(load_state_dict(tmp_path / name), sd)


def test_legacy_non_zip_torch_file(tmp_path):
    sd = _sd(2)
    path = tmp_path / "legacy.pt"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    assert _same(load_state_dict(path), sd)


@pytest.mark.parametrize("cut", [0.5, 0.05])
def test_truncated_files_raise_weights_error_naming_the_file(tmp_path, cut):
    for name, writer in (("t.pth", lambda p: torch.save(_sd(), p)),
                         ("t.safetensors", lambda p: save_file(dict(_sd()), str(p)))):
        path = tmp_path / name
        writer(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(WeightsError) as info:
            load_state_dict(path)
        assert str(path) in str(info.value)


def test_not_a_checkpoint_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_text("this is a text file, not weights\n" * 20)
    with pytest.raises(WeightsError, match="junk.pth"):
        load_state_dict(junk)
    with pytest.raises(WeightsError, match="does not exist"):
        load_state_dict(tmp_path / "absent.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty.pth"):
        load_state_dict(empty)


class _Evil:
    """Unpickling this would create a marker file (it must never run)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_arbitrary_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _sd(), "hook": _Evil(str(marker))}, path)
    with pytest.raises(WeightsError) as info:
        load_state_dict(path)
    assert "evil.pth" in str(info.value)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(WeightsError, match="raw.pkl"):
        load_state_dict(raw)
    assert not marker.exists()


def test_containers_without_tensors_are_reported():
    with pytest.raises(WeightsError, match="no tensors"):
        unwrap_state_dict({"epoch": 1, "lr": 0.1})
    with pytest.raises(WeightsError, match="not a state dict"):
        unwrap_state_dict([torch.zeros(1)])


# -- fitting a model -----------------------------------------------------------------
def test_load_weights_reports_every_kind_of_mismatch():
    sd = dict(_sd())
    sd.pop("head.1.bias")                       # missing
    sd["extra.weight"] = torch.zeros(5)         # unexpected
    sd["conv.weight"] = torch.zeros(4, 3, 5, 5)  # mis-shaped
    with pytest.raises(WeightsError) as info:
        load_weights(Tiny(), sd, name="tiny.test")
    msg = str(info.value)
    assert "'tiny.test'" in msg
    assert "missing keys (1," in msg and "head.1.bias [2]" in msg
    assert "unexpected keys (1," in msg and "extra.weight [5]" in msg
    assert "conv.weight: checkpoint [4, 3, 5, 5] vs model [4, 3, 3, 3]" in msg
    assert "Traceback" not in msg


def test_strict_false_tolerates_missing_but_never_misshaped():
    sd = dict(_sd(3))
    sd.pop("head.1.bias")
    model = load_weights(Tiny(), sd, strict=False)
    assert torch.equal(model.conv.weight, sd["conv.weight"])
    sd["conv.bias"] = torch.zeros(7)
    with pytest.raises(WeightsError, match="conv.bias"):
        load_weights(Tiny(), sd, strict=False)


def test_key_remap_and_collisions():
    sd = {"backbone." + k: v for k, v in _sd(4).items()}
    model = load_weights(Tiny(), sd, key_remap=((r"^backbone\.", ""),))
    assert torch.equal(model.conv.weight, sd["backbone.conv.weight"])
    assert list(remap_keys({"a.x": torch.zeros(1)}, ((r"^a\.", "b."), (r"^b\.", "c."))).keys()) == ["c.x"]
    with pytest.raises(WeightsError, match="two checkpoint keys"):
        remap_keys({"a.x": torch.zeros(1), "b.x": torch.zeros(1)}, ((r"^[ab]\.", ""),))


def test_load_weights_rejects_non_float_and_wrong_types():
    sd = dict(_sd())
    sd["conv.weight"] = torch.zeros(4, 3, 3, 3, dtype=torch.int64)
    with pytest.raises(WeightsError, match="non-floating"):
        load_weights(Tiny(), sd)
    with pytest.raises(WeightsError, match="path or a state dict"):
        load_weights(Tiny(), 42)  # type: ignore[arg-type]


def test_create_model_verifies_sha256(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(_sd(5), path)
    good = sha256_file(path)
    import hashlib
    assert good == hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        register_model("tinytest.good", Tiny, WeightsSpec("p", "u", "l", "s", CONTRACT, sha256=good))
        register_model("tinytest.bad", Tiny, WeightsSpec("p", "u", "l", "s", CONTRACT, sha256="f" * 64))
        model = create_model("tinytest.good", weights=path)
        assert torch.equal(model.conv.weight, _sd(5)["conv.weight"])
        with pytest.raises(WeightsError) as info:
            create_model("tinytest.bad", weights=Path(path))
        assert good in str(info.value) and "f" * 64 in str(info.value)
        # a state dict in memory has no file to hash
        assert create_model("tinytest.bad", weights=_sd(5)).conv.weight.shape == (4, 3, 3, 3)
    finally:
        MODELS.pop("tinytest.good", None)
        MODELS.pop("tinytest.bad", None)
