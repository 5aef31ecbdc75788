"""Recipe ``dictionary_isp``: fit the model-based dictionary ISP in both directions at once.

``ispkit train dictionary_isp.k8 --data DIR`` unprocesses the sRGB images
of DIR into linear camera RGB of random cameras (convex mixes of real
cameras' colour matrices, random white balance and brightness; Brooks et
al.), renders each capture forward with the ``default`` preset without its
display tone curve (:func:`~ispkit.neural.train.reverse_data.clipping_render`,
so the sRGB is what a camera would have written, 8-bit), and trains on random
crops of the pairs with

    L1(unrender(sRGB), camera RGB) + L1(render(camera RGB), sRGB)

— the inverse (RGB → RAW, encoder on the sRGB) and the forward (RAW → RGB,
encoder on the camera RGB) share the dictionaries, the gamma and the tone
curve. The colour-matrix dictionary starts from the real cameras'
camera → sRGB matrices (Conde et al. initialise from the training cameras).
The last ``val`` images (default a sixth) are held out; validation reports
the RAW-domain PSNR of the inverse.

Options (``--opt key=value``): ``val`` (held-out images), ``cameras``
(captures per image, default 3), ``init`` (``cameras`` | ``identity``),
``weights``. Defaults: crop 128, batch 8, AdamW lr 3e-3, cosine.

References
----------
Conde, M. V., McDonagh, S., Maggioni, M., Leonardis, A., Pérez-Pellitero, E. (2022). Model-based
image signal processors via learnable dictionaries. *AAAI*. arXiv:2201.03210.
Brooks, T., et al. (2019). Unprocessing images for learned raw denoising. *CVPR*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ..models.dictionary_isp import DictionaryISP
from ..registry import create_model
from ..weights import load_state_dict
from .recipes import Recipe, RecipeArgs, register_recipe
from .reverse_data import ReversePairs, clipping_render, load_srgb_folder, synthesize_pair

__all__ = ["camera_ccms", "synthesize_dictionary_pairs", "dictionary_forward", "dictionary_loss",
           "raw_psnr", "build_dictionary_recipe"]


def camera_ccms(k: int) -> torch.Tensor:
    """K×3×3 white-balanced camera RGB → linear sRGB matrices of the real cameras ispkit ships (cycled)."""
    from ...stages.unprocess import CAMERA_COLOR_MATRICES, CameraSample

    mats = [np.asarray(v, dtype=np.float64).reshape(3, 3) / 10000.0 for v in CAMERA_COLOR_MATRICES.values()]
    out = []
    for i in range(k):
        cam = CameraSample.from_matrix(np.linalg.inv(mats[i % len(mats)]), (1.0, 1.0, 1.0))
        out.append(np.linalg.inv(cam.rgb_to_cam))
    return torch.as_tensor(np.stack(out), dtype=torch.float32)


def synthesize_dictionary_pairs(images: list[np.ndarray], *, cameras: int = 3, seed: int = 0,
                                render: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rendered sRGB, camera RGB) pairs: each image captured by ``cameras`` random cameras (exposure 1)."""
    from ...stages.unprocess import sample_camera

    render = render if render is not None else clipping_render()
    rng = np.random.default_rng(seed)
    pairs = []
    for img in images:
        for _ in range(cameras):
            cam = sample_camera(rng, noise="none")
            p = synthesize_pair(img, cam, 1.0, render)
            pairs.append((p["srgb"], p["raw"]))
    return pairs


def dictionary_forward(model: DictionaryISP, batch: dict[str, Any]) -> torch.Tensor:
    """N×6×H×W: the inverse of the sRGB input (3 channels) and the forward rendering of the RAW target."""
    srgb, cam = batch["input"], batch["target"]
    back = model.unrender(srgb)
    fwd = model.render(cam)
    return torch.cat([back, fwd], 1)


def dictionary_loss(pred: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """L1 of the inverse against the camera RGB plus L1 of the forward against the sRGB."""
    return F.l1_loss(pred[:, :3], batch["target"]) + F.l1_loss(pred[:, 3:], batch["input"])


def raw_psnr(pred: torch.Tensor, batch: dict[str, Any]) -> float:
    """PSNR (dB, range 1) of the reconstructed camera RGB (clipped to [0, 1]) against the truth."""
    mse = (pred[:, :3].clamp(0, 1) - batch["target"]).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((-10.0 * torch.log10(mse)).mean())


def build_dictionary_recipe(args: RecipeArgs) -> Recipe:
    """Build the dictionary-ISP recipe over a folder of sRGB images."""
    name = args.model if args.model and args.model.startswith("dictionary_isp.") else "dictionary_isp.k8"
    images = [img for _, img in load_srgb_folder(Path(args.data))]
    held = int(args.extra.get("val", max(1, len(images) // 6)))
    if not 0 < held < len(images):
        raise ConfigError(f"--opt val={held}: hold out between 1 and {len(images) - 1} of the {len(images)} images")
    cameras = int(args.extra.get("cameras", 3))
    seed = args.seed or 0
    crop = args.crop or 128
    train_pairs = synthesize_dictionary_pairs(images[:-held], cameras=cameras, seed=seed)
    val_pairs = synthesize_dictionary_pairs(images[-held:], cameras=1, seed=seed + 1)
    model = create_model(name, weights=args.extra.get("weights"), eval=False)
    init = args.extra.get("init", "cameras")
    if init not in ("cameras", "identity"):
        raise ConfigError(f"--opt init={init!r}: expected 'cameras' or 'identity'")
    if init == "cameras" and "weights" not in args.extra:
        with torch.no_grad():
            model.ccms.copy_(camera_ccms(model.k))
    train = ReversePairs(train_pairs, crop=crop, samples_per_epoch=max(len(train_pairs), 64), seed=seed)
    val = ReversePairs(val_pairs, crop=2 * crop, seed=seed, train=False)
    return Recipe(model=model, train_data=train, val_data=val, loss=dictionary_loss, forward=dictionary_forward,
                  metrics={"psnr": raw_psnr}, config_overrides={"lr": 3e-3, "batch_size": 8, "best_metric": "psnr"})


register_recipe("dictionary_isp", build_dictionary_recipe)
register_recipe("dictionary", build_dictionary_recipe)
register_recipe("dictionary_isp.k8", build_dictionary_recipe)
