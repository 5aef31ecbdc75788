"""``ispkit train`` and ``ispkit evaluate`` end to end on a tiny Zurich-layout folder."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch

from ispkit.cli import main
from ispkit.neural import create_model


@pytest.fixture
def zurich(tmp_path):
    root = tmp_path / "zurich"
    for split, n in (("train", 4), ("test", 2)):
        (root / split / "huawei_raw").mkdir(parents=True)
        (root / split / "canon").mkdir()
        for i in range(n):
            rng = np.random.default_rng(i + 10 * (split == "test"))
            assert cv2.imwrite(str(root / split / "huawei_raw" / f"{i}.png"),
                               rng.integers(0, 1020, (32, 32), dtype=np.uint16))
            rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            assert cv2.imwrite(str(root / split / "canon" / f"{i}.jpg"), rgb)
    return root


def test_train_resume_and_evaluate_end_to_end(zurich, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--batch-size", "2", "--crop", "16", "--seed", "1", "--lr", "1e-3", "--quiet",
              "--opt", "loss=charbonnier", "--opt", "model=mai.compact"]
    args = ["train", "generic", "--data", str(zurich), "--out", str(out), "--steps", "2", *common]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "recipe 'generic'" in text and "best weights" in text
    model = create_model("mai.compact", weights=out / "best.pth")
    assert isinstance(model, torch.nn.Module)
    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2] and float(rows[0]["val_psnr"]) > 0
    resume = ["train", "generic", "--data", str(zurich), "--out", str(out), "--steps", "4", *common, "--resume"]
    assert main(resume) == 0
    assert "after 4 steps" in capsys.readouterr().out
    assert main(["evaluate", "--model", "mai.compact", "--weights", str(out / "best.pth"), "--data", str(zurich)]) == 0
    table = capsys.readouterr().out
    assert "PSNR" in table and "dE2000" in table and "(2 images)" in table and "[zurich]" in table


def test_evaluate_a_preset(zurich, capsys):
    code = main(["evaluate", "--preset", "default", "--data", str(zurich), "--limit", "1",
                 "--set", "white_balance.method=gray_world"])
    assert code == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("mean")][0]
    psnr, ssim, de = (float(v) for v in line.split()[1:])
    # the same numbers computed here from the pieces: render test/0.png, compare with test/0.jpg
    from ispkit import metrics
    from ispkit.neural.train.data import ZurichRAWToRGB
    from ispkit.render import build_pipeline

    data = ZurichRAWToRGB(zurich, "test")
    rendered = np.clip(build_pipeline("default", overrides={"white_balance.method": "gray_world"})(
        data.raw_frame(0)).data, 0, 1)
    target = data.target_image(0)
    assert psnr == pytest.approx(metrics.psnr(rendered, target), abs=1e-4)
    assert ssim == pytest.approx(metrics.ssim(rendered, target), abs=1e-4)
    assert de == pytest.approx(metrics.delta_e_summary(rendered, target)["mean"], abs=1e-4)


def test_train_errors_are_one_line(zurich, tmp_path, capsys):
    assert main(["train", "no.such_model", "--data", str(zurich), "--out", str(tmp_path / "x")]) == 2
    assert "mai.compact" in capsys.readouterr().err
    (zurich / "train" / "canon" / "3.jpg").unlink()
    assert main(["train", "generic", "--opt", "model=mai.compact", "--data", str(zurich), "--out", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "3.png" in capsys.readouterr().err
    assert main(["train", "generic", "--opt", "model=fc4.cwp", "--data", str(zurich), "--out", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "packed-RAW" in capsys.readouterr().err


def test_rgb_output_is_packed_for_aim_targets():
    from ispkit._train_commands import _as_packed_rggb

    pred = np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)
    packed = _as_packed_rggb(pred, np.zeros((2, 3, 4), np.float32))
    np.testing.assert_array_equal(packed[0, 0], [pred[0, 0, 0], pred[0, 1, 1], pred[1, 0, 1], pred[1, 1, 2]])
    np.testing.assert_array_equal(packed[1, 2], [pred[2, 4, 0], pred[2, 5, 1], pred[3, 4, 1], pred[3, 5, 2]])
    assert _as_packed_rggb(pred, np.zeros((4, 6, 3))) is pred


def test_evaluate_a_reverse_model_on_the_aim_layout(tmp_path, capsys):
    from ispkit.neural import MODELS

    if "reverse_isp.unet" not in MODELS:
        pytest.skip("no reverse_isp.unet in the zoo")
    for i in range(2):
        rng = np.random.default_rng(i)
        assert cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        np.save(tmp_path / f"{i}.npy", rng.integers(0, 1024, (16, 16, 4)).astype(np.uint16))
    assert main(["evaluate", "--model", "reverse_isp.unet", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    mean = [ln for ln in out.splitlines() if ln.strip().startswith("mean")][0].split()
    assert "[aim]" in out and mean[3] == "-" and float(mean[1]) > 0


def test_evaluate_a_preset_refuses_random_weights_unless_allowed(zurich, tmp_path, capsys):
    from ispkit.neural.stages import LearnedRawToRGB
    from ispkit.pipeline import Pipeline
    from ispkit.stages import BlackLevel

    cfg = tmp_path / "learned.toml"
    Pipeline([BlackLevel(), LearnedRawToRGB(model="dictionary_isp.k8")], name="learned").save(cfg)
    cmd = ["evaluate", "--preset", str(cfg), "--data", str(zurich), "--limit", "1"]
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "dictionary_isp.k8" in err and "--allow-random-weights" in err
    assert main([*cmd, "--allow-random-weights"]) == 0
    captured = capsys.readouterr()
    assert "random initial weights" in captured.err and "(1 images)" in captured.out
