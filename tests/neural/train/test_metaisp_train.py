"""MetaISP training: dataset layout and errors, optical-flow alignment, crops, masked losses, the recipe,
and a unit-sized version of benchmarks/metaisp_synthetic.py (tiny network, 64² crops)."""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from ispkit.errors import InputError, UnknownNameError, WeightsError
from ispkit.metrics import delta_e2000, psnr
from ispkit.neural.models.metaisp import MetaISPNet
from ispkit.neural.train import RecipeArgs, TrainConfig, Trainer, get_recipe
from ispkit.neural.train.metaisp_data import (
    MetaISPDataset,
    align_to_reference,
    prepare_scene,
    read_devices,
    read_target,
    scan_scenes,
)
from ispkit.neural.train.metaisp_synthetic import (
    SYNTHETIC_DEVICES,
    DeviceLook,
    render_device,
    synthesize_raw,
    write_devices,
    write_scene,
)
from ispkit.neural.train.recipe_metaisp import (
    TINY_CONFIG,
    metaisp_forward,
    metaisp_loss,
    metaisp_metrics,
    render_scene,
)

DEVICES = tuple(look.name for look in SYNTHETIC_DEVICES)


def _picture(rng: np.random.Generator, h: int = 96, w: int = 96) -> np.ndarray:
    """A display-sRGB test picture: a colour gradient, coloured rectangles and fine texture."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.dstack([0.2 + 0.5 * xx, 0.3 + 0.3 * yy, 0.6 - 0.4 * xx * yy]).astype(np.float32)
    for _ in range(10):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        dh, dw = rng.integers(6, 32, 2)
        img[y:y + dh, x:x + dw] = rng.uniform(0.05, 0.95, 3)
    img += 0.04 * rng.standard_normal((h, w, 1)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.7), 0, 1)


def _write_dataset(root, n: int, seed: int = 0, size: int = 96) -> None:
    rng = np.random.default_rng(seed)
    write_devices(root, SYNTHETIC_DEVICES)
    for i in range(n):
        frame = synthesize_raw(_picture(rng, size, size), rng)
        write_scene(root / f"scene{i:02d}", frame, {look.name: render_device(frame, look) for look in SYNTHETIC_DEVICES})


@pytest.fixture()
def one_thread():
    """Train on one thread: on a busy 2-core machine several OpenMP threads mostly wait for each other."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("metaisp_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write_dataset(root, 8)
    return root


# -- layout -------------------------------------------------------------------------------
def test_layout_reads_devices_and_scenes(dataset):
    assert read_devices(dataset) == DEVICES
    scenes = scan_scenes(dataset, DEVICES)
    assert [s.name for s in scenes] == [f"scene{i:02d}" for i in range(8)]
    assert scenes[0].raw.name == "raw.dng" and scenes[0].targets["cool_crisp"].name == "cool_crisp.png"
    img = read_target(scenes[0].targets["flat_neutral"])
    assert img.shape == (96, 96, 3) and img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0


def test_layout_errors_name_the_scene_and_file(tmp_path, dataset):
    import shutil

    shutil.copytree(dataset / "scene00", tmp_path / "a_scene")
    (tmp_path / "a_scene" / "vivid_warm.png").unlink()
    with pytest.raises(InputError, match=r"a_scene.*'vivid_warm'"):
        scan_scenes(tmp_path, DEVICES)
    shutil.copytree(dataset / "scene01", tmp_path / "b_scene")
    shutil.copy(tmp_path / "b_scene" / "vivid_warm.png", tmp_path / "a_scene" / "vivid_warm.png")
    (tmp_path / "b_scene" / "raw.dng").unlink()
    with pytest.raises(InputError, match=r"b_scene.*raw"):
        scan_scenes(tmp_path, DEVICES)
    with pytest.raises(InputError, match="not a folder"):
        scan_scenes(tmp_path / "nowhere", DEVICES)
    (tmp_path / "devices.txt").write_text("x\nx\n")
    with pytest.raises(InputError, match="distinct"):
        read_devices(tmp_path)
    shutil.rmtree(tmp_path / "b_scene")
    (tmp_path / "devices.txt").unlink()
    cv2.imwrite(str(tmp_path / "a_scene" / "cool_crisp.png"), np.zeros((96, 200, 3), np.uint8))
    files = scan_scenes(tmp_path, DEVICES)[0]
    with pytest.raises(InputError, match=r"cool_crisp.png.*aspect"):
        prepare_scene(files, DEVICES, view_size=32)


