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


# -- synthesis beyond the sRGB gamut and the clipped-region loss ------------------------
def test_saturate_camera_rgb_scales_white_balanced_chroma_about_the_neutral():
    from ispkit.neural.train.reverse_data import saturate_camera_rgb

    gains = np.array([2.0, 1.0, 1.5])
    wb = np.array([[[0.5, 0.3, 0.4], [0.2, 0.2, 0.2], [0.3, 0.5, 0.1]]], np.float32)  # white-balanced values
    cam = wb / gains.astype(np.float32)
    out = saturate_camera_rgb(cam, gains, 1.5) * gains
    grey = wb.mean(axis=2, keepdims=True)
    expected = np.maximum(grey + 1.5 * (wb - grey), 0)  # [0.6, 0.3, 0.45], [0.2]*3, [0.3, 0.6, 0.0]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[0, 2, 2] == 0.0 and expected[0, 2, 2] == 0.0  # 0.3 + 1.5·(0.1 − 0.3) < 0 is clipped
    np.testing.assert_allclose(saturate_camera_rgb(cam, gains, 1.0), cam, atol=1e-7)


def test_saturated_synthesis_clips_srgb_red_while_the_sensor_is_far_from_saturation():
    """The real D750 rose: sRGB red clips at raw R ≈ 0.4; sRGB sources alone never produce that."""
    from ispkit.neural.train.reverse_data import ReverseCamera, clipping_render, synthesize_pair

    img = np.zeros((16, 16, 3), np.float32)
    img[...] = (0.97, 0.25, 0.35)  # a saturated red inside the sRGB gamut
    cam, _ = ReverseCamera().sample(np.random.default_rng(0))
    render = clipping_render()
    plain = synthesize_pair(img, cam, 1.0, render)
    boosted = synthesize_pair(img, cam, 1.0, render, saturation=1.5)
    assert plain["srgb"][..., 0].max() < 0.98  # within the gamut it stays below the clip
    assert boosted["srgb"][..., 0].min() >= 0.98  # beyond it, red clips in sRGB ...
    assert boosted["raw"].max() < 0.9  # ... while no camera channel saturates
    assert ReverseCamera().sample_saturation(np.random.default_rng(0)) == 1.0
    s = ReverseCamera(saturation=(1.0, 1.5)).sample_saturation(np.random.default_rng(0))
    assert 1.0 <= s <= 1.5 and s != 1.0


def test_clip_weighted_l1_adds_the_mean_error_over_the_overexposed_pixels():
    from ispkit.neural.train.recipe_reverse import clip_weighted_l1

    x = torch.full((1, 3, 16, 16), 0.5)
    x[:, 0, 6:10, 6:10] = 1.0  # red clipped in a 4×4 block; the mask grows it by 2 px to 8×8
    target = torch.zeros(1, 3, 16, 16)
    pred = torch.zeros(1, 3, 16, 16)
    pred[:, :, 7:9, 7:9] = 0.3  # error only inside the block
    batch = {"input": x, "target": target}
    plain = 0.3 * 3 * 4 / (3 * 256)
    assert float(clip_weighted_l1(0.0)(pred, batch)) == pytest.approx(plain, rel=1e-6)
    masked = 0.3 * 3 * 4 / (3 * 64 + 1.0)  # the same error over the 8×8 mask's 192 values (+1 in the sum)
    assert float(clip_weighted_l1(2.0)(pred, batch)) == pytest.approx(plain + 2.0 * masked, rel=1e-6)
    packed = {"input": x, "target": torch.zeros(1, 4, 8, 8)}  # packed predictions get the mask pooled ×2
    p4 = torch.zeros(1, 4, 8, 8)
    p4[:, :, 4, 4] = 0.2
    assert float(clip_weighted_l1(1.0)(p4, packed)) == pytest.approx(0.2 * 4 / 256 + 0.2 * 4 / (4 * 16 + 1.0))
