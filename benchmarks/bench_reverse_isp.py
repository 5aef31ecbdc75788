"""Reverse ISP proof: classical inverse vs the learned U-Net, with and without overexposure fusion.

Trains ``reverse_isp.unet`` and ``reverse_isp.unet_fusion`` on the CPU on
unprocessed Kodak images (kodim01–18; D750 colour matrix, random white
balance, exposure ×1–×3 so that the rendered sRGB clips, chroma gain ×1–×1.5
so that saturated colours leave the sRGB gamut as real scenes do), with the
same steps, batch and loss for both (L1 plus the L1 over the clipped regions,
:func:`ispkit.neural.train.recipe_reverse.clip_weighted_l1`), timing each
network's training in wall and CPU seconds. It then scores every method by the
AIM 2022 protocol (PSNR / SSIM on packed R, Gr, Gb, B RAW) on

* the held-out Kodak images kodim19–24, each at exposure ×1 and ×2;
* the real Nikon D750 Bayer crop of ``../shared/data/bayer`` rendered forward
  by the same pipeline, at its own exposure and at ×2 (+1 EV);

overall and on the clipped regions (2×2 blocks where any sRGB channel ≥ 0.98).
The forward ISP is the ``default`` preset without its display tone curve
(:func:`ispkit.neural.train.reverse_data.clipping_render`): highlights clip at
white, as in camera JPEGs. Methods:

* classical inverse, true metadata: the forward pipeline's ``Pipeline.inverse()``
  run with the capture's own white balance and matrix;
* classical inverse, estimated metadata: the camera's matrix, mid-range gains;
* U-Net / U-Net + fusion (+ refinement): the trained networks, no metadata.

    python benchmarks/bench_reverse_isp.py --ablation       # the README numbers (+ reverse_isp.unet_refine)
    python benchmarks/bench_reverse_isp.py --steps 20 --quick   # smoke run
    python benchmarks/bench_reverse_isp.py --reuse          # evaluate the networks saved in --out again

The default 2400 steps keep the slowest network (fusion: three U-Nets) at
about 14 minutes of one-thread CPU time. Run it under ``nice`` with
``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1`` on a shared machine (torch's thread
count is set again after the Numba renders of the synthesis, which reset it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2400,
                   help="optimiser steps per model (2400: the fusion network's ~14 min of one-thread CPU time)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--eval-crop", type=int, default=384, help="centre crop of every evaluation image (0: whole)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--variants", type=int, default=4, help="random captures per training image")
    p.add_argument("--saturation", default="1,1.5",
                   help="chroma gain range of the training captures (LOW,HIGH; 1,1 turns it off)")
    p.add_argument("--clip-weight", type=float, default=1.0,
                   help="weight of the clipped-region L1 term of the loss (0: plain L1)")
    p.add_argument("--reuse", action="store_true",
                   help="load the networks trained by an earlier run from --out instead of training them")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 training and 2 held-out images")
    p.add_argument("--ablation", action="store_true", help="also train reverse_isp.unet_refine")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_reverse_isp"))
    return p.parse_args()


def classical_inverse(srgb: np.ndarray, meta, inverse) -> np.ndarray:
    """sRGB → normalised RAW mosaic by the forward pipeline's ``Pipeline.inverse()``.

    For the clipping render that is: sRGB EOTF, inverse colour matrix, sampling
    at the CFA positions, the clip at the white point that undoes the highlight
    reconstruction, inverse gains, inverse exposure (black 0, white 1 here).
    """
    from ispkit.frame import Domain, Frame

    return np.asarray(inverse(Frame(srgb, Domain.DISPLAY_RGB, meta)).data, dtype=np.float32)


def _d750_capture():
    from ispkit.frame import CaptureMetadata

    side = json.loads((DATA / "bayer" / "d750_rose_768x512.json").read_text())
    raw = np.fromfile(DATA / "bayer" / "d750_rose_768x512_rggb.raw", dtype="<u2").reshape(512, 768)
    black, white = float(side["black_level"][0]), float(side["white_level"])
    norm = np.clip((raw.astype(np.float32) - black) / (white - black), 0, 1)
    xyz_to_cam = np.asarray(side["color_matrix_xyz_to_cam_ColorMatrix2"], dtype=np.float64)
    meta = CaptureMetadata(black_level=np.zeros(4), white_level=1.0, cfa_pattern="RGGB",
                           wb_gains=np.asarray(side["wb_gains_R_G_B"], dtype=np.float64),
                           cam_to_xyz=np.linalg.inv(xyz_to_cam))
    return norm, meta


def _packed(camera_rgb_or_mosaic: np.ndarray, cfa: str) -> np.ndarray:
    from ispkit.neural.reverse_isp import aim_pack
    from ispkit.stages.demosaic import mosaic

    a = np.clip(camera_rgb_or_mosaic, 0, 1)
    m = a if a.ndim == 2 else mosaic(a, cfa)
    return aim_pack(m, cfa)


def _centre(a: np.ndarray, side: int, factor: int = 1) -> np.ndarray:
    """Centre crop of side ``side`` full-resolution pixels (even offsets; ``factor`` 2 for packed RAW)."""
    if not side:
        return a
    h, w = a.shape[0] * factor, a.shape[1] * factor
    y, x = (h - min(side, h)) // 4 * 2, (w - min(side, w)) // 4 * 2
    return a[y // factor:(y + side) // factor, x // factor:(x + side) // factor]


def training_pairs(train_names, camera, render, args) -> list:
    """Synthesise (or load from ``--out``) the training pairs: ``variants`` captures of every image."""
    from ispkit.neural.train.reverse_data import load_srgb_folder, synthesize_pair

    key = f"pairs_v{args.variants}_s{args.seed}_sat{args.saturation.replace(',', '-')}{'_quick' if args.quick else ''}"
    cache = args.out / f"{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        return [(z[f"srgb{i}"], z[f"raw{i}"]) for i in range(int(z["n"]))]
    rng = np.random.default_rng(args.seed)
    pairs = []
    for name, img in load_srgb_folder(DATA / "rgb" / "kodak24", train_names):
        for _ in range(args.variants):
            cam, k = camera.sample(rng)
            p = synthesize_pair(img, cam, k, render, saturation=camera.sample_saturation(rng))
            pairs.append((p["srgb"], p["raw"]))
    arrays = {f"srgb{i}": s for i, (s, _) in enumerate(pairs)} | {f"raw{i}": r for i, (_, r) in enumerate(pairs)}
    np.savez(cache, n=len(pairs), **arrays)
    return pairs


def build_eval_sets(render, camera, quick: bool, seed: int, side: int = 0):
    """[(set name, [(label, srgb, true packed, metadata)])]."""
    from ispkit.frame import Domain, Frame
    from ispkit.neural.train.reverse_data import load_srgb_folder, synthesize_pair
    names = [f"kodim{i:02d}.png" for i in (range(19, 21) if quick else range(19, 25))]
    rng = np.random.default_rng(seed + 1000)
    kodak = []
    for name, img in load_srgb_folder(DATA / "rgb" / "kodak24", names):
        cam, _ = camera.sample(rng)
        for k in (1.0, 2.0):
            p = synthesize_pair(img, cam, k, render)
            kodak.append((f"{name}×{k:g}", _centre(p["srgb"], side), _centre(_packed(p["raw"], "RGGB"), side, 2),
                          p["frame"].meta))
    real = []
    norm, meta = _d750_capture()
    for k in (1.0, 2.0):
        raw = np.clip(norm * np.float32(k), 0, 1)
        srgb = np.clip(render(Frame(raw, Domain.RAW_MOSAIC, meta)).data, 0, 1)
        srgb = (np.round(srgb * 255) / 255).astype(np.float32)
        real.append((f"d750_rose×{k:g}", _centre(srgb, side), _centre(_packed(raw, "RGGB"), side, 2), meta))
    return [("Kodak held-out (6 × 2 exposures)" if not quick else "Kodak held-out (quick)", kodak),
            ("Nikon D750 real crop (×1, ×2)", real)]


def train_models(names, pairs, args) -> dict:
    """Train (or with ``--reuse`` load) each network; returns (models, wall seconds, CPU seconds)."""
    import torch

    from ispkit.neural import create_model
    from ispkit.neural.train import Trainer, TrainConfig
    from ispkit.neural.train.recipe_reverse import clip_weighted_l1
    from ispkit.neural.train.reverse_data import ReversePairs

    models, times, cpu = {}, {}, {}
    for name in names:
        saved = args.out / f"{name}.pth"
        if args.reuse and saved.is_file():
            models[name] = create_model(name, weights=str(saved))
            print(f"  loaded {name} from {saved}", flush=True)
            continue
        torch.manual_seed(args.seed)
        model = create_model(name, eval=False)
        data = ReversePairs(pairs, crop=args.crop, samples_per_epoch=args.steps * args.batch, seed=args.seed)
        cfg = TrainConfig(out_dir=args.out / name, max_steps=args.steps, batch_size=args.batch, lr=args.lr,
                          schedule="cosine", seed=args.seed, device="cpu", progress=False, grad_clip=1.0)
        t0, c0 = time.perf_counter(), time.process_time()
        result = Trainer(model, data, loss=clip_weighted_l1(args.clip_weight), config=cfg).fit()
        times[name], cpu[name] = time.perf_counter() - t0, time.process_time() - c0
        model.eval()
        torch.save(model.state_dict(), saved)
        models[name] = model
        print(f"  trained {name}: {result.steps} steps in {times[name]:.0f} s wall, {cpu[name]:.0f} s CPU "
              f"({cpu[name] / max(result.steps, 1):.3f} s CPU/step, torch threads {torch.get_num_threads()})",
              flush=True)
    return models, times, cpu


def predict(model, srgb: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(srgb.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        y = model(x)[0].numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(y, dtype=np.float32)


def evaluate(sets, methods, render):
    from ispkit.neural.reverse_isp import aim_metrics, overexposed_pixels

    rows = []
    for set_name, items in sets:
        for method, fn in methods.items():
            allm, clip = [], []
            for label, srgb, true_packed, meta in items:
                pred = _packed(fn(srgb, meta), "RGGB")
                allm.append(aim_metrics(pred, true_packed))
                mask = overexposed_pixels(srgb, 0.98, packed=True)
                if mask.any():
                    clip.append(aim_metrics(pred, true_packed, mask))
            row = {"set": set_name, "method": method,
                   "psnr": float(np.mean([m["psnr"] for m in allm])),
                   "ssim": float(np.mean([m["ssim"] for m in allm])),
                   "clip_psnr": float(np.mean([m["psnr"] for m in clip])) if clip else float("nan"),
                   "clip_ssim": float(np.nanmean([m["ssim"] for m in clip])) if clip else float("nan"),
                   "clip_images": len(clip),
                   "clip_fraction": float(np.mean([overexposed_pixels(s, 0.98).mean() for _, s, _, _ in items]))}
            rows.append(row)
            print(f"  {set_name:34s} {method:34s} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.4f}  "
                  f"clipped: PSNR {row['clip_psnr']:6.2f}  SSIM {row['clip_ssim']:.4f}", flush=True)
    return rows


def table(rows) -> str:
    lines = ["| data | method | PSNR dB | SSIM | clipped PSNR dB | clipped SSIM |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                     f"{r['clip_psnr']:.2f} | {r['clip_ssim']:.4f} |")
    return "\n".join(lines)


def main() -> int:
    args = _args()
    if not (DATA / "rgb" / "kodak24").is_dir():
        print(f"needs {DATA}/rgb/kodak24 (see ../shared/data/README.md)")
        return 1
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    warnings.filterwarnings("ignore", category=UserWarning)
    from ispkit.neural.train.reverse_data import ReverseCamera, clipping_render

    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    render = clipping_render()
    lo, hi = (float(v) for v in args.saturation.split(","))
    camera = ReverseCamera(saturation=(lo, hi))
    print(f"forward ISP: {' → '.join(render.names)}", flush=True)
    train_names = [f"kodim{i:02d}.png" for i in (range(1, 3) if args.quick else range(1, 19))]
    t0 = time.perf_counter()
    pairs = training_pairs(train_names, camera, render, args)
    clipped = float(np.mean([np.mean(s.max(axis=2) >= 0.98) for s, _ in pairs]))
    print(f"synthesised {len(pairs)} training pairs in {time.perf_counter() - t0:.0f} s "
          f"({100 * clipped:.1f} % of pixels clipped in sRGB)", flush=True)
    sets = build_eval_sets(render, camera, args.quick, args.seed, args.eval_crop)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))  # Numba's kernels reset it

    names = ["reverse_isp.unet", "reverse_isp.unet_fusion"] + (["reverse_isp.unet_refine"] if args.ablation else [])
    models, times, cpu = train_models(names, pairs, args)
    guess = camera.mean_metadata()
    inverse = render.inverse()
    methods = {
        "classical inverse, true metadata": lambda s, meta: classical_inverse(s, meta, inverse),
        "classical inverse, estimated metadata": lambda s, meta: classical_inverse(s, guess, inverse),
    }
    labels = {"reverse_isp.unet": "U-Net", "reverse_isp.unet_refine": "U-Net + refinement",
              "reverse_isp.unet_fusion": "U-Net + overexposure fusion + refinement"}
    for n in names:
        methods[labels[n]] = (lambda m: (lambda s, meta: predict(m, s)))(models[n])
    t0 = time.perf_counter()
    rows = evaluate(sets, methods, render)
    t_eval = time.perf_counter() - t0
    total = time.perf_counter() - t_start
    print()
    print(table(rows))
    print(f"\nsteps {args.steps} × batch {args.batch} × crop {args.crop}; training wall / CPU time: "
          + ", ".join(f"{n} {t:.0f} s / {cpu[n]:.0f} s" for n, t in times.items())
          + f"; evaluation {t_eval:.0f} s; total {total:.0f} s (torch threads {torch.get_num_threads()})")
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "train_seconds": times, "train_cpu_seconds": cpu,
                                                       "eval_seconds": t_eval,
                                                       "total_seconds": total, "args": {k: str(v) for k, v in vars(args).items()}},
                                                      indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
