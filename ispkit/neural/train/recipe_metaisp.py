"""Recipe ``metaisp``: train MetaISP on multi-device captures (``ispkit train metaisp --data DIR``).

The data layout and loader are in :mod:`ispkit.neural.train.metaisp_data`.
Each training sample is a random crop of one scene with one device's
rendition; the network sees the crop, the whole scene's global view, the
colour scaler, exposure and ISO, and the device id. Validation renders the
centre crop of every held-out scene for every device and reports PSNR,
SSIM and ΔE2000 per device.

Loss (masked: pixels the optical flow could not align count for nothing)::

    L1 + 0.2 (1 − SSIM) + 0.01 ΔE2000 [+ 0.1 angular error (degrees) of the estimated colour scaler]

Configurations (``--config``): ``paper`` trains the released ``real_E``
layout (``real_illuminants`` with ``--opt illuminant=1``) so the result loads
into ``create_model("metaisp.real_e", weights=best.pth)``; ``small`` (the
default) is a reduced network that trains on a CPU (:data:`SMALL_CONFIG`).
Options (``--opt key=value``): ``illuminant=0|1`` (the estimation head and
its loss), ``shared_look=0|1`` (ablation: one embedding for every device),
``use_wb=0|1`` (ablation: hide the as-shot white balance), ``align=0|1``
(optical-flow warping of the targets), ``val=N`` (scenes held out when DIR
has no ``train/`` and ``val/``), ``samples_per_scene=N``, ``view=N`` (global
view side), ``val_crop=N``, ``illuminant_jitter=J`` (recolour each training
sample's illuminant by red/blue factors up to e^±J, the colour scaler
compensating; default 0), ``head_warmup=N`` (steps training the illuminant
head alone before the whole network, default :data:`HEAD_WARMUP` with the
head; skipped on ``--resume``).

With the head, the trained network keeps the head's field of view to the
training crop (``MetaISPConfig.illum_patch``): on a whole frame its estimate
is the average over crop-sized tiles.

References
----------
M. Souza and W. Heidrich, "MetaISP — Exploiting Global Scene Structure for
Accurate Multi-Device Color Rendition", VMV 2023, arXiv:2401.03220.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ...errors import ConfigError, ParameterError, unknown_name
from ..models.metaisp import MetaISPConfig, MetaISPNet, make_attention_coords, make_coord
from . import losses as L
from .metaisp_data import MetaISPDataset, PreparedScene, default_val_count, read_devices, scan_scenes, split_scenes
from .config import TrainConfig
from .recipes import Recipe, RecipeArgs, register_recipe
from .trainer import Trainer, TrainResult

__all__ = [
    "SMALL_CONFIG", "TINY_CONFIG", "CONFIGS", "LOSS_WEIGHTS", "metaisp_config", "metaisp_forward",
    "metaisp_loss", "metaisp_metrics", "build_metaisp_recipe", "render_scene", "illuminant_loss", "scaler_rgb",
    "pretrain_illuminant_head", "HEAD_WARMUP",
]

#: A MetaISP that trains on a CPU: widths 16/32, embedding 32, a one-block XCiT of width 32
#: (about 0.2 M parameters against 6.3 M; same module tree, so the same code path).
SMALL_CONFIG = MetaISPConfig(ch1=16, ch2=32, emb_dim=32, xcit_dim=32, xcit_depth=1, xcit_heads=2, illum_width=16)
#: The unit-test size.
TINY_CONFIG = MetaISPConfig(ch1=8, ch2=8, emb_dim=8, xcit_dim=16, xcit_depth=1, xcit_heads=2, illum_width=8)
#: name → (network configuration, global view side, training crop in mosaic pixels, batch size, lr)
CONFIGS: dict[str, tuple[MetaISPConfig, int, int, int, float]] = {
    "small": (SMALL_CONFIG, 128, 128, 8, 2e-3),
    "paper": (MetaISPConfig(), 448, 448, 2, 1e-4),  # the release: 448² patches, 448² global view
}
#: Steps of 16 crops that train the illuminant head alone before the joint training (``--opt head_warmup``).
HEAD_WARMUP = 3000
#: Weights of the loss terms.
LOSS_WEIGHTS = {"l1": 1.0, "ssim": 0.2, "deltae": 0.01, "illuminant": 0.1}


def metaisp_config(name: str, *, devices: int = 3, illuminant: bool = False, iso_exp: bool = True,
                   crop: int | None = None) -> MetaISPConfig:
    """The :class:`MetaISPConfig` of a named recipe configuration for ``devices`` devices.

    With the illuminant head and a training ``crop`` (mosaic pixels) the head keeps the field of
    view it is trained on (``illum_patch = crop / 2`` packed pixels) when it later sees whole frames.
    """
    if name not in CONFIGS:
        raise unknown_name("MetaISP training configuration", name, CONFIGS, "ispkit train metaisp --config")
    patch = crop // 2 if illuminant and crop else None
    return replace(CONFIGS[name][0], num_devices=devices, illuminant=illuminant, iso_exp=iso_exp, illum_patch=patch)


def _expand(t: torch.Tensor, k: int) -> torch.Tensor:
    return t.repeat_interleave(k, dim=0) if k > 1 else t


def metaisp_forward(model: MetaISPNet, batch: dict[str, Any], *, shared_look: bool = False,
                    use_wb: bool = True) -> torch.Tensor:
    """Render every (sample, device) pair of a batch → (B·k)×3×H×W.

    Parameters
    ----------
    model : a :class:`MetaISPNet`.
    batch : from :class:`~ispkit.neural.train.metaisp_data.MetaISPDataset` (``mobile_id`` B×k).
    shared_look : ablation: every device is rendered with embedding row 0 (one look for all).
    use_wb : False hides the as-shot white balance (colour scaler of ones).

    Notes
    -----
    With the illuminant head the estimated colour scaler is stored in
    ``batch["est_color_scaler"]`` ((B·k)×4×1×1) for :func:`metaisp_loss`.
    """
    ids = batch["mobile_id"]
    b, k = ids.shape
    scaler = batch["color_scaler"] if use_wb else torch.ones_like(batch["color_scaler"])
    ids = ids.reshape(-1)
    if shared_look:
        ids = torch.zeros_like(ids)
    out = model(_expand(batch["raw"], k), _expand(batch["raw_full"], k), _expand(scaler, k),
                _expand(batch["coord"], k), ids, False, _expand(batch["coords"], k),
                _expand(batch["exp"], k).reshape(-1), _expand(batch["iso"], k).reshape(-1))
    if isinstance(out, tuple):
        out, est = out
        batch["est_color_scaler"] = est
    return out


def _targets(pred: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    target = batch["target"].to(pred.dtype).reshape(pred.shape)
    mask = batch["mask"].to(pred.dtype).reshape(pred.shape[0], 1, *pred.shape[-2:])
    return target, mask


def _filled(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``pred`` where the mask is set, the target elsewhere (so invalid pixels cost nothing)."""
    return pred * mask + target * (1.0 - mask)