# -- alignment ----------------------------------------------------------------------------
def test_flow_alignment_undoes_a_shift_between_different_renditions(dataset):
    """A device image shifted by (3, -2) px is warped back onto the RAW grid: the error against the
    unshifted image drops several-fold and the mask keeps most pixels (the border the shift uncovers goes)."""
    scene = scan_scenes(dataset, DEVICES)[3]
    exact = read_target(scene.targets["vivid_warm"])
    shifted = np.roll(exact, (3, -2), axis=(0, 1))
    from ispkit.io import read_capture
    from ispkit.neural.train.metaisp_data import reference_render
    from ispkit.stages import BlackLevel

    reference = reference_render(BlackLevel()(read_capture(scene.raw)))
    warped, mask = align_to_reference(reference, shifted)
    core = (slice(8, -8), slice(8, -8))
    before = np.abs(shifted - exact)[core].mean()
    after = np.abs(warped - exact)[core][mask[core] > 0].mean()
    assert after < before / 3
    assert mask[core].mean() > 0.8
    assert warped.shape == exact.shape and mask.dtype == np.float32


# -- crops --------------------------------------------------------------------------------
def test_crops_are_aligned_and_reproducible(dataset):
    scenes = scan_scenes(dataset, DEVICES)
    ds = MetaISPDataset(scenes[:2], DEVICES, crop=32, seed=3, view_size=32, align=False, samples_per_scene=4)
    a, b = ds[5], ds[5]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["raw"].shape == (4, 16, 16) and a["target"].shape == (3, 32, 32) and a["raw_full"].shape == (3, 32, 32)
    # the crop's place is in its attention grid: coords = (1-based packed index) / 48 · 2π
    x0 = round(float(a["coords"][0, 0, 0]) / (2 * np.pi) * 48) - 1
    y0 = round(float(a["coords"][1, 0, 0]) / (2 * np.pi) * 48) - 1
    full = read_target(scenes[1].targets[DEVICES[int(a["mobile_id"][0])]])
    np.testing.assert_allclose(a["target"].numpy().transpose(1, 2, 0), full[2 * y0:2 * y0 + 32, 2 * x0:2 * x0 + 32],
                               atol=1e-3)
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["raw"], a["raw"]) or int(ds[5]["mobile_id"][0]) != int(a["mobile_id"][0])
    val = MetaISPDataset(scenes[:2], DEVICES, crop=None, train=False, view_size=32, align=False)
    v = val[0]
    assert len(val) == 2 and v["mobile_id"].tolist() == [0, 1, 2] and v["target"].shape == (9, 96, 96)


