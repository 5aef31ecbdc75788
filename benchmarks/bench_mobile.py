"""The compact mobile ISP ``mai.compact``: train, export (ONNX FP32/FP16/int8), measure quality and latency.

1. Trains ``mai.compact`` with its recipe's model, loss and held-out split
   (``ispkit train mai.compact``) on Kodak images unprocessed with random
   real-camera matrices, white balance, brightness and Brooks noise (4
   captures per training image, made up front); the last 4 of the 24 are
   held out.
2. Exports ONNX FP32 and FP16 with dynamic size (traced at 64×64 packed) and
   quantises int8 (static, QDQ, per-channel weights) with a calibration set
   of training crops.
3. PSNR of torch / FP32 / FP16 / int8 on the 4 held-out images at full size
   (768×512, noisy RAW with a fixed camera per image), outputs clipped to [0, 1].
4. Latency through onnxruntime on this CPU for a 544×960×4 input (the MAI
   2022 challenge size), median of ``--repeats`` runs, beside torch eager
   in the same process (the reference of the ratios).

Usage::

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/bench_mobile.py --steps 400

Needs the ``onnx`` extra and ``../shared/data/rgb/kodak24``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import median_time

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "rgb" / "kodak24"


def _psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = float(np.mean((np.clip(pred, 0, 1).astype(np.float64) - target) ** 2))
    return -10.0 * np.log10(max(mse, 1e-12))


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class CachedCaptures(torch.utils.data.Dataset):
    """Random crops of captures unprocessed once (each training image × ``cameras`` random cameras).

    Unprocessing a full Kodak image per sample costs more than the network's step on this CPU, so the
    benchmark draws its crops from captures made up front (the recipe's loader makes a new capture per
    sample; the data distribution is the same, with fewer distinct cameras and noise draws).
    """

    def __init__(self, items, crop: int, count: int, cameras: int = 4, seed: int = 0) -> None:
        from ispkit.io import read_image
        from ispkit.neural import pack_bayer
        from ispkit.stages import sample_camera, unprocess

        rng = np.random.default_rng(seed)
        self.pairs = []
        for path in items:
            srgb = np.clip(read_image(path), 0, 1).astype(np.float32)
            srgb = srgb[: srgb.shape[0] // 2 * 2, : srgb.shape[1] // 2 * 2]
            for _ in range(cameras):
                r = unprocess(srgb, sample_camera(rng), rng=rng)
                self.pairs.append((pack_bayer(r.frame.data, "RGGB"), srgb))
        self.crop, self.count, self.seed, self.epoch = crop, count, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        packed, srgb = self.pairs[int(rng.integers(len(self.pairs)))]
        c = self.crop // 2
        y, x = int(rng.integers(packed.shape[0] - c + 1)), int(rng.integers(packed.shape[1] - c + 1))
        p, s = packed[y:y + c, x:x + c], srgb[2 * y:2 * y + 2 * c, 2 * x:2 * x + 2 * c]
        return {"input": torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1))),
                "target": torch.from_numpy(np.ascontiguousarray(s.transpose(2, 0, 1)))}


def train(args: argparse.Namespace, out: Path):
    from ispkit.neural.train import RecipeArgs, TrainConfig, Trainer
    from ispkit.neural.train.recipe_mai import build_mai_recipe

    rargs = RecipeArgs(data=KODAK, out=out, steps=args.steps, batch_size=args.batch_size, crop=args.crop,
                       seed=0, model="mai.compact", extra={"val": "4", "val_crop": "256"})
    recipe = build_mai_recipe(rargs)
    t = time.perf_counter()
    data = CachedCaptures(recipe.train_data.items, args.crop, args.steps * args.batch_size)
    print(f"cached {len(data.pairs)} training captures in {time.perf_counter() - t:.0f} s", flush=True)
    cfg = TrainConfig(out_dir=out, max_steps=args.steps, batch_size=args.batch_size, lr=1e-3, seed=0,
                      device="cpu", val_every=10_000, progress=False, log_csv=True, checkpoint_every=50)
    trainer = Trainer(recipe.model, data, loss=recipe.loss, config=cfg, val_data=recipe.val_data,
                      metrics=recipe.metrics)
    t = time.perf_counter()
    result = trainer.fit()
    wall = time.perf_counter() - t
    model = recipe.model.eval()
    if result.best_path is not None:
        from ispkit.neural import create_model

        model = create_model("mai.compact", weights=result.best_path)
    recipe.train_data = data
    return model, recipe, wall, result


def held_out(recipe) -> list[tuple[np.ndarray, np.ndarray]]:
    """The held-out images at full size: (1×4×H/2×W/2 packed noisy RAW, 3×H×W sRGB)."""
    from ispkit.neural.train.data import open_dataset

    val = recipe.val_data
    full = open_dataset("synthetic", KODAK, crop=None, train=False, flip=False, direction="raw2rgb", seed=0,
                        channel_order="R,Gr,Gb,B")
    full.items = list(val.items)
    return [(s["input"][None].numpy(), s["target"].numpy()) for s in (full[i] for i in range(len(full)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--calibration", type=int, default=32, help="training crops for int8 calibration")
    p.add_argument("--out", type=Path, default=None, help="keep the checkpoints and ONNX files here")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if not KODAK.is_dir():
        print(f"skip: {KODAK} not found (see ../shared/data/README.md)")
        return 0
    torch.set_num_threads(args.threads)
    from ispkit.neural.export import export_onnx, quantize_onnx_int8

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_mobile_"))
    out.mkdir(parents=True, exist_ok=True)
    model, recipe, wall, result = train(args, out)
    params = sum(p.numel() for p in model.parameters())
    print(f"trained mai.compact ({params:,} parameters): {result.steps} steps of batch {args.batch_size} "
          f"({args.crop}×{args.crop} crops) in {wall:.0f} s")

    fp32 = export_onnx(model, out / "mai_fp32.onnx", input_shape=(1, 4, 64, 64))
    fp16 = export_onnx(model, out / "mai_fp16.onnx", input_shape=(1, 4, 64, 64), dtype="float16")
    calib = [recipe.train_data[i]["input"][None].numpy() for i in range(args.calibration)]
    int8 = quantize_onnx_int8(fp32, out / "mai_int8.onnx", calib)

    sessions = {"onnx fp32": (_session(fp32, args.threads), np.float32),
                "onnx fp16": (_session(fp16, args.threads), np.float16),
                "onnx int8": (_session(int8, args.threads), np.float32)}
    images = held_out(recipe)
    scores: dict[str, list[float]] = {"torch fp32": [], **{k: [] for k in sessions}}
    for x, target in images:
        with torch.inference_mode():
            scores["torch fp32"].append(_psnr(model(torch.from_numpy(x))[0].numpy(), target))
        for name, (sess, dt) in sessions.items():
            y = sess.run(None, {"input": x.astype(dt)})[0][0].astype(np.float32)
            scores[name].append(_psnr(y, target))
    psnr = {k: float(np.mean(v)) for k, v in scores.items()}

    x = np.random.default_rng(0).random((1, 4, 544, 960), dtype=np.float32)
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        latency = {"torch fp32": median_time(lambda: model(xt), args.repeats)}
    for name, (sess, dt) in sessions.items():
        xd = x.astype(dt)
        latency[name] = median_time(lambda s=sess, xd=xd: s.run(None, {"input": xd}), args.repeats)

    ref = latency["torch fp32"]
    print(f"\nheld-out Kodak (4 images, 768×512, noisy unprocessed RAW); latency 544×960×4 → 1088×1920×3, "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"{'variant':<12} {'PSNR dB':>8} {'Δ vs fp32':>10} {'latency ms':>11} {'× torch':>8} {'file MB':>8}")
    files = {"torch fp32": None, "onnx fp32": fp32, "onnx fp16": fp16, "onnx int8": int8}
    for name in scores:
        size = f"{files[name].stat().st_size / 1e6:8.2f}" if files[name] else f"{'-':>8}"
        print(f"{name:<12} {psnr[name]:8.2f} {psnr[name] - psnr['onnx fp32']:+10.2f} {1e3 * latency[name]:11.0f} "
              f"{ref / latency[name]:8.2f} {size}")
    loss = psnr["onnx fp32"] - psnr["onnx int8"]
    print(f"\nint8 loses {loss:.2f} dB against FP32 (goal ≤ 0.3 dB: {'met' if loss <= 0.3 else 'NOT met'}); "
          f"parameters {params:,}")
    if args.json:
        args.json.write_text(json.dumps({"params": params, "psnr": psnr, "latency_s": latency, "train_wall_s": wall,
                                         "steps": result.steps}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