def _masked_terms(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Masked L1, 1 − SSIM and ΔE2000 of one set of renders (means over valid pixels)."""
    frac = mask.mean().clamp_min(1e-3)
    fill = _filled(pred, target, mask)
    lab_p, lab_t = L.srgb_to_lab(pred), L.srgb_to_lab(target)
    de = (L.deltae2000(lab_p, lab_t) * mask[:, 0]).sum() / mask.sum().clamp_min(1.0)
    return {"l1": ((pred - target).abs() * mask).sum() / (mask.sum() * 3).clamp_min(1.0),
            "ssim": L.ssim_loss(fill, target) / frac, "deltae": de}


def scaler_rgb(s: torch.Tensor) -> torch.Tensor:
    """(B, G, R, G) colour scalers N×4×1×1 → N×3 (R, G, B)."""
    s = s.reshape(s.shape[0], 4)
    return torch.stack([s[:, 2], 0.5 * (s[:, 1] + s[:, 3]), s[:, 0]], dim=1)


def illuminant_loss(batch: dict[str, Any]) -> torch.Tensor:
    """Error of the estimated colour scaler where the file's white balance is known, in degrees.

    The angle between the estimated and the true scaler (as R, G, B) plus the distance of the
    estimate's green level from 1 in the same units (180/π per unit: a 1 % level error counts
    as 0.57°), so the head's output is a colour scaler (green 1, as the file's) as well as
    the right colour: the network multiplies the RAW by it.
    """
    est = batch["est_color_scaler"]
    k = est.shape[0] // batch["color_scaler"].shape[0]
    true = _expand(batch["color_scaler"], k).to(est.dtype)
    known = _expand(batch["wb_known"], k).reshape(-1).to(est.dtype)
    rgb = scaler_rgb(est)
    err = L.angular_error(rgb, scaler_rgb(true)) + (180.0 / np.pi) * (rgb[:, 1] - 1.0).abs()
    return (err * known).sum() / known.sum().clamp_min(1.0)


def pretrain_illuminant_head(model: MetaISPNet, data: MetaISPDataset, *, steps: int = 3000, batch_size: int = 16,
                             lr: float = 3e-3, seed: int = 0, device: str | torch.device = "cpu",
                             progress: Callable[[int, float], None] | None = None) -> float:
    """Train the illuminant head alone (its layers and the embedding gate ``emb_4``) on the colour scaler.

    Parameters
    ----------
    model : a :class:`MetaISPNet` with ``config.illuminant``.
    data : training crops; samples whose white balance is unknown (``wb_known`` 0) are skipped.
    steps, batch_size, lr : Adam with a cosine decay; the head is small, so 3000 steps of 16
        crops take seconds to a minute on a CPU.
    seed : the order of samples and epochs.
    progress : called as ``progress(step, loss)`` every 100 steps.

    Returns
    -------
    float
        The mean angular error (degrees) of the last 100 steps' batches.

    Notes
    -----
    Trained jointly from random weights, the head at first emits noise that
    the rest of the network learns to distrust, and the render loss pulls it
    away from the true illuminant; warmed up first, it starts the joint
    training as a colour-constancy estimator (the rendering network then
    learns to use its estimates). The loss is :func:`illuminant_loss`.
    """
    if not model.config.illuminant:
        raise ParameterError("pretrain_illuminant_head: the model has no illuminant head (config.illuminant)")
    if steps < 1 or batch_size < 1:
        raise ParameterError(f"pretrain_illuminant_head: steps and batch_size must be >= 1, got {steps}, {batch_size}")
    params = list(model.illumination.parameters()) + list(model.emb_4.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng([seed, 7])
    was_training = model.training
    model.train()
    recent: list[float] = []
    per_epoch = max(1, len(data) // batch_size)
    try:
        for step in range(steps):
            if hasattr(data, "set_epoch"):
                data.set_epoch(1000 + step // per_epoch)
            samples = [data[int(i)] for i in rng.integers(0, len(data), batch_size)]
            batch = {k: torch.stack([x[k] for x in samples]).to(device) for k in ("raw", "color_scaler", "wb_known",
                                                                               "mobile_id")}
            emb = model.embed(batch["mobile_id"][:, 0]).detach()
            batch["est_color_scaler"] = model.estimate_color_scaler(batch["raw"].clamp_min(0), emb)
            loss = illuminant_loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            recent = (recent + [float(loss.detach())])[-100:]
            if progress is not None and (step + 1) % 100 == 0:
                progress(step + 1, float(np.mean(recent)))
    finally:
        model.train(was_training)
    return float(np.mean(recent))


def metaisp_loss(weights: Mapping[str, float] | None = None) -> Callable[[torch.Tensor, dict[str, Any]], torch.Tensor]:
    """The training loss ``loss(pred, batch)``: weighted masked L1, 1 − SSIM, ΔE2000 and the illuminant term.

    The illuminant term applies when the batch carries ``est_color_scaler`` (the head is on).
    """
    w = {**LOSS_WEIGHTS, **(weights or {})}

    def loss(pred: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        target, mask = _targets(pred, batch)
        terms = _masked_terms(pred, target, mask)
        total = sum(w[k] * v for k, v in terms.items())
        if "est_color_scaler" in batch and w["illuminant"]:
            total = total + w["illuminant"] * illuminant_loss(batch)
        return total

    return loss


def _psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    se = ((pred.clamp(0, 1) - target) ** 2 * mask).flatten(1).sum(1)
    mse = se / (mask.flatten(1).sum(1) * 3).clamp_min(1.0)
    return float((-10.0 * torch.log10(mse.clamp_min(1e-12))).mean())


def _scores(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    pred = pred.clamp(0, 1)
    frac = float(mask.mean().clamp_min(1e-3))
    de = (L.deltae2000(L.srgb_to_lab(pred), L.srgb_to_lab(target)) * mask[:, 0]).sum() / mask.sum().clamp_min(1.0)
    return {"psnr": _psnr(pred, target, mask),
            "ssim": 1.0 - (1.0 - float(L.ssim(_filled(pred, target, mask), target))) / frac,
            "deltae": float(de)}


def metaisp_metrics(devices: Sequence[str]) -> dict[str, Callable[[torch.Tensor, dict[str, Any]], float]]:
    """Validation metrics: ``psnr``, ``ssim``, ``deltae`` over all renders and ``<metric>_<device>`` per device."""

    def metric(name: str, device: int | None) -> Callable[[torch.Tensor, dict[str, Any]], float]:
        def fn(pred: torch.Tensor, batch: dict[str, Any]) -> float:
            target, mask = _targets(pred, batch)
            if device is not None:
                pick = batch["mobile_id"].reshape(-1) == device
                if not bool(pick.any()):
                    return float("nan")
                pred, target, mask = pred[pick], target[pick], mask[pick]
            return _scores(pred, target, mask)[name]

        fn.__name__ = name if device is None else f"{name}_{devices[device]}"
        return fn

    out = {m: metric(m, None) for m in ("psnr", "ssim", "deltae")}
    for i, d in enumerate(devices):
        out.update({f"{m}_{d}": metric(m, i) for m in ("psnr", "ssim", "deltae")})
    return out


@torch.no_grad()
def render_scene(model: MetaISPNet, scene: PreparedScene, target: int | Mapping[int, float], *,
                 use_wb: bool = True) -> np.ndarray:
    """Render a whole prepared scene for a device id or a mix ``{id: weight}`` → H×W×3 float32 display RGB.

    Notes
    -----
    The packed RAW is cut to a multiple of 8 (the output loses at most 14 rows/columns);
    a mix interpolates the device embeddings (weights normalised to sum 1).
    """
    model.eval()
    dev = next(model.parameters()).device
    mix = {int(target): 1.0} if isinstance(target, (int, np.integer)) else {int(k): float(v) for k, v in target.items()}
    total = sum(mix.values())
    if not mix or total <= 0:
        raise ParameterError(f"render_scene: target must be a device id or a mix with positive weights, got {target!r}")
    emb = sum(w / total * model.embed(i) for i, w in mix.items())
    ph, pw = (n // 8 * 8 for n in scene.packed.shape[1:])
    raw = torch.from_numpy(np.ascontiguousarray(scene.packed[:, :ph, :pw]))[None].to(dev)
    scaler = torch.from_numpy(scene.color_scaler).reshape(1, 4, 1, 1).to(dev)
    if not use_wb:
        scaler = torch.ones_like(scaler)
    out = model.render(raw, torch.from_numpy(scene.view)[None].to(dev), scaler, make_coord(ph, pw).to(dev), emb,
                       make_attention_coords(ph, pw).to(dev, torch.float32),
                       torch.tensor([scene.exp], device=dev), torch.tensor([scene.iso], device=dev))
    out = out[0] if isinstance(out, tuple) else out
    return np.ascontiguousarray(out[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy(), dtype=np.float32)


def _flag(extra: Mapping[str, str], key: str, default: bool) -> bool:
    v = extra.get(key)
    if v is None:
        return default
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"ispkit train metaisp: --opt {key}={v!r} must be 0/1 (or true/false)")


def _number(extra: Mapping[str, str], key: str, default: Any, kind: type = int) -> Any:
    """``--opt key=value`` as ``kind`` (int or float), or ``default`` when absent."""
    v = extra.get(key)
    if v is None:
        return default
    try:
        return kind(v)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"ispkit train metaisp: --opt {key}={v!r} must be {what}") from None


def _scene_lists(root: Path, devices: Sequence[str], val: int | None) -> tuple[list[Any], list[Any]]:
    if (root / "train").is_dir():
        train = scan_scenes(root / "train", devices)
        held = scan_scenes(root / "val", devices) if (root / "val").is_dir() else []
        return train, held
    scenes = scan_scenes(root, devices)
    return split_scenes(scenes, default_val_count(len(scenes)) if val is None else val)


def build_metaisp_recipe(args: RecipeArgs) -> Recipe:
    """Build the ``metaisp`` recipe from the command line (see the module docstring)."""
    name = args.config or "small"
    extra = dict(args.extra)
    known = {"illuminant", "shared_look", "use_wb", "align", "val", "samples_per_scene", "view", "val_crop",
             "illuminant_jitter", "head_warmup"}
    for key in extra:
        if key not in known:
            raise unknown_name("metaisp option", key, sorted(known), "ispkit train metaisp --opt")
    root = Path(args.data)
    devices = read_devices(root)
    illuminant = _flag(extra, "illuminant", False)
    if name not in CONFIGS:
        raise unknown_name("MetaISP training configuration", name, CONFIGS, "ispkit train metaisp --config")
    _, view, crop, batch, lr = CONFIGS[name]
    crop = args.crop or crop
    cfg = metaisp_config(name, devices=len(devices), illuminant=illuminant, crop=crop)
    view = _number(extra, "view", view)
    align = _flag(extra, "align", True)
    train_files, val_files = _scene_lists(root, devices, _number(extra, "val", None))
    seed = args.seed or 0
    train = MetaISPDataset(train_files, devices, crop=crop, train=True, seed=seed, view_size=view, align=align,
                           samples_per_scene=_number(extra, "samples_per_scene", 8),
                           illuminant_jitter=_number(extra, "illuminant_jitter", 0.0, float))
    val = MetaISPDataset(val_files, devices, crop=_number(extra, "val_crop", 2 * crop), train=False, view_size=view,
                         align=align) if val_files else None
    shared, use_wb = _flag(extra, "shared_look", False), _flag(extra, "use_wb", True)
    if shared and illuminant:
        raise ParameterError("ispkit train metaisp: shared_look and illuminant cannot be combined")

    def forward(model: MetaISPNet, b: dict[str, Any]) -> torch.Tensor:
        return metaisp_forward(model, b, shared_look=shared, use_wb=use_wb)

    model, loss, metrics = MetaISPNet(cfg), metaisp_loss(), metaisp_metrics(devices)
    warmup = _number(extra, "head_warmup", HEAD_WARMUP if illuminant else 0) or 0
    if warmup and not illuminant:
        raise ParameterError("ispkit train metaisp: --opt head_warmup needs the illuminant head (--opt illuminant=1)")

    def run(fields: dict[str, Any], resume: bool) -> TrainResult:
        config = TrainConfig(out_dir=Path(args.out), **fields)
        trainer = Trainer(model, train, loss=loss, config=config, val_data=val, forward=forward, metrics=metrics)
        if not (resume and trainer.last_path.is_file()):
            say = print if config.progress else (lambda *_: None)
            err = pretrain_illuminant_head(model, train, steps=warmup, seed=seed,
                                           progress=lambda k, e: say(f"illuminant head warm-up {k}/{warmup}: {e:.2f}°"))
            print(f"ispkit train: illuminant head warmed up for {warmup} steps ({err:.2f}° on training crops)")
        return trainer.fit(resume=resume)

    return Recipe(model=model, train_data=train, val_data=val, loss=loss, forward=forward, metrics=metrics,
                  config_overrides={"batch_size": batch, "lr": lr, "epochs": 20, "best_metric": "psnr"},
                  run=run if warmup else None)


register_recipe("metaisp", build_metaisp_recipe)
