"""Recipes ``mai`` and ``dictionary_isp``: held-out splits, sample layouts, one training step each."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ispkit.errors import ConfigError
from ispkit.neural.train import RecipeArgs
from ispkit.neural.train.recipes import resolve_recipe


@pytest.fixture(scope="module")
def srgb_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("srgb")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:96] / 64.0
    for i in range(6):
        img = np.stack([0.5 + 0.4 * np.sin(rng.uniform(1, 4) * xx + rng.uniform(0, 3) * yy + c) for c in range(3)], -1)
        cv2.imwrite(str(root / f"img{i}.png"), np.round(img[..., ::-1] * 255).astype(np.uint8))
    return root


def test_mai_recipe_holds_out_the_last_images(srgb_folder, tmp_path):
    from ispkit.neural.train.recipe_mai import build_mai_recipe

    _, builder = resolve_recipe("mai.compact")
    assert builder is build_mai_recipe
    recipe = builder(RecipeArgs(data=srgb_folder, out=tmp_path, crop=32, model="mai.compact", extra={"val": "2"}))
    assert [p.name for p in recipe.train_data.items] == [f"img{i}.png" for i in range(4)]
    assert [p.name for p in recipe.val_data.items] == ["img4.png", "img5.png"]
    s = recipe.train_data[0]
    assert s["input"].shape == (4, 16, 16) and s["target"].shape == (3, 32, 32)
    v = recipe.val_data[0]
    assert v["input"].shape == (4, 32, 32) and v["target"].shape == (3, 64, 64)  # val crop 2 × 32
    pred = recipe.model(s["input"][None])
    assert float(recipe.loss(pred, {k: t[None] for k, t in s.items()}).detach()) > 0
    with pytest.raises(ConfigError, match="val"):
        builder(RecipeArgs(data=srgb_folder, out=tmp_path, crop=32, extra={"val": "6"}))


def test_dictionary_recipe_pairs_and_loss(srgb_folder, tmp_path):
    from ispkit.neural.train.recipe_dictionary import build_dictionary_recipe

    _, builder = resolve_recipe("dictionary_isp.k8")
    assert builder is build_dictionary_recipe
    recipe = builder(RecipeArgs(data=srgb_folder, out=tmp_path, crop=32, model="dictionary_isp.k8",
                                extra={"val": "1", "cameras": "1"}))
    assert len(recipe.train_data.srgb) == 5 and len(recipe.val_data.srgb) == 1
    batch = {k: t[None] for k, t in recipe.train_data[0].items()}
    assert batch["input"].shape == (1, 3, 32, 32) and batch["target"].shape == (1, 3, 32, 32)
    pred = recipe.forward(recipe.model, batch)
    assert pred.shape == (1, 6, 32, 32)
    # the colour-matrix dictionary starts from the real cameras' camera → sRGB matrices: rows sum to 1
    torch.testing.assert_close(recipe.model.ccms.detach().sum(-1), torch.ones(8, 3), rtol=0, atol=1e-4)
    loss = recipe.loss(pred, batch)
    loss.backward()
    assert float(loss) > 0 and recipe.model.ccms.grad is not None
