"""Recipe ``reverse_isp``: train the reverse ISP (sRGB → RAW), ``ispkit train reverse_isp --data DIR``.

Two data layouts:

* **a folder of sRGB images** (the default): every image is unprocessed into
  ``--opt variants=N`` (default 4) captures of the training camera
  (:class:`~ispkit.neural.train.reverse_data.ReverseCamera`: the Nikon D750
  matrix unless ``--opt camera=NAME`` names another of
  :data:`~ispkit.stages.unprocess.CAMERA_COLOR_MATRICES`, random white
  balance, exposure ×1–×3 so highlights clip, chroma gain ×1–×1.5 so
  saturated colours leave the sRGB gamut as real scenes do) and rendered forward by
  :func:`~ispkit.neural.train.reverse_data.clipping_render`; the network
  learns rendered sRGB → demosaiced camera RGB. The last ``--opt val=N``
  images (default a sixth, at least one) are held out, or ``DIR/train`` +
  ``DIR/val`` are used when present;
* **the AIM 2022 layout** (``--opt loader=aim``, or automatic when DIR holds
  ``train/*.npy``): ``N.jpg`` + ``N.npy`` packed RGGB RAW / 1024
  (:class:`~ispkit.neural.train.data_aim.AIMReverseISP`). The network's
  demosaiced output is mosaiced and packed (R, Gr, Gb, B) inside the loss,
  so it trains on the challenge's RAW directly (the paper made demosaiced
  targets with DemosaicNet instead).

The model is ``reverse_isp.unet_fusion`` unless the command names another
(``ispkit train reverse_isp.unet``). Defaults: crop 96, batch 8, AdamW lr
2e-3, cosine schedule; loss L1 plus the L1 over the clipped regions
(:func:`clip_weighted_l1`, ``--opt clip_weight=1``; plain L1 on the AIM layout);
metrics PSNR and SSIM on packed RAW.

References
----------
J. Kim, J. Jiang, J. Gu, "Overexposure Mask Fusion: Generalizable Reverse
ISP Multi-Step Refinement", ECCV Workshops (AIM 2022), arXiv:2210.11511.
M. V. Conde, R. Timofte et al., AIM 2022 Reversed ISP Challenge Report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import ConfigError, unknown_name
from ...stages.unprocess import CAMERA_COLOR_MATRICES
from ..registry import MODELS, create_model
from . import losses
from .recipes import Recipe, RecipeArgs, register_recipe
from .reverse_data import ReverseCamera, ReversePairs, clipping_render, load_srgb_folder, synthesize_pair
from .trainer import psnr_metric

__all__ = ["build_reverse_recipe", "pack_rggb", "synthetic_pairs", "clip_weighted_l1", "DEFAULT_MODEL", "DEFAULT_CROP",
           "DEFAULT_SATURATION", "DEFAULT_CLIP_WEIGHT"]

DEFAULT_MODEL = "reverse_isp.unet_fusion"
DEFAULT_CROP = 96
#: chroma gain range of the synthetic captures (``--opt saturation=LOW,HIGH``; see
#: :meth:`~ispkit.neural.train.reverse_data.ReverseCamera.sample_saturation`)
DEFAULT_SATURATION = (1.0, 1.5)
#: weight of the clipped-region term of :func:`clip_weighted_l1` (``--opt clip_weight=W``)
DEFAULT_CLIP_WEIGHT = 1.0


def pack_rggb(rgb: torch.Tensor) -> torch.Tensor:
    """Mosaic N×3×H×W camera RGB as RGGB and pack it to N×4×H/2×W/2 (R, Gr, Gb, B); differentiable."""
    return torch.stack([rgb[:, 0, 0::2, 0::2], rgb[:, 1, 0::2, 1::2], rgb[:, 1, 1::2, 0::2],
                        rgb[:, 2, 1::2, 1::2]], dim=1)


def _packed_forward(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    return pack_rggb(model(batch["input"]))


def _ssim_metric(pred: torch.Tensor, batch: dict[str, Any]) -> float:
    return float(losses.ssim(pred.clamp(0, 1), batch["target"].to(pred.dtype)))


def _raw_psnr(pred: torch.Tensor, batch: dict[str, Any]) -> float:
    return psnr_metric(pred.clamp(0, 1), batch)


def _range(args: RecipeArgs, key: str, default: str) -> tuple[float, float]:
    text = args.extra.get(key, default)
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--opt {key}={text!r}: expected LOW,HIGH (e.g. {default})") from None
    return lo, hi


def _camera(args: RecipeArgs) -> ReverseCamera:
    name = args.extra.get("camera")
    ranges = dict(exposure=_range(args, "exposure", "1,3"),
                  saturation=_range(args, "saturation", ",".join(str(v) for v in DEFAULT_SATURATION)))
    if name is None:
        return ReverseCamera(**ranges)
    if name not in CAMERA_COLOR_MATRICES:
        raise unknown_name("camera", name, CAMERA_COLOR_MATRICES, "--opt camera")
    xyz_to_cam = np.asarray(CAMERA_COLOR_MATRICES[name], dtype=np.float64).reshape(3, 3) / 10000.0
    return ReverseCamera(cam_to_xyz=np.linalg.inv(xyz_to_cam), **ranges)


def synthetic_pairs(images, camera: ReverseCamera, variants: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render ``variants`` captures of every (name, sRGB) image: [(sRGB, camera RGB)]."""
    render = clipping_render()
    rng = np.random.default_rng(seed)
    out = []
    for _, img in images:
        for _ in range(variants):
            cam, k = camera.sample(rng)
            p = synthesize_pair(img, cam, k, render, saturation=camera.sample_saturation(rng))
            out.append((p["srgb"], p["raw"]))
    return out