def test_illuminant_jitter_recolours_raw_and_view_and_keeps_the_white_balanced_raw(dataset):
    """The jitter multiplies R and B of the crop and the global view by one factor pair per sample and
    divides the colour scaler by it: raw × scaler (what the network white-balances) and the target stay put."""
    from ispkit.errors import ParameterError

    scenes = scan_scenes(dataset, DEVICES)[:2]
    plain = MetaISPDataset(scenes, DEVICES, crop=32, seed=3, view_size=32, align=False, samples_per_scene=4)
    moved = MetaISPDataset(scenes, DEVICES, crop=32, seed=3, view_size=32, align=False, samples_per_scene=4,
                           illuminant_jitter=0.5)
    factors = []
    for i in (0, 5):
        a, b = plain[i], moved[i]
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["mobile_id"], b["mobile_id"])
        f = (b["raw"] / a["raw"].clamp_min(1e-6)).flatten(1)[:, a["raw"].flatten(1)[0] > 1e-3].median(dim=1).values
        torch.testing.assert_close(f[[1, 3]], torch.ones(2))
        assert float(f[0].log().abs()) <= 0.5 + 1e-4 and float(f[2].log().abs()) <= 0.5 + 1e-4
        torch.testing.assert_close(b["raw"] * b["color_scaler"], a["raw"] * a["color_scaler"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b["raw_full"], a["raw_full"] * f[[0, 1, 2]].reshape(3, 1, 1), rtol=1e-5, atol=1e-6)
        factors.append(f)
    assert not torch.allclose(factors[0], factors[1])  # a new cast per sample
    val = MetaISPDataset(scenes, DEVICES, crop=32, train=False, view_size=32, align=False, illuminant_jitter=0.5)
    ref = MetaISPDataset(scenes, DEVICES, crop=32, train=False, view_size=32, align=False)
    assert torch.equal(val[0]["raw"], ref[0]["raw"])  # validation is never recoloured
    with pytest.raises(ParameterError, match="illuminant_jitter"):
        MetaISPDataset(scenes, DEVICES, crop=32, illuminant_jitter=-0.1)


def test_planckian_illuminants_follow_the_locus():
    """A linear-sRGB camera under D65 (6504 K, Duv +0.0032 by colour-science) needs no white balance; under
    warmer light it needs less red and more blue gain; the drawn illuminants lie along that curve."""
    import colour

    from ispkit.neural.train.metaisp_synthetic import planckian_gains

    srgb_to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    cct, duv = colour.temperature.uv_to_CCT(colour.xy_to_UCS_uv(np.array([0.3127, 0.3290])), method="Ohno 2013")
    np.testing.assert_allclose(planckian_gains(srgb_to_xyz, cct, duv), (1.0, 1.0, 1.0), atol=2e-3)
    warm, cool = planckian_gains(srgb_to_xyz, 2856.0), planckian_gains(srgb_to_xyz, 9000.0)
    assert warm[0] < 1.0 < cool[0] and warm[2] > 1.0 > cool[2]
    rng = np.random.default_rng(0)
    gains = np.array([synthesize_raw(np.full((8, 8, 3), 0.5, np.float32), rng).meta.wb_gains for _ in range(40)])
    assert np.corrcoef(np.log(gains[:, 0]), np.log(gains[:, 2]))[0, 1] < -0.9  # red and blue gains trade off
    with pytest.raises(InputError, match="illuminant"):
        synthesize_raw(np.zeros((8, 8, 3), np.float32), rng, illuminant="daylight")


# -- losses and metrics -------------------------------------------------------------------
def test_masked_loss_ignores_invalid_pixels_and_psnr_is_the_closed_form():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    pred = (target + 0.1).clamp(0, 1)
    mask = torch.ones(2, 32, 32)
    mask[:, :, :8] = 0
    batch = {"target": target, "mask": mask, "mobile_id": torch.tensor([[0], [1]])}
    loss = metaisp_loss()
    a = loss(pred, batch)
    garbage = pred.clone()
    garbage[..., :8] = 5.0  # only where the mask is 0
    assert float(loss(garbage, batch)) == pytest.approx(float(a), rel=1e-5)
    exact = target.clone()
    exact[..., :8] = 0.0
    assert float(loss(exact, batch)) < 1e-5 < float(a)
    m = metaisp_metrics(("p", "q"))
    se = ((pred - target)[..., 8:] ** 2).flatten(1).mean(1)
    assert m["psnr"](pred, batch) == pytest.approx(float((-10 * torch.log10(se)).mean()), rel=1e-5)
    assert m["psnr_q"](pred, batch) == pytest.approx(float(-10 * torch.log10(se[1])), rel=1e-5)
    assert m["deltae"](exact, batch) < 1e-3 < m["deltae"](pred, batch)


def test_illuminant_loss_is_the_angle_between_scalers_plus_the_green_level():
    from ispkit.neural.train.recipe_metaisp import illuminant_loss

    true = torch.tensor([1.0, 1.0, 2.0, 1.0]).reshape(1, 4, 1, 1)  # B, G, R, G
    est = torch.tensor([1.0, 1.0, 1.0, 1.0]).reshape(1, 4, 1, 1)
    batch = {"color_scaler": true, "est_color_scaler": est, "wb_known": torch.ones(1, 1)}
    # (R, G, B) = (2, 1, 1) vs (1, 1, 1): arccos(4 / sqrt(6 · 3))
    assert float(illuminant_loss(batch)) == pytest.approx(np.degrees(np.arccos(4 / np.sqrt(18))), abs=1e-3)
    batch["est_color_scaler"] = 2 * true  # the right colour at twice the level: 180/π per unit of green
    assert float(illuminant_loss(batch)) == pytest.approx(180 / np.pi, abs=1e-3)
    batch["wb_known"] = torch.zeros(1, 1)
    assert float(illuminant_loss(batch)) == 0.0


# -- recipe -------------------------------------------------------------------------------
def test_recipe_builds_small_and_refuses_unknown_options(dataset, tmp_path):
    build = get_recipe("metaisp")
    r = build(RecipeArgs(data=dataset, out=tmp_path, crop=32, extra={"val": "2", "view": "32", "align": "0"}))
    assert isinstance(r.model, MetaISPNet) and r.model.config.num_devices == 3
    assert len(r.train_data) == 6 * 8 and len(r.val_data) == 2
    assert {"psnr_vivid_warm", "deltae_cool_crisp", "ssim_flat_neutral"} <= set(r.metrics)
    with pytest.raises(UnknownNameError, match="illuminant"):
        build(RecipeArgs(data=dataset, out=tmp_path, extra={"illuminat": "1"}))
    with pytest.raises(UnknownNameError, match="small"):
        build(RecipeArgs(data=dataset, out=tmp_path, config="big"))


def test_head_warmup_trains_the_head_alone_then_the_cli_trains_and_resumes(dataset, tmp_path, capsys, one_thread):
    """``pretrain_illuminant_head`` lowers the colour-scaler error on the training crops and touches nothing
    but the head and its embedding gate; ``ispkit train metaisp --opt illuminant=1`` runs it first, and a
    resumed run does not run it again."""
    from ispkit.cli import main
    from ispkit.errors import ParameterError
    from ispkit.neural.train.recipe_metaisp import illuminant_loss, pretrain_illuminant_head

    scenes = [prepare_scene(f, DEVICES, view_size=32, align=False) for f in scan_scenes(dataset, DEVICES)]
    data = MetaISPDataset(scenes, DEVICES, crop=32, seed=0, view_size=32, align=False)
    torch.manual_seed(0)
    net = MetaISPNet(replace(TINY_CONFIG, illuminant=True, illum_patch=16))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    probe = {k: torch.stack([data[i][k] for i in range(0, len(data), 2)]) for k in ("raw", "color_scaler", "wb_known")}

    def error() -> float:
        with torch.no_grad():
            est = net.estimate_color_scaler(probe["raw"], net.embed(0).expand(len(probe["raw"]), -1, -1, -1))
        return float(illuminant_loss({**probe, "est_color_scaler": est}))

    start = error()
    pretrain_illuminant_head(net, data, steps=150, batch_size=8)
    assert error() < 0.7 * start
    changed = {k.split(".")[0] for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"illumination", "emb_4"}
    with pytest.raises(ParameterError, match="illuminant head"):
        pretrain_illuminant_head(MetaISPNet(TINY_CONFIG), data, steps=1)

    out = tmp_path / "run"
    cmd = ["train", "metaisp", "--data", str(dataset), "--out", str(out), "--crop", "32", "--batch-size", "2",
           "--quiet", "--opt", "illuminant=1", "--opt", "head_warmup=20", "--opt", "val=2", "--opt", "view=32",
           "--opt", "align=0"]
    assert main([*cmd, "--steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "warmed up for 20 steps" in text and "after 2 steps" in text
    assert main([*cmd, "--steps", "3", "--resume"]) == 0
    text = capsys.readouterr().out
    assert "warmed up" not in text and "after 3 steps" in text
    assert main(["train", "metaisp", "--data", str(dataset), "--out", str(tmp_path / "x"), "--opt",
                 "head_warmup=5"]) == 2


# -- the unit-sized benchmark ---------------------------------------------------------------
#: Test "phones" far enough apart that no single rendition can serve them all: bright, dark and
#: colourless, neutral (display tone curves through (0.5, 0.9), (0.5, 0.1) and the identity).
EFFECT_LOOKS = (
    DeviceLook("bright", (1.0, 1.0, 1.0), 1.0, ((0.0, 0.0), (0.5, 0.9), (1.0, 1.0))),
    DeviceLook("dark_gray", (1.0, 1.0, 1.0), 0.0, ((0.0, 0.0), (0.5, 0.1), (1.0, 1.0))),
    DeviceLook("neutral", (1.0, 1.0, 1.0), 1.0, ((0.0, 0.0), (1.0, 1.0))),
)
EFFECT_DEVICES = tuple(look.name for look in EFFECT_LOOKS)
#: Optimiser steps of every unit-sized variant (tiny network, 64² crops, batch 6).
UNIT_STEPS = 80
#: Steps of 16 crops training the illuminant head alone before its variant's joint training.
UNIT_HEAD_WARMUP = 600


def _train(scenes, out, *, steps: int = UNIT_STEPS, illuminant=False, shared_look=False, use_wb=True, seed=0):
    """Train a tiny MetaISP variant; return it and the same network before training (both in eval mode).

    With the illuminant head, as the benchmark does: the head sees 32² packed tiles (the crop) and is
    warmed up alone for :data:`UNIT_HEAD_WARMUP` steps first."""
    from ispkit.neural.train.recipe_metaisp import pretrain_illuminant_head

    torch.manual_seed(seed)
    net = MetaISPNet(replace(TINY_CONFIG, illuminant=illuminant, illum_patch=32 if illuminant else None))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = MetaISPDataset(scenes, EFFECT_DEVICES, crop=64, seed=seed, view_size=32, samples_per_scene=8)
    if illuminant:
        pretrain_illuminant_head(net, data, steps=UNIT_HEAD_WARMUP, seed=seed)
    cfg = TrainConfig(out_dir=out, max_steps=steps, batch_size=6, lr=3e-3, seed=seed, device="cpu",
                      progress=False, log_csv=False)

    def forward(model, b):
        return metaisp_forward(model, b, shared_look=shared_look, use_wb=use_wb)

    Trainer(net, data, loss=metaisp_loss(), config=cfg, forward=forward).fit()
    untrained = MetaISPNet(replace(TINY_CONFIG, illuminant=illuminant, illum_patch=32 if illuminant else None))
    untrained.load_state_dict(before)
    return net.eval(), untrained.eval()


@pytest.fixture(scope="module")
def unit_benchmark(tmp_path_factory):
    """benchmarks/metaisp_synthetic.py in small: 8 scenes in :data:`EFFECT_LOOKS` (6 to train, 2 held out)
    and the variants trained on them, each trained once for every test below (one thread)."""
    root = tmp_path_factory.mktemp("metaisp_effects")
    with _one_thread_quiet():
        scenes = _unit_scenes(root, EFFECT_LOOKS, 8, seed=1)
        train = scenes[:6]
        nets = {"full": _train(train, root / "full"), "shared": _train(train, root / "shared", shared_look=True),
                "head": _train(train, root / "head", illuminant=True, use_wb=False)}
    return {"held": scenes[6:], **nets}


@contextlib.contextmanager
def _one_thread_quiet():
    """One torch thread and no warnings while a fixture trains (restored after)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.set_num_threads(old)


def _unit_scenes(root, looks, n: int, seed: int) -> list:
    """Write ``n`` synthetic scenes rendered in ``looks`` under ``root`` and return them prepared (no alignment)."""
    rng = np.random.default_rng(seed)
    write_devices(root, looks)
    for i in range(n):
        frame = synthesize_raw(_picture(rng), rng)
        write_scene(root / f"scene{i:02d}", frame, {k.name: render_device(frame, k) for k in looks})
    names = tuple(k.name for k in looks)
    return [prepare_scene(f, names, view_size=32, align=False) for f in scan_scenes(root, names)]


def _target(scene, i: int) -> np.ndarray:
    return scene.targets[i].astype(np.float32).transpose(1, 2, 0)


def _psnr_held(net, held) -> float:
    return float(np.mean([psnr(render_scene(net, sc, i), _target(sc, i)) for sc in held for i in range(3)]))


def _mse_held(net, held, *, shared_look=False, use_wb=True) -> float:
    """Mean squared error over held-out scenes and devices (row 0 of the embedding for every device if shared)."""
    return float(np.mean([np.mean((render_scene(net, sc, 0 if shared_look else i, use_wb=use_wb) - _target(sc, i))
                                  ** 2) for sc in held for i in range(3)]))


def _scaler_error(net, held) -> float:
    """Mean angle (degrees) between the head's colour scaler and the file's, on whole held-out scenes."""
    from ispkit.neural.train import losses
    from ispkit.neural.train.recipe_metaisp import scaler_rgb

    errs = []
    with torch.no_grad():
        for sc in held:
            raw = torch.from_numpy(sc.packed)[None]
            est = net.condition(raw, torch.from_numpy(sc.view)[None], None, net.embed(0))["color_scaler"]
            true = torch.from_numpy(sc.color_scaler).reshape(1, 4, 1, 1)
            errs.append(float(losses.angular_error(scaler_rgb(est), scaler_rgb(true))[0]))
    return float(np.mean(errs))


def test_unit_sized_benchmark_directions(unit_benchmark):
    """Tiny MetaISP, 64² crops, 6 training scenes, 80 steps: what benchmarks/metaisp_synthetic.py measures, in small.

    Asserted: training lifts the held-out PSNR well above the untrained network's; the device
    embedding reaches the render (different devices give clearly different images, and the
    ``shared_look`` ablation gives identical ones); the render at {A: 0.5, B: 0.5} lies between A and B;
    hiding the WB metadata changes the input the network sees; the illuminant head, trained with the
    angular loss, estimates the colour scaler better than before training. Conditioning against one
    look for all: :func:`test_conditioning_beats_one_look_for_all`.

    The metadata ablation: :func:`test_wb_metadata_matters_and_the_head_wins_most_of_it_back`.
    """
    held = unit_benchmark["held"]
    full, full0 = unit_benchmark["full"]
    head, head0 = unit_benchmark["head"]
    assert _psnr_held(full, held) > _psnr_held(full0, held) + 2.0
    assert _scaler_error(head, held) < _scaler_error(head0, held)
    batch = MetaISPDataset(held, EFFECT_DEVICES, crop=None, train=False, view_size=32, align=False)[0]
    batch = {k: v[None] for k, v in batch.items()}
    with torch.no_grad():
        cond = metaisp_forward(full, dict(batch))
        shared = metaisp_forward(full, dict(batch), shared_look=True)
        hidden = metaisp_forward(full, dict(batch), use_wb=False)
        ones = metaisp_forward(full, {**batch, "color_scaler": torch.ones_like(batch["color_scaler"])})
    assert cond.shape == (3, 3, 96, 96)
    # batch elements may take different float paths: equal up to round-off, while devices differ by far more
    assert (shared - shared[:1]).abs().max() < 1e-4 < (cond - cond[:1]).abs().max()
    assert (hidden - ones).abs().max() < 1e-4 < (hidden - cond).abs().max()
    for sc in held:
        a, b = render_scene(full, sc, 0), render_scene(full, sc, 2)
        mid = render_scene(full, sc, {0: 0.5, 2: 0.5})
        ab = delta_e2000(a, b).mean()
        assert ab > 1.0
        assert delta_e2000(mid, a).mean() < ab and delta_e2000(mid, b).mean() < ab


def test_conditioning_beats_one_look_for_all(unit_benchmark):
    """(a) of the benchmark, structurally: one rendition for all three looks is at best their per-pixel
    mean, so the shared-look model's error is at least the spread of the targets about that mean (about
    0.09 MSE here: the looks differ by ±0.4 in mid-tone brightness); the conditioned model, trained with
    the same data and steps, gets well under it (about 0.3 of it at 80 steps; asserted < 0.6)."""
    held = unit_benchmark["held"]
    spread = float(np.mean([np.mean((sc.targets.astype(np.float32) - sc.targets.astype(np.float32).mean(0)) ** 2)
                            for sc in held]))
    shared = _mse_held(unit_benchmark["shared"][0], held, shared_look=True)
    conditioned = _mse_held(unit_benchmark["full"][0], held)
    assert shared > 0.99 * spread
    assert conditioned < 0.6 * spread
    assert conditioned < 0.6 * shared


def _estimated(net, scene) -> np.ndarray:
    """The head's colour scaler of a whole held-out scene, as a colour scaler (green 1)."""
    with torch.no_grad():
        est = net.estimate_color_scaler(torch.from_numpy(scene.packed)[None], net.embed(0)).reshape(4).numpy()
    return (est / (0.5 * (est[1] + est[3]))).astype(np.float32)


#: Training and held-out scenes of the unit-sized metadata ablation (one look: the neutral one).
WB_TRAIN, WB_HELD = 12, 4


@pytest.fixture(scope="module")
def wb_unit(tmp_path_factory):
    """The metadata ablation's unit-sized data and networks: a WB-fed tiny MetaISP trained for
    :data:`UNIT_STEPS` on one colour-preserving look, and an illuminant head warmed up alone on the
    same crops (one thread)."""
    from ispkit.neural.train.recipe_metaisp import pretrain_illuminant_head

    root = tmp_path_factory.mktemp("metaisp_wb")
    look = EFFECT_LOOKS[2]
    with _one_thread_quiet():
        scenes = _unit_scenes(root, (look,), WB_TRAIN + WB_HELD, seed=2)
        train = scenes[:WB_TRAIN]
        torch.manual_seed(0)
        full = MetaISPNet(replace(TINY_CONFIG, num_devices=1))
        data = MetaISPDataset(train, (look.name,), crop=64, seed=0, view_size=32, samples_per_scene=8)
        cfg = TrainConfig(out_dir=root / "full", max_steps=UNIT_STEPS, batch_size=6, lr=3e-3, seed=0,
                          device="cpu", progress=False, log_csv=False)
        Trainer(full, data, loss=metaisp_loss(), config=cfg, forward=metaisp_forward).fit()
        head = MetaISPNet(replace(TINY_CONFIG, num_devices=1, illuminant=True, illum_patch=32))
        pretrain_illuminant_head(head, data, steps=UNIT_HEAD_WARMUP, seed=0)
    return {"held": scenes[WB_TRAIN:], "full": full.eval(), "head": head.eval()}


def _mse_one(net, scenes) -> float:
    return float(np.mean([np.mean((render_scene(net, sc, 0) - _target(sc, 0)) ** 2) for sc in scenes]))


def test_wb_metadata_matters_and_the_head_wins_most_of_it_back(wb_unit):
    """The metadata ablation of the benchmark in small, on one network: rendering held-out scenes without
    their as-shot white balance (the colour scaler of ones that ``use_wb=False`` feeds) costs accuracy,
    and the illuminant head's estimate in its place (32² tiles averaged over the frame, green level 1)
    wins back most of that loss.

    This is the mechanism the ablation rests on, not the ablation itself. The benchmark retrains a
    network without the WB input and one with the head; at unit size (80 steps) such retrained networks
    are not yet apart by more than seed-to-seed noise (trials with 2 seeds: the WB-free network 4 %
    worse in one, 6 % better in the other). And at this size the network leans on the scaler's level
    more than on its colour: in trials, the file's scaler against ones gave held-out MSE 0.014 / 0.022
    (seed 0) and 0.016 / 0.024 (seed 1), the head's (2-23° off) 0.015 and 0.016, but a fixed mean
    illuminant moved ΔE00 only from 12.0 to 13.7 and from 14.4 to 14.3. The colour half of the effect
    is measured by the benchmark (README)."""
    from dataclasses import replace as swap

    held, full, head = wb_unit["held"], wb_unit["full"], wb_unit["head"]
    with_wb = _mse_one(full, held)
    hidden = _mse_one(full, [swap(sc, color_scaler=np.ones(4, np.float32)) for sc in held])
    estimated = _mse_one(full, [swap(sc, color_scaler=_estimated(head, sc)) for sc in held])
    assert hidden > 1.2 * with_wb
    assert estimated - with_wb < 0.5 * (hidden - with_wb)


# -- preset -------------------------------------------------------------------------------
def test_metaisp_preset_takes_weights_auto_from_the_weights_dir(tmp_path, monkeypatch):
    import ispkit
    from ispkit.io import write_dng
    from ispkit.neural import create_model
    from ispkit.pipeline import models as auto
    from ispkit.presets import load_preset

    stage = dict(load_preset("metaisp").named_stages())["device_rendition"] \
        if hasattr(load_preset("metaisp"), "named_stages") else load_preset("metaisp").stages[-1]
    assert stage.weights == "auto"
    counts = np.round(64 + np.random.default_rng(0).uniform(0, 900, (32, 48))).astype(np.uint16)
    dng = write_dng(tmp_path / "s.dng", counts, "RGGB", black_level=[64] * 4, white_level=1023,
                    color_matrix1=np.eye(3), as_shot_neutral=[0.5, 1.0, 0.7])
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(auto, "_ANNOUNCED", set())
    monkeypatch.setenv(auto.WEIGHTS_ENV, str(empty))
    with pytest.raises(WeightsError, match="metaisp.real_e"):
        ispkit.render(dng, preset="metaisp")
    torch.manual_seed(0)
    torch.save(create_model("metaisp.real_e").state_dict(), empty / "metaisp.real_e.pth")
    got = ispkit.render(dng, preset="metaisp", device_rendition__target="iphone_xr")
    want = ispkit.render(dng, preset="metaisp", device_rendition__target="iphone_xr",
                         device_rendition__weights=str(empty / "metaisp.real_e.pth"))
    assert got.shape == (32, 48, 3)
    np.testing.assert_array_equal(got, want)
    assert os.environ[auto.WEIGHTS_ENV] == str(empty)
