"""MetaISP (``metaisp.real_e`` / ``real_illuminants`` / ``real_d``): official layout and forward pass.

The forward-equivalence golden file ``tests/resources/metaisp_golden.npz``
was made once, outside the repository, as follows:

1. The official code (vccimaging/MetaISP at dceff25: ``models/metaisp_model.py``,
   ``models/networks.py``, ``models/attention_models.py`` with timm 1.0.31 for
   ``Mlp``/``DropPath``/``trunc_normal_``) was built for each released
   configuration with ``options/base_options.py`` defaults and the README
   flags (``iso_exp``, ``illuminant``).
2. :func:`seeded_state_dict` below (NumPy ``RandomState`` — stable across
   versions — one draw per tensor in ``state_dict`` order, scaled by fan-in;
   BatchNorm running statistics included) was loaded into it with
   ``strict=True``, the model put in ``eval()`` mode, and :func:`seeded_inputs`
   fed to ``forward`` in the official argument order.
3. Its outputs (and, for ``real_illuminants``, the estimated colour scaler;
   for ``real_e`` the per-channel means of the ten ``latent=True`` renders)
   were saved in float32.

The test loads the same seeded weights into :class:`MetaISPNet` and checks
that it reproduces those numbers within float32 round-off.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ispkit.errors import InputError
from ispkit.neural.models.metaisp import (
    MetaISPConfig,
    MetaISPNet,
    make_attention_coords,
    make_coord,
)

LAYOUTS = Path(__file__).parent / "official_layouts"
GOLDEN = Path(__file__).parents[1] / "resources" / "metaisp_golden.npz"

CONFIGS = {
    "real_e": MetaISPConfig(),
    "real_illuminants": MetaISPConfig(illuminant=True),
    "real_d": MetaISPConfig(iso_exp=False),
}


def seeded_state_dict(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic weights for a layout: normal draws scaled by 1/sqrt(fan-in), positive variances."""
    rng = np.random.RandomState(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(0, dtype=torch.int64)
            continue
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        v = rng.standard_normal(shape)
        if key.endswith("running_var"):
            v = 0.5 + rng.random_sample(shape)
        elif key.endswith(("running_mean", ".bias")):
            v = 0.1 * v
        elif len(shape) == 1:  # norms, layer scales, temperatures: around one
            v = 1.0 + 0.1 * v
        elif key.endswith("emb.weight"):
            v = 0.5 * v
        else:
            v = v / np.sqrt(fan_in)
        out[key] = torch.from_numpy(np.asarray(v, dtype=np.float32))
    return out


def seeded_inputs(seed: int = 1, size: int = 16, full: int = 32) -> dict[str, torch.Tensor]:
    """Official inputs for a ``size``² packed RAW (mosaic 2·size) and a ``full``² global view."""
    rng = np.random.RandomState(seed)
    raw = torch.from_numpy(rng.random_sample((1, 4, size, size)).astype(np.float32))
    raw_full = torch.from_numpy(rng.random_sample((1, 3, full, full)).astype(np.float32))
    color_scaler = torch.tensor([1.8, 1.0, 1.5, 1.0], dtype=torch.float32).reshape(1, 4, 1, 1)
    return {
        "raw": raw, "raw_full": raw_full, "color_scaler": color_scaler,
        "coord": make_coord(size, size),
        "coords": make_attention_coords(size, size, full_size=2 * size).float(),
        "exp": torch.tensor([0.8], dtype=torch.float32),   # 1/125 s × 100
        "iso": torch.tensor([2.0], dtype=torch.float32),   # ISO 200 / 100
    }


def _layout(name: str) -> dict:
    return json.loads((LAYOUTS / f"metaisp_{name}.json").read_text())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_matches_official_layout(name):
    official = _layout(name)
    ours = {k: list(v.shape) for k, v in MetaISPNet(CONFIGS[name]).state_dict().items()}
    assert ours == official["keys"]
    assert list(ours) == list(official["keys"])
    assert len(ours) == official["num_keys"]
    assert sum(int(np.prod(s)) for s in ours.values()) == official["num_values"]


def test_parameter_counts_match_paper():
    # The paper reports ≈ 6.26 M parameters for the full model (real_E).
    counts = {k: sum(p.numel() for p in MetaISPNet(c).parameters()) for k, c in CONFIGS.items()}
    assert counts == {"real_e": 6_258_149, "real_illuminants": 6_353_129, "real_d": 6_257_501}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def _seeded_model(name: str) -> MetaISPNet:
    model = MetaISPNet(CONFIGS[name])
    model.load_state_dict(seeded_state_dict(_layout(name)["keys"]), strict=True)
    return model.eval()


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("device_id", [0, 2])
def test_forward_equals_official(name, device_id, golden):
    model = _seeded_model(name)
    x = seeded_inputs()
    with torch.inference_mode():
        out = model(x["raw"], x["raw_full"], x["color_scaler"], x["coord"], torch.tensor([device_id]), False,
                    x["coords"], x["exp"], x["iso"])
    if name == "real_illuminants":
        out, scaler = out
        np.testing.assert_allclose(scaler.numpy(), golden[f"{name}_{device_id}_scaler"], rtol=1e-4, atol=1e-5)
    ref = golden[f"{name}_{device_id}"]
    assert out.shape == ref.shape == (1, 3, 32, 32)
    scale = float(np.abs(ref).max())
    assert scale > 0.1  # the reference is not degenerate
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-4 * scale)


