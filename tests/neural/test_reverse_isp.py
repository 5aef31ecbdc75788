"""Reverse ISP: the network, its mask fusion, the stage → DNG → rawpy round trip, AIM metrics, training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rawpy
import torch

from ispkit.errors import ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.io import read_raw, write_dng
from ispkit.metrics import ssim as reference_ssim
from ispkit.neural import create_model, list_models
from ispkit.neural.models.reverse_isp import ReverseISPNet, fuse_branches, overexposure_mask, srgb_to_linear
from ispkit.neural.reverse_isp import AIM_TRACKS, ReverseISP, aim_metrics, aim_pack, overexposed_pixels


def _srgb_eotf(x: np.ndarray) -> np.ndarray:  # IEC 61966-2-1, written out independently
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


# -- the network ---------------------------------------------------------------
@pytest.mark.parametrize("name, params", [("reverse_isp.unet", 482_079), ("reverse_isp.unet_refine", 964_578),
                                          ("reverse_isp.unet_fusion", 1_446_933)])
def test_variants_shapes_and_parameter_counts(name, params):
    assert name in list_models("reverse_isp")
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    x = torch.rand(2, 3, 24, 40)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (2, 3, 24, 40)
    # zero-initialised residual heads + identity colour matrix: an untrained net linearises sRGB
    np.testing.assert_allclose(y.numpy(), _srgb_eotf(x.numpy().astype(np.float64)), atol=1e-6)


def test_shape_and_option_errors():
    with pytest.raises(Exception, match="multiples of 8|N×3×H×W"):
        ReverseISPNet()(torch.rand(1, 3, 20, 24))
    with pytest.raises(ParameterError):
        ReverseISPNet(mask_threshold=1.5)


def test_overexposure_mask_values_ramp_and_dilation():
    x = torch.zeros(1, 3, 1, 5)
    x[0, 1, 0, :] = torch.tensor([0.5, 0.90, 0.94, 0.98, 0.999])  # one channel decides: the max
    m = overexposure_mask(x, threshold=0.98, width=0.08, dilate=0)[0, 0, 0]
    np.testing.assert_allclose(m.numpy(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-5)
    hard = overexposure_mask(x, threshold=0.98, width=0.0, dilate=0)[0, 0, 0]
    assert hard.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    y = torch.zeros(1, 3, 9, 9)
    y[0, 0, 4, 4] = 1.0
    d = overexposure_mask(y, dilate=2)[0, 0]
    assert d.sum().item() == 25 and d[2:7, 2:7].min().item() == 1.0


def test_fusion_takes_the_normal_branch_at_mask_0_and_the_overexposed_branch_at_mask_1():
    torch.manual_seed(0)
    net = ReverseISPNet(base=4, depth=2, fusion=True, refine=False)
    for branch in (net.normal, net.over):  # give both branches distinct, nonzero outputs
        torch.nn.init.normal_(branch.head.weight, std=0.5)
        torch.nn.init.normal_(branch.head.bias, std=0.5)
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert torch.equal(fuse_branches(a, b, torch.zeros(1, 1, 8, 8)), a)
    assert torch.equal(fuse_branches(a, b, torch.ones(1, 1, 8, 8)), b)
    with torch.no_grad():
        dark = torch.rand(1, 3, 16, 16) * 0.8  # every channel < 0.9: mask 0
        prior = net.color(srgb_to_linear(dark))
        normal = prior + net.normal(dark)
        torch.testing.assert_close(net(dark), normal)
        bright = 0.985 + torch.rand(1, 3, 16, 16) * 0.015  # >= 0.98 everywhere: mask 1
        prior = net.color(srgb_to_linear(bright))
        over = prior + net.over(torch.cat([bright, torch.ones(1, 1, 16, 16)], 1))
        torch.testing.assert_close(net(bright), over)
        assert (over - (prior + net.normal(bright))).abs().max() > 1e-2  # the two branches differ


# -- the stage and the DNG round trip ----------------------------------------------
@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_stage_gives_a_raw_mosaic_that_write_dng_and_rawpy_read_back(tmp_path, pattern):
    rng = np.random.default_rng(3)
    srgb = rng.random((32, 48, 3), dtype=np.float32)
    srgb[:8, :8] = 1.0  # a clipped corner
    frame = Frame(srgb, Domain.DISPLAY_RGB, CaptureMetadata())
    weights = tmp_path / "untrained.pth"  # an untrained checkpoint: the stage needs weights to run
    torch.save(create_model("reverse_isp.unet_fusion").state_dict(), weights)
    stage = ReverseISP(model="reverse_isp.unet_fusion", weights=str(weights), device="cpu", cfa_pattern=pattern,
                       black_level=64, white_level=1023, wb_gains=(2.1, 1.0, 1.5))
    out = stage(frame)
    assert out.domain == Domain.RAW_MOSAIC and out.data.shape == (32, 48) and out.data.dtype == np.float32
    assert out.meta.cfa_pattern == pattern and out.meta.white_level == 1023
    np.testing.assert_array_equal(out.meta.black_level, [64] * 4)
    np.testing.assert_allclose(out.meta.wb_gains, [2.1, 1.0, 1.5])
    assert np.array_equal(out.data, np.round(out.data)) and out.data.min() >= 64 and out.data.max() <= 1023
    # untrained, the network linearises sRGB: the clipped corner reaches white, the rest follows the EOTF
    assert np.all(out.data[:8, :8] == 1023)
    cfa = {"R": 0, "G": 1, "B": 2}
    expect = np.empty((32, 48), np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            c = cfa[pattern[2 * dy + dx]]
            expect[dy::2, dx::2] = 64 + _srgb_eotf(srgb[dy::2, dx::2, c].astype(np.float64)) * (1023 - 64)
    assert np.max(np.abs(out.data - np.round(expect))) <= 1
    path = write_dng(tmp_path / f"reverse_{pattern}.dng", out)  # the Frame form
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, out.data.astype(np.uint16))
        desc = raw.color_desc.decode()
        got = "".join(desc[i] for i in raw.raw_pattern.ravel())
        assert got == pattern
        assert raw.white_level == 1023
        np.testing.assert_array_equal(raw.black_level_per_channel, [64] * 4)
        wb = np.asarray(raw.camera_whitebalance[:3], dtype=np.float64)
        np.testing.assert_allclose(wb / wb[1], [2.1, 1.0, 1.5], rtol=1e-3)
    back = read_raw(path)  # ColorMatrix1 = inverse of cam_to_xyz, as ispkit reads DNG colour tags
    np.testing.assert_allclose(back.meta.cam_to_xyz, out.meta.cam_to_xyz, rtol=1e-3, atol=1e-3)
    assert input_unchanged(frame, srgb)


def input_unchanged(frame, srgb):
    return np.array_equal(frame.data, srgb)


def test_reverse_models_belong_to_the_reverse_stage_only():
    from ispkit.neural.stages import Enhance, models_of_kind

    names = {"reverse_isp.unet", "reverse_isp.unet_refine", "reverse_isp.unet_fusion"}
    assert names <= set(models_of_kind("reverse-ISP"))
    assert not names & set(models_of_kind("enhancement"))
    with pytest.raises(UnknownNameError):
        Enhance(model="reverse_isp.unet")


def test_stage_validates_its_parameters():
    with pytest.raises(UnknownNameError, match="reverse_isp.unet_fusion"):
        ReverseISP(model="unet.raw")
    with pytest.raises(ParameterError):
        ReverseISP(black_level=2000, white_level=1023)
    with pytest.raises(ParameterError):
        ReverseISP(wb_gains=(1.0, -1.0, 1.0))
    s = ReverseISP(model="reverse_isp.unet", wb_gains=(2, 1, 1.5))
    assert ReverseISP.from_params(s.to_config()["params"]) == s


# -- the AIM 2022 protocol -------------------------------------------------------
def test_aim_pack_follows_the_starter_code_order():
    m = np.arange(8 * 12, dtype=np.float32).reshape(8, 12)
    packed = aim_pack(m, "RGGB", "p20")
    starter = np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]], axis=-1)  # pack_raw
    np.testing.assert_array_equal(packed, starter)
    assert {t.max_value for t in AIM_TRACKS.values()} == {1024.0} and set(AIM_TRACKS) == {"s7", "p20"}


def test_aim_metrics_against_closed_form_and_reference_ssim():
    rng = np.random.default_rng(0)
    true = rng.random((24, 32, 4)) * 0.8
    pred = true + 0.01
    m = aim_metrics(pred, true)
    assert m["psnr"] == pytest.approx(40.0, abs=1e-6)  # MSE 1e-4
    assert m["ssim"] == pytest.approx(reference_ssim(pred, true), abs=1e-9)
    mask = np.zeros((24, 32), bool)
    mask[:, :16] = True
    pred2 = true.copy()
    pred2[:, :16] += 0.1  # error only inside the mask
    assert aim_metrics(pred2, true, mask)["psnr"] == pytest.approx(20.0, abs=1e-6)
    assert aim_metrics(pred2, true, ~mask)["psnr"] == float("inf")
    far = np.zeros_like(mask)
    far[:, 22:] = True  # > 5 px (the SSIM window radius) from the perturbed columns
    assert aim_metrics(pred2, true, far)["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert aim_metrics(pred2, true, mask)["ssim"] < aim_metrics(pred2, true, ~mask)["ssim"] < 1.0
    assert aim_metrics(np.full_like(true, 2.0), true)["psnr"] == aim_metrics(np.ones_like(true), true)["psnr"]


def test_overexposed_pixels_full_and_packed():
    s = np.zeros((4, 6, 3), np.float32)
    s[1, 3, 2] = 0.985
    assert overexposed_pixels(s).sum() == 1 and overexposed_pixels(s)[1, 3]
    p = overexposed_pixels(s, packed=True)
    assert p.shape == (2, 3) and p.sum() == 1 and p[0, 1]


# -- training --------------------------------------------------------------------
def test_unit_training_run_via_the_recipe_lowers_the_loss(tmp_path):
    import imageio.v3 as iio

    from ispkit.neural.train import RecipeArgs, Trainer, TrainConfig, get_recipe

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    for i in range(3):  # smooth colourful images with a bright blob, so some pixels clip
        c = rng.random(3)
        img = np.stack([c[0] * xx, c[1] * yy, c[2] * (1 - xx)], -1) * 0.7 + 0.2
        img[10:20, 10:20] = 1.0
        iio.imwrite(tmp_path / f"img{i}.png", (np.clip(img, 0, 1) * 255).astype(np.uint8))
    threads = torch.get_num_threads()
    args = RecipeArgs(data=tmp_path, out=tmp_path / "out", steps=120, batch_size=4, crop=32, seed=0,
                      model="reverse_isp.unet", extra={"variants": "2", "val": "1", "exposure": "1,2"})
    recipe = get_recipe("reverse_isp.unet")(args)
    torch.set_num_threads(threads)  # Numba kernels run earlier in the session may have changed OpenMP's count
    torch.manual_seed(0)
    batch = {k: torch.stack([recipe.train_data[i][k] for i in range(8)]) for k in ("input", "target")}

    def loss_now() -> float:
        recipe.model.eval()
        with torch.no_grad():
            return float(recipe.loss(recipe.model(batch["input"]), batch))

    before = loss_now()
    cfg = TrainConfig(out_dir=tmp_path / "out", max_steps=120, batch_size=4, progress=False, device="cpu",
                      **{k: v for k, v in recipe.config_overrides.items() if k in ("lr", "schedule", "best_metric")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(recipe.model, recipe.train_data, loss=recipe.loss, config=cfg, val_data=recipe.val_data,
                metrics=recipe.metrics).fit()
    after = loss_now()
    assert after < 0.6 * before, (before, after)  # here: about a third after 120 steps
