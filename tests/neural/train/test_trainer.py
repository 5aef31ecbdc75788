"""The trainer: loss falls, resume equals an uninterrupted run, Ctrl-C checkpoints, best reloads."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from ispkit.errors import ParameterError, UnknownNameError, WeightsError
from ispkit.neural import create_model
from ispkit.neural.train import (Recipe, RecipeArgs, TrainConfig, Trainer, get_recipe, losses,
                                 register_recipe)
from ispkit.neural.train.recipes import RECIPES
from ispkit.neural.train.schedule import lr_factor

from ._helpers import ColorPairs, tiny_net


def _config(tmp_path, **kw) -> TrainConfig:
    base = dict(out_dir=tmp_path, batch_size=4, lr=0.05, progress=False, seed=3, schedule="constant")
    return TrainConfig(**{**base, **kw})


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_loss_falls_fitting_a_color_matrix(tmp_path):
    cfg = _config(tmp_path / "run", max_steps=60, grad_clip=None)
    trainer = Trainer(tiny_net(), ColorPairs(16), loss=losses.on_target(losses.l1), config=cfg)
    seen: list[float] = []
    original = trainer._train_step
    trainer._train_step = lambda batch: seen.append(original(batch)) or seen[-1]  # record each step's loss
    result = trainer.fit()
    assert result.steps == 60 and not result.interrupted
    assert np.mean(seen[-5:]) < 0.5 * np.mean(seen[:5])


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    data = ColorPairs(10)  # 3 batches per epoch (4, 4, 2)
    cfg = dict(epochs=3, schedule="cosine", checkpoint_every=2)
    full = Trainer(tiny_net(), data, loss=losses.on_target(losses.charbonnier), config=_config(tmp_path / "a", **cfg))
    full.fit()
    # stop mid-epoch 2: the 6th sample read (epoch 0 reads 10, epoch 1 reads 10 ...) raises Ctrl-C
    broken = ColorPairs(10, fail_at=16)
    part = Trainer(tiny_net(), broken, loss=losses.on_target(losses.charbonnier), config=_config(tmp_path / "b", **cfg))
    stopped = part.fit()
    assert stopped.interrupted and stopped.steps == 4 and stopped.last_path.is_file()
    again = Trainer(tiny_net(seed=9), ColorPairs(10), loss=losses.on_target(losses.charbonnier),
                    config=_config(tmp_path / "b", **cfg))
    resumed = again.fit(resume=True)
    assert resumed.steps == 9 and not resumed.interrupted
    a, b = _weights(full.model), _weights(again.model)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6)
    assert [r["step"] for r in resumed.history] == [3, 6, 9]
    with open(tmp_path / "b" / "log.csv", newline="") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [3, 6, 9]


def test_best_checkpoint_follows_the_validation_metric(tmp_path):
    cfg = _config(tmp_path, epochs=4, save_format="safetensors")
    trainer = Trainer(tiny_net(), ColorPairs(8), loss=losses.on_target(losses.l1), config=cfg,
                      val_data=ColorPairs(4, seed=1))
    result = trainer.fit()
    assert result.best_path == tmp_path / "best.safetensors"
    psnrs = [r["val_psnr"] for r in result.history]
    assert len(psnrs) == 4 and trainer.state.best == pytest.approx(max(psnrs))
    reloaded = tiny_net(seed=5)
    from ispkit.neural import load_state_dict
    reloaded.load_state_dict(load_state_dict(result.best_path))
    trainer.model.load_state_dict(load_state_dict(result.best_path))
    assert trainer.evaluate(ColorPairs(4, seed=1))["psnr"] == pytest.approx(max(psnrs), rel=1e-5)


def test_best_weights_load_with_create_model(tmp_path):
    model = create_model("unet.raw", eval=False)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 16, 16, generator=g)
    data = [{"input": x[i], "target": x[i, :4]} for i in range(2)]
    cfg = _config(tmp_path, max_steps=2, batch_size=2, lr=1e-3)
    result = Trainer(model, data, loss=losses.on_target(losses.l1), config=cfg, val_data=data).fit()
    loaded = create_model("unet.raw", weights=result.best_path)
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k], rtol=0, atol=0)


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path):
    cfg = _config(tmp_path, epochs=2)
    result = Trainer(tiny_net(), ColorPairs(8, fail_at=3), loss=losses.on_target(losses.l1), config=cfg).fit()
    assert result.interrupted and result.steps == 0 and result.last_path.is_file()
    finished = Trainer(tiny_net(), ColorPairs(8), loss=losses.on_target(losses.l1), config=cfg).fit(resume=True)
    assert finished.steps == 4 and not finished.interrupted and finished.best_path.is_file()


def test_resume_without_checkpoint_and_bad_config_raise(tmp_path):
    with pytest.raises(WeightsError, match="last.ckpt"):
        Trainer(tiny_net(), ColorPairs(4), loss=losses.on_target(losses.l1), config=_config(tmp_path)).fit(resume=True)
    with pytest.raises(ParameterError, match="schedule"):
        TrainConfig(out_dir=tmp_path, schedule="linear")
    with pytest.raises(ParameterError, match="best_metric"):
        Trainer(tiny_net(), ColorPairs(4), loss=losses.l1, config=_config(tmp_path, best_metric="ssim"),
                val_data=ColorPairs(2))


def test_lr_schedules():
    cfg = TrainConfig(out_dir=".", schedule="cosine")
    assert [lr_factor(s, 100, cfg) for s in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0])
    step = cfg.replace(schedule="step", step_size=10, gamma=0.5)
    assert [lr_factor(s, 100, step) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(70, 100, cfg.replace(schedule="constant")) == 1.0


def test_recipe_registry_lists_known_names(tmp_path):
    def build(args: RecipeArgs) -> Recipe:
        return Recipe(tiny_net(), ColorPairs(4), None, losses.on_target(losses.l1))

    register_recipe("test_tiny", build)
    try:
        assert get_recipe("test_tiny") is build
        with pytest.raises(UnknownNameError, match="test_tiny"):
            get_recipe("no_such_recipe")
    finally:
        RECIPES.pop("test_tiny")


def test_epoch_reaches_datasets_inside_subsets(tmp_path):
    from torch.utils.data import ConcatDataset, Subset

    from ispkit.neural.train.trainer import set_epoch

    class Seen(ColorPairs):
        epoch = -1

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

    a, b = Seen(4), Seen(4)
    set_epoch(Subset(ConcatDataset([a, Subset(b, [0, 1])]), [0, 5]), 7)
    assert a.epoch == 7 and b.epoch == 7


def test_without_validation_the_last_weights_are_best_and_tensorboard_is_optional(tmp_path):
    import importlib.util

    cfg = _config(tmp_path, epochs=1, tensorboard=True)
    trainer = Trainer(tiny_net(), ColorPairs(4), loss=losses.on_target(losses.l1), config=cfg)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.warns(UserWarning, match="tensorboard"):
            result = trainer.fit()
    else:
        result = trainer.fit()
        assert (tmp_path / "tensorboard").is_dir()
    from ispkit.neural import load_state_dict
    best = load_state_dict(result.best_path)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(best[k], v)


def test_progress_bar_shows_and_hides(tmp_path, capsys):
    Trainer(tiny_net(), ColorPairs(4), loss=losses.on_target(losses.l1),
            config=_config(tmp_path / "a", max_steps=2, progress=True)).fit()
    assert "train" in capsys.readouterr().err
    Trainer(tiny_net(), ColorPairs(4), loss=losses.on_target(losses.l1),
            config=_config(tmp_path / "b", max_steps=2, progress=False)).fit()
    assert capsys.readouterr().err == ""


def test_a_finished_run_extended_by_resume_matches_one_long_run(tmp_path):
    loss = losses.on_target(losses.l1)
    long = Trainer(tiny_net(), ColorPairs(10), loss=loss, config=_config(tmp_path / "a", epochs=3))
    long.fit()
    Trainer(tiny_net(), ColorPairs(10), loss=loss, config=_config(tmp_path / "b", max_steps=4)).fit()  # stops mid-epoch
    more = Trainer(tiny_net(seed=2), ColorPairs(10), loss=loss, config=_config(tmp_path / "b", epochs=3))
    assert more.fit(resume=True).steps == 9
    for k, v in long.model.state_dict().items():
        torch.testing.assert_close(more.model.state_dict()[k], v, rtol=0, atol=1e-6)


def test_a_broken_recipe_module_is_a_warning_when_listing(tmp_path, monkeypatch):
    (tmp_path / "ispkit_broken_recipe.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from ispkit.neural.train import recipes

    monkeypatch.setitem(recipes.RECIPE_MODULES, "broken", "ispkit_broken_recipe")
    monkeypatch.setitem(recipes.RECIPE_MODULES, "absent", "ispkit_no_such_recipe_module")
    with pytest.warns(RuntimeWarning, match="boom"), pytest.raises(UnknownNameError, match="'generic'"):
        get_recipe("nothing_like_this")
    with pytest.raises(RuntimeError, match="boom"):
        get_recipe("broken")  # asked for by name: its own failure is shown