def clip_weighted_l1(weight: float = DEFAULT_CLIP_WEIGHT, threshold: float = 0.98):
    """Return ``loss(pred, batch)``: L1 plus ``weight`` × the L1 over the input's overexposed pixels.

    The extra term is the mean absolute error over the pixels of
    :func:`~ispkit.neural.models.reverse_isp.overexposure_mask` (ramped and
    dilated as the fusion network's own mask), so the clipped regions — about
    a tenth of the pixels — weigh as much as the rest of the image however
    few of them a crop holds. In the fusion network they are exactly where
    the over-exposed branch acts, so that branch gets a gradient of the size
    the normal branch gets. ``weight`` 0 gives plain L1.

    Notes
    -----
    ``pred``: N×3×H×W (demosaiced) or N×4×H/2×W/2 (packed); the mask is
    computed from ``batch["input"]`` (N×3×H×W sRGB) and max-pooled ×2 for packed
    predictions.

    References
    ----------
    Kim, Jiang & Gu, AIM 2022 (arXiv:2210.11511): over-exposed and normal
    pixels mapped separately and fused by the overexposure mask.
    """
    from ..models.reverse_isp import overexposure_mask

    w = float(weight)
    if not w >= 0:
        raise ConfigError(f"clip_weighted_l1: weight must be >= 0, got {weight!r}")

    def loss(pred: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        target = batch["target"].to(pred.dtype)
        err = (pred - target).abs()
        base = err.mean()
        if w == 0:
            return base
        m = overexposure_mask(batch["input"].to(pred.dtype), threshold)
        if m.shape[-2:] != err.shape[-2:]:
            m = torch.nn.functional.max_pool2d(m, 2)
        masked = (err * m).sum() / (m.sum() * err.shape[1] + 1.0)
        return base + w * masked

    loss.__qualname__ = f"clip_weighted_l1_{w:g}"
    return loss


def _split_images(args: RecipeArgs) -> tuple[list, list]:
    root = Path(args.data)
    if (root / "train").is_dir() and (root / "val").is_dir():
        return load_srgb_folder(root / "train"), load_srgb_folder(root / "val")
    images = load_srgb_folder(root)
    held = int(args.extra.get("val", max(1, len(images) // 6)))
    if not 0 < held < len(images):
        raise ConfigError(f"--opt val={held}: hold out between 1 and {len(images) - 1} of the {len(images)} "
                          f"images in {str(root)!r} (the recipe needs at least two images)")
    return images[: len(images) - held], images[len(images) - held:]


def _is_aim(root: Path, loader: str | None) -> bool:
    if loader is not None:
        if loader not in ("aim", "synthetic"):
            raise ConfigError(f"recipe 'reverse_isp': --opt loader={loader!r}; choose 'synthetic' or 'aim'")
        return loader == "aim"
    return (root / "train").is_dir() and any((root / "train").glob("*.npy"))


def build_reverse_recipe(args: RecipeArgs) -> Recipe:
    """Build the reverse-ISP recipe (synthetic Kodak-style pairs, or the AIM 2022 layout)."""
    name = args.model if args.model and args.model in MODELS and args.model.startswith("reverse_isp.") \
        else DEFAULT_MODEL
    crop = args.crop or DEFAULT_CROP
    if crop % 8:
        raise ConfigError(f"--crop {crop}: the reverse-ISP U-Nets need crops that are a multiple of 8 pixels")
    seed = args.seed or 0
    model = create_model(name, weights=args.extra.get("weights"), eval=False)
    overrides = {"lr": 2e-3, "batch_size": 8, "best_metric": "psnr", "schedule": "cosine"}
    metrics = {"psnr": _raw_psnr, "ssim": _ssim_metric}
    root = Path(args.data)
    if _is_aim(root, args.extra.get("loader")):
        from .data_aim import AIMReverseISP

        train_dir = root / "train" if (root / "train").is_dir() else root
        train = AIMReverseISP(train_dir, crop=crop, seed=seed, train=True)
        val = AIMReverseISP(root / "val", crop=None, train=False) if (root / "val").is_dir() else None
        return Recipe(model=model, train_data=train, val_data=val, loss=losses.on_target(losses.l1),
                      forward=_packed_forward, metrics=metrics, config_overrides=overrides)
    camera = _camera(args)
    variants = int(args.extra.get("variants", 4))
    train_imgs, val_imgs = _split_images(args)
    steps = args.steps or 2000
    train = ReversePairs(synthetic_pairs(train_imgs, camera, variants, seed), crop=crop,
                         samples_per_epoch=max(1, steps * (args.batch_size or 8)), seed=seed, train=True)
    fits = min(min(img.shape[:2]) for _, img in val_imgs) // 8 * 8
    val_crop = min(int(args.extra.get("val_crop", 2 * crop)), fits)
    val = ReversePairs(synthetic_pairs(val_imgs, camera, 1, seed + 1), crop=val_crop, seed=seed, train=False)
    loss = clip_weighted_l1(float(args.extra.get("clip_weight", DEFAULT_CLIP_WEIGHT)))
    return Recipe(model=model, train_data=train, val_data=val, loss=loss, metrics=metrics,
                  config_overrides=overrides)


register_recipe("reverse_isp", build_reverse_recipe)
for _name in ("reverse_isp.unet", "reverse_isp.unet_refine", "reverse_isp.unet_fusion"):
    register_recipe(_name, build_reverse_recipe)
