"""Recipe ``pynet``: the level-by-level schedule on a tiny synthetic Zurich-layout set made by unprocessing."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import ConfigError, ParameterError
from ispkit.neural.models.pynet import PyNET
from ispkit.neural.train import RecipeArgs
from ispkit.neural.train.recipe_pynet import build_pynet_recipe, parse_levels
from ispkit.stages import sample_camera, unprocess

SIDE = 64  # full-resolution side: 32×32 packed, PyNET's smallest input


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A random mean colour, smooth colour waves and 8-pixel blocks of random brightness."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    mean = rng.uniform(0.2, 0.8, size=3)
    base = np.stack([m + 0.2 * np.sin(2 * np.pi * (rng.uniform(0.5, 1.5) * xx + rng.uniform(0, 1)))
                     * np.cos(2 * np.pi * rng.uniform(0.5, 1.5) * yy) for m in mean], -1)
    blocks = np.kron(rng.uniform(-0.15, 0.15, size=(SIDE // 8, SIDE // 8)), np.ones((8, 8)))
    return np.clip(base + blocks[..., None], 0.0, 1.0).astype(np.float32)


def _write_zurich(root: Path, n_train: int = 8, n_test: int = 2) -> Path:
    rng = np.random.default_rng(0)
    camera = sample_camera(rng, noise="none")
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split / "huawei_raw").mkdir(parents=True)
        (root / split / "canon").mkdir(parents=True)
        for i in range(n):
            srgb = _scene(rng)
            raw = unprocess(srgb, camera, add_noise=False).mosaic_clean
            cv2.imwrite(str(root / split / "huawei_raw" / f"{i}.png"), np.round(raw * 1020).astype(np.uint16))
            bgr = np.round(srgb[..., ::-1] * 255).astype(np.uint8)
            cv2.imwrite(str(root / split / "canon" / f"{i}.png"), bgr)
    return root


@pytest.fixture(scope="module")
def zurich(tmp_path_factory) -> Path:
    return _write_zurich(tmp_path_factory.mktemp("zurich"))


def _fields() -> dict:
    return {"batch_size": 4, "lr": 3e-3, "seed": 0, "device": "cpu", "progress": False, "val_every": 1000}


def test_parse_levels():
    assert parse_levels("5..0") == [5, 4, 3, 2, 1, 0]
    assert parse_levels("3..1") == [3, 2, 1]
    assert parse_levels("5,3,0") == [5, 3, 0]
    assert parse_levels("2") == [2]
    for bad in ("0..5", "6..0", "a", "3,3"):
        with pytest.raises(ConfigError, match="levels"):
            parse_levels(bad)


def test_every_level_learns_and_level0_beats_level1_upsampled(zurich, tmp_path):
    # levels 5..2 (cheap: 2×2 to 16×16 outputs) 30 steps each, level 1 10 steps, then level 0 60 steps,
    # each run starting from the previous level's final weights (as the official script restores level
    # L+1's checkpoint); width 8 so level 0 has 4 channels (at width 4 its 2-channel head cannot span RGB)
    torch.manual_seed(0)
    scores = {}
    fine = None
    for levels, steps, start in (("5..2", 30, None), ("1", 10, 2), ("0", 60, 1)):
        extra = {"levels": levels, "width": "8"}
        if start is not None:
            extra["weights"] = str(tmp_path / "run" / f"level_{start}" / "final.pth")
        fine = build_pynet_recipe(RecipeArgs(data=zurich, out=tmp_path / "run", steps=steps, crop=SIDE, seed=0,
                                             extra=extra))
        fine.run(_fields(), False)
        scores.update(fine.run.__self__.scores)
    assert sorted(scores) == [0, 1, 2, 3, 4, 5]
    for level, s in scores.items():
        # each level starts from an untrained output head, so its validation PSNR rises (here by 0.7-4.6 dB)
        # and its loss falls (here to 0.39-0.88 of the start; level 4's mean loss over the two validation
        # images stays flat within noise while their PSNR rises 0.7 dB, so it is left out of the loss check)
        assert s["after"]["psnr"] > s["before"]["psnr"] + 0.2, (level, s)
        if level != 4:
            assert s["after"]["loss"] < s["before"]["loss"], (level, s)
    for level in range(6):
        assert (tmp_path / "run" / f"level_{level}" / "final.pth").is_file()
        # the training loss (log.csv, one row per 2-step epoch) falls at every level that logged >= 6 rows
        # (all but level 1's 10 steps, checked on validation above): the last three rows average
        # 0.40-0.70 of the first three here, level 4 included
        with open(tmp_path / "run" / f"level_{level}" / "log.csv", newline="") as fh:
            losses = [float(row["loss"]) for row in csv.DictReader(fh)]
        if len(losses) >= 6:
            assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), (level, losses)
    # level 0 against level 1 upsampled ×2 (bilinear), both against the full-size targets: here level 0
    # overtakes it after ~25 steps and leads by ~1.7 dB after 50, ~2.5 dB after 75
    model = fine.model.eval()
    level1 = PyNET(level=1, width=8)
    level1.load_state_dict(torch.load(tmp_path / "run" / "level_1" / "final.pth", weights_only=True))
    level1.eval()
    psnr0, psnr1 = [], []
    with torch.no_grad():
        for i in range(len(fine.val_data)):
            b = fine.val_data[i]
            x, y = b["input"][None], b["target"][None]
            up = F.interpolate(level1(x), scale_factor=2, mode="bilinear", align_corners=False)
            psnr0.append(float(-10 * torch.log10(F.mse_loss(model(x), y))))
            psnr1.append(float(-10 * torch.log10(F.mse_loss(up, y))))
    assert np.mean(psnr0) > np.mean(psnr1) + 1.0, (psnr0, psnr1)


def test_resume_skips_complete_levels_and_continues_the_interrupted_one(zurich, tmp_path):
    args = RecipeArgs(data=zurich, out=tmp_path / "run", steps=3, crop=SIDE, seed=0,
                      extra={"levels": "5..4", "width": "2"})
    recipe = build_pynet_recipe(args)
    recipe.run(_fields(), False)
    level5 = tmp_path / "run" / "level_5" / "final.pth"
    stamp = level5.stat().st_mtime_ns
    (tmp_path / "run" / "level_4" / "final.pth").unlink()  # level 4 as if stopped before its end
    again = build_pynet_recipe(args)
    again.run(_fields(), True)
    schedule = again.run.__self__
    assert sorted(schedule.results) == [4] and level5.stat().st_mtime_ns == stamp
    assert (tmp_path / "run" / "level_4" / "final.pth").is_file()
    # the level-5 weights were loaded before level 4 resumed: its level-5 head equals the saved one
    saved = torch.load(level5, weights_only=True)
    torch.testing.assert_close(schedule.model.state_dict()["conv_l5_out.conv2d.weight"],
                               saved["conv_l5_out.conv2d.weight"])


def test_ispkit_train_pynet_runs_the_levels(zurich, tmp_path, capsys):
    from ispkit.cli import build_parser

    out = tmp_path / "cli"
    argv = ["train", "pynet", "--data", str(zurich), "--out", str(out), "--steps", "2", "--batch-size", "2",
            "--crop", str(SIDE), "--opt", "levels=5..4", "--opt", "width=2", "--quiet", "--device", "cpu"]
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    assert (out / "level_5" / "final.pth").is_file() and (out / "level_4" / "final.pth").is_file()
    assert "phased schedule" in capsys.readouterr().out

    # the spelling, --levels, is the same option; a contradiction is refused
    out2 = tmp_path / "cli2"
    argv2 = [v if v != str(out) else str(out2) for v in argv]
    i = argv2.index("levels=5..4")
    argv2[i - 1:i + 1] = ["--levels", "5..4"]
    args = build_parser().parse_args(argv2)
    assert args.func(args) == 0
    assert (out2 / "level_5" / "final.pth").is_file() and (out2 / "level_4" / "final.pth").is_file()
    args = build_parser().parse_args(argv + ["--levels", "3..0"])
    with pytest.raises(ParameterError, match="disagree"):
        args.func(args)