def test_latent_interpolation_equals_official(golden):
    model = _seeded_model("real_e")
    x = seeded_inputs()
    with torch.inference_mode():
        outs = model(x["raw"], x["raw_full"], x["color_scaler"], x["coord"], None, True, x["coords"],
                     x["exp"], x["iso"])
    means = np.stack([o.mean(dim=(2, 3))[0].numpy() for o in outs])
    ref = golden["real_e_latent_means"]
    assert means.shape == ref.shape == (10, 3)
    np.testing.assert_allclose(means, ref, rtol=0, atol=1e-4 * float(np.abs(ref).max()))


def test_devices_render_differently(golden):
    assert np.abs(golden["real_e_0"] - golden["real_e_2"]).max() > 1e-2


def test_input_checks():
    model = MetaISPNet(MetaISPConfig(ch1=8, ch2=8, emb_dim=8, xcit_dim=16, xcit_depth=1, illum_width=8)).eval()
    x = seeded_inputs(size=12)
    with pytest.raises(InputError, match="multiples of 8"):
        model(x["raw"], x["raw_full"], x["color_scaler"], x["coord"], torch.tensor([0]), False, x["coords"],
              x["exp"], x["iso"])
    x = seeded_inputs(size=16)
    with pytest.raises(InputError, match="device ids"):
        model(x["raw"], x["raw_full"], x["color_scaler"], x["coord"], torch.tensor([3]), False, x["coords"],
              x["exp"], x["iso"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_official_checkpoint_loads_strict_through_registry(name, tmp_path):
    from ispkit.neural.registry import create_model, get_model_entry

    # A stand-in for MetaISPNet_<variant>.pth saved from DataParallel: 'module.' keys, seeded values.
    state = {"module." + k: v for k, v in seeded_state_dict(_layout(name)["keys"], seed=3).items()}
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    model = create_model(f"metaisp.{name}", weights=path)
    sd = model.state_dict()
    assert all(torch.equal(sd[k[7:]], v) for k, v in state.items())
    assert not model.training
    c = get_model_entry(f"metaisp.{name}").weights.contract
    assert c.packed_order == ("B", "Gr", "R", "Gb") and c.scale == 2.0 and c.size_multiple == 8


def test_illuminant_head_tiles_average_unit_estimates_and_one_tile_is_the_release():
    """``illum_patch``: an input no larger than the patch is the release's head exactly; a larger one is
    covered by evenly spaced patch-sized tiles whose estimates combine as the mean direction at the mean length."""
    from dataclasses import replace

    from ispkit.errors import ParameterError
    from ispkit.neural.models.metaisp import _tile_origins

    from ispkit.neural.train.recipe_metaisp import TINY_CONFIG

    cfg = replace(TINY_CONFIG, illuminant=True)
    torch.manual_seed(3)
    whole = MetaISPNet(cfg).eval()
    tiled = MetaISPNet(replace(cfg, illum_patch=16)).eval()
    tiled.load_state_dict(whole.state_dict())
    emb = whole.embed(1)
    raw = torch.rand(2, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(tiled.estimate_color_scaler(raw, emb.expand(2, -1, -1, -1)),
                                   whole.estimate_color_scaler(raw, emb.expand(2, -1, -1, -1)), rtol=0, atol=0)
        big = torch.rand(1, 4, 24, 40)
        got = tiled.estimate_color_scaler(big, emb)
        assert _tile_origins(24, 16) == [0, 8] and _tile_origins(40, 16) == [0, 12, 24]
        ests = torch.stack([whole.estimate_color_scaler(big[:, :, y:y + 16, x:x + 16], emb).reshape(4)
                            for y in (0, 8) for x in (0, 12, 24)])
    unit = (ests / ests.norm(dim=1, keepdim=True)).mean(0)
    want = unit / unit.norm() * ests.norm(dim=1).mean()
    torch.testing.assert_close(got.reshape(4), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError, match="illum_patch"):
        MetaISPNet(replace(cfg, illum_patch=4))
