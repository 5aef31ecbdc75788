"""FC4: official layout, pooling, pre-processing, trainability and the white-balance plug-in."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import InputError, MissingWeightsError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.neural import RandomWeightsWarning, create_model, estimate_illuminant_fc4, get_model_entry
from ispkit.neural.models.fc4 import FC4

# The state_dict of matteo-rizzo/fc4-pytorch classes/fc4/FC4.py, written out by
# reading that file and torchvision's squeezenet.py (SqueezeNet 1.1):
# backbone = squeezenet1_1().features[:12] (conv1, 3 max-pools at 2/5/8, Fire
# modules at 3, 4, 6, 7, 9, 10, 11), final_convs = [MaxPool2d(2, 1, ceil),
# Conv2d(512, 64, 6, padding=3), ReLU, Dropout(0.5), Conv2d(64, 4|3, 1), ReLU].
_FIRES = {3: (64, 16, 64, 64), 4: (128, 16, 64, 64), 6: (128, 32, 128, 128), 7: (256, 32, 128, 128),
          9: (256, 48, 192, 192), 10: (384, 48, 192, 192), 11: (384, 64, 256, 256)}
OFFICIAL_KEYS_CWP = [
    ("backbone.0.weight", (64, 3, 3, 3)), ("backbone.0.bias", (64,)),
    ("backbone.3.squeeze.weight", (16, 64, 1, 1)), ("backbone.3.squeeze.bias", (16,)),
    ("backbone.3.expand1x1.weight", (64, 16, 1, 1)), ("backbone.3.expand1x1.bias", (64,)),
    ("backbone.3.expand3x3.weight", (64, 16, 3, 3)), ("backbone.3.expand3x3.bias", (64,)),
    ("backbone.4.squeeze.weight", (16, 128, 1, 1)), ("backbone.4.squeeze.bias", (16,)),
    ("backbone.4.expand1x1.weight", (64, 16, 1, 1)), ("backbone.4.expand1x1.bias", (64,)),
    ("backbone.4.expand3x3.weight", (64, 16, 3, 3)), ("backbone.4.expand3x3.bias", (64,)),
    ("backbone.6.squeeze.weight", (32, 128, 1, 1)), ("backbone.6.squeeze.bias", (32,)),
    ("backbone.6.expand1x1.weight", (128, 32, 1, 1)), ("backbone.6.expand1x1.bias", (128,)),
    ("backbone.6.expand3x3.weight", (128, 32, 3, 3)), ("backbone.6.expand3x3.bias", (128,)),
    ("backbone.7.squeeze.weight", (32, 256, 1, 1)), ("backbone.7.squeeze.bias", (32,)),
    ("backbone.7.expand1x1.weight", (128, 32, 1, 1)), ("backbone.7.expand1x1.bias", (128,)),
    ("backbone.7.expand3x3.weight", (128, 32, 3, 3)), ("backbone.7.expand3x3.bias", (128,)),
    ("backbone.9.squeeze.weight", (48, 256, 1, 1)), ("backbone.9.squeeze.bias", (48,)),
    ("backbone.9.expand1x1.weight", (192, 48, 1, 1)), ("backbone.9.expand1x1.bias", (192,)),
    ("backbone.9.expand3x3.weight", (192, 48, 3, 3)), ("backbone.9.expand3x3.bias", (192,)),
    ("backbone.10.squeeze.weight", (48, 384, 1, 1)), ("backbone.10.squeeze.bias", (48,)),
    ("backbone.10.expand1x1.weight", (192, 48, 1, 1)), ("backbone.10.expand1x1.bias", (192,)),
    ("backbone.10.expand3x3.weight", (192, 48, 3, 3)), ("backbone.10.expand3x3.bias", (192,)),
    ("backbone.11.squeeze.weight", (64, 384, 1, 1)), ("backbone.11.squeeze.bias", (64,)),
    ("backbone.11.expand1x1.weight", (256, 64, 1, 1)), ("backbone.11.expand1x1.bias", (256,)),
    ("backbone.11.expand3x3.weight", (256, 64, 3, 3)), ("backbone.11.expand3x3.bias", (256,)),
    ("final_convs.1.weight", (64, 512, 6, 6)), ("final_convs.1.bias", (64,)),
    ("final_convs.4.weight", (4, 64, 1, 1)), ("final_convs.4.bias", (4,)),
]
OFFICIAL_KEYS_SUM = OFFICIAL_KEYS_CWP[:-2] + [("final_convs.4.weight", (3, 64, 1, 1)),
                                             ("final_convs.4.bias", (3,))]
# torchvision's published parameter count of squeezenet1_1 (1 235 496) minus
# fire9 (197 184) and the classifier conv 512→1000 (513 000).
SQUEEZENET11_FEATURES_12_PARAMS = 1_235_496 - 197_184 - 513_000


@pytest.mark.parametrize("name, keys", [("fc4.cwp", OFFICIAL_KEYS_CWP), ("fc4.sum", OFFICIAL_KEYS_SUM)])
def test_state_dict_matches_the_official_layout(name, keys):
    sd = create_model(name).state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == keys


def test_backbone_is_squeezenet11_conv1_to_fire8():
    model = FC4()
    assert sum(p.numel() for p in model.backbone.parameters()) == SQUEEZENET11_FEATURES_12_PARAMS == 525_312
    for i, fire in _FIRES.items():
        m = model.backbone[i]
        assert (m.squeeze.in_channels, m.squeeze.out_channels, m.expand1x1.out_channels,
                m.expand3x3.out_channels) == fire
        assert m.expand3x3.padding == (1, 1)
    pools = [model.backbone[i] for i in (2, 5, 8)]
    assert all(p.kernel_size == 3 and p.stride == 2 and p.ceil_mode for p in pools)
    assert model.backbone[0].stride == (2, 2) and model.backbone[0].padding == (0, 0)
    fc = model.final_convs
    assert fc[0].kernel_size == 2 and fc[0].stride == 1 and fc[0].ceil_mode
    assert fc[1].kernel_size == (6, 6) and fc[1].padding == (3, 3)
    assert isinstance(fc[3], torch.nn.Dropout) and fc[3].p == 0.5
    # a 224² ImageNet crop gives 512×13×13 features (conv1 111, pools 55 → 27 → 13)
    with torch.inference_mode():
        assert tuple(model.backbone(torch.rand(1, 3, 224, 224)).shape) == (1, 512, 13, 13)
        assert tuple(model.semi_dense(torch.rand(1, 3, 224, 224)).shape) == (1, 4, 13, 13)  # pool 2/1 → 12, conv 6 pad 3 → 13


def test_confidence_weighted_pooling_follows_the_official_forward(monkeypatch):
    model = FC4(confidence_weighted=True).eval()
    maps = torch.zeros(2, 4, 3, 3)
    maps[0, :3, 0, 0] = torch.tensor([3.0, 4.0, 0.0])   # colour of patch (0, 0), norm 5
    maps[0, 3, 0, 0] = 2.0                              # the only confident patch
    maps[0, :3, 2, 2] = torch.tensor([0.0, 0.0, 9.0])   # bright but zero confidence
    maps[1, :3] = torch.tensor([1.0, 1.0, 0.0])[:, None, None]
    maps[1, 3, :, 0] = 1.0
    maps[1, :3, :, 0] = torch.tensor([0.0, 0.0, 1.0])[:, None]
    monkeypatch.setattr(model, "semi_dense", lambda x: maps)
    out = model(torch.zeros(2, 3, 8, 8))
    torch.testing.assert_close(out[0], torch.tensor([0.6, 0.8, 0.0]))
    torch.testing.assert_close(out[1], torch.tensor([0.0, 0.0, 1.0]))
    # summation pooling adds the raw maps
    model_sum = FC4(confidence_weighted=False).eval()
    monkeypatch.setattr(model_sum, "semi_dense", lambda x: maps[:, :3])
    expected = F.normalize(maps[:, :3].sum(dim=(2, 3)), dim=1)
    torch.testing.assert_close(model_sum(torch.zeros(2, 3, 8, 8)), expected)


def test_fc4_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = create_model("fc4.sum", eval=False)
    model.final_convs[3].p = 0.0  # a deterministic objective for the overfit check
    with torch.no_grad():  # start the final ReLU in its linear range (no dead output maps)
        model.final_convs[4].bias.fill_(1.0)
    target = F.normalize(torch.tensor([[1.0, 0.6, 0.3], [0.4, 0.8, 1.0]]), dim=1)
    # 64² crops with per-image colour casts, so the inputs differ the way their targets do
    x = torch.rand(2, 3, 64, 64) * target[:, :, None, None] * 1.5
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)

    def loss_fn() -> torch.Tensor:
        cos = (model(x) * target).sum(dim=1).clamp(-1 + 1e-7, 1 - 1e-7)
        return torch.rad2deg(torch.acos(cos)).mean()  # the angular error in degrees

    first = last = loss_fn().item()
    steps = 0
    while steps < 150 and last >= 0.1 * first:
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        last, steps = loss.item(), steps + 1
    assert last < 0.1 * first, f"angular error fell only from {first:.2f} to {last:.2f} degrees in {steps} steps"


# -- the illuminant method -------------------------------------------------------------
@pytest.fixture(scope="module")
def fc4_weights(tmp_path_factory):
    """A deterministic non-degenerate FC4 checkpoint (positive final bias so no map is dead)."""
    torch.manual_seed(3)
    model = create_model("fc4.cwp")
    with torch.no_grad():
        model.final_convs[4].bias.copy_(torch.tensor([0.3, 0.5, 0.2, 0.1]))
    path = tmp_path_factory.mktemp("fc4") / "fc4_cwp.pth"
    torch.save(model.state_dict(), path)
    return path


def _reference(img: np.ndarray, path) -> np.ndarray:
    """The official pre-processing written out: /max, clip, ^(1/2.2), forward."""
    model = create_model("fc4.cwp", weights=path)
    x = np.clip(img / img.max(), 0, 1) ** (1 / 2.2)
    with torch.inference_mode():
        y = model(torch.from_numpy(x.transpose(2, 0, 1).copy()).float()[None])[0].double().numpy()
    return y / np.linalg.norm(y)


def test_estimate_matches_the_official_preprocessing(fc4_weights, rng):
    img = (rng.random((70, 90, 3)) * np.array([0.4, 0.9, 0.6])).astype(np.float32)
    est = estimate_illuminant_fc4(img, weights=str(fc4_weights), device="cpu")
    assert est.shape == (3,) and est.dtype == np.float64
    np.testing.assert_allclose(est, _reference(img, fc4_weights), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(est), 1.0, atol=1e-12)
    # exposure does not matter (the image is divided by its maximum)
    np.testing.assert_allclose(estimate_illuminant_fc4(img * 7.5, weights=str(fc4_weights), device="cpu"),
                               est, atol=1e-5)


def test_mosaic_input_is_binned_2x2(fc4_weights, rng):
    rgb = (rng.random((66, 72, 3)) * np.array([0.5, 1.0, 0.8])).astype(np.float32)
    idx = {"R": 0, "G": 1, "B": 2}
    for pattern in ("RGGB", "BGGR", "GRBG", "GBRG"):
        mosaic = np.empty((132, 144), dtype=np.float32)
        for k, c in enumerate(pattern):
            dy, dx = divmod(k, 2)
            mosaic[dy::2, dx::2] = rgb[..., idx[c]]
        est = estimate_illuminant_fc4(mosaic, cfa_pattern=pattern, weights=str(fc4_weights), device="cpu")
        np.testing.assert_allclose(est, _reference(rgb, fc4_weights), atol=1e-5)


def test_small_images_are_enlarged_by_repetition(fc4_weights, rng):
    rgb = rng.random((20, 30, 3)).astype(np.float32)  # shortest side 20 → ×4 → 80×120
    est = estimate_illuminant_fc4(rgb, weights=str(fc4_weights), device="cpu")
    np.testing.assert_allclose(est, _reference(np.repeat(np.repeat(rgb, 4, 0), 4, 1), fc4_weights), atol=1e-5)


def test_large_images_are_box_averaged(fc4_weights, rng):
    small = rng.random((300, 400, 3)).astype(np.float32)
    big = np.repeat(np.repeat(small, 3, axis=0), 3, axis=1)  # 900×1200 → factor 2 box → 450×600
    est = estimate_illuminant_fc4(big, weights=str(fc4_weights), device="cpu")
    box = big.reshape(450, 2, 600, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(est, _reference(box, fc4_weights), atol=1e-5)


def test_estimate_errors_and_random_weight_warning(rng):
    img = rng.random((32, 32, 3)).astype(np.float32)
    with pytest.raises(MissingWeightsError, match="fc4.cwp.*random_weights=True"):
        estimate_illuminant_fc4(img, device="cpu")  # no silent random weights
    with pytest.warns(RandomWeightsWarning, match="fc4.cwp"):
        out = estimate_illuminant_fc4(img, device="cpu", random_weights=True)
    assert out.shape == (3,) and np.isclose(np.linalg.norm(out), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        with pytest.raises(UnknownNameError, match="'cwp'"):
            estimate_illuminant_fc4(img, variant="weighted", random_weights=True)
        with pytest.raises(InputError, match="cfa_pattern"):
            estimate_illuminant_fc4(img[..., 0], random_weights=True)
        bad = img.copy()
        bad[3, 3, 1] = np.nan
        with pytest.raises(InputError, match="NaN"):
            estimate_illuminant_fc4(bad, random_weights=True)
        with pytest.raises(InputError, match="black"):
            estimate_illuminant_fc4(np.zeros((32, 32, 3), np.float32), random_weights=True)
        with pytest.raises(InputError, match="shape"):
            estimate_illuminant_fc4(np.zeros((8, 8, 4), np.float32), random_weights=True)


def test_contract_records_the_official_pipeline():
    c = get_model_entry("fc4.cwp").weights.contract
    assert (c.domain, c.channel_order, c.gamma, c.scale, c.size_multiple) == ("rgb_linear", "RGB", "power 1/2.2", 0.0, 1)
    assert "maximum" in c.normalization


def _frame(rng) -> Frame:
    data = (rng.random((48, 64, 3)) * np.array([0.3, 0.8, 0.5])).astype(np.float32)
    return Frame(data, Domain.CAMERA_RGB, CaptureMetadata(cfa_pattern="RGGB"))


def test_white_balance_and_illuminant_estimation_use_fc4(fc4_weights, rng):
    wb = pytest.importorskip("ispkit.stages.white_balance")
    frame = _frame(rng)
    expected = estimate_illuminant_fc4(frame.data, weights=str(fc4_weights), device="cpu")
    est_stage = wb.IlluminantEstimation(method="fc4", weights=str(fc4_weights), device="cpu")
    out = est_stage(frame)
    np.testing.assert_allclose(out.meta.illuminant_rgb, expected, atol=1e-6)
    balance = wb.WhiteBalance(method="fc4", weights=str(fc4_weights), device="cpu")
    balanced = balance(frame)
    np.testing.assert_allclose(balanced.meta.illuminant_rgb, expected, atol=1e-6)
    gains = expected[1] / expected  # green-normalised 1 / illuminant
    np.testing.assert_allclose(balanced.data, frame.data * gains.astype(np.float32), rtol=1e-5)
    # the stage round-trips its config with the neural parameters
    assert type(balance).from_params(balance.to_config()["params"]) == balance


def test_a_zeroed_channel_is_floored(tmp_path, rng):
    torch.manual_seed(4)
    model = create_model("fc4.cwp")
    with torch.no_grad():
        model.final_convs[4].weight[1].zero_()
        model.final_convs[4].bias.copy_(torch.tensor([0.3, -1.0, 0.2, 0.1]))  # the final ReLU zeroes G
    path = tmp_path / "dead_g.pth"
    torch.save(model.state_dict(), path)
    est = estimate_illuminant_fc4(rng.random((64, 64, 3)).astype(np.float32), weights=str(path), device="cpu")
    assert np.all(est > 0) and np.isclose(np.linalg.norm(est), 1.0)
    np.testing.assert_allclose(est[1] / est.max(), 1e-3, rtol=1e-9)
