"""MetaISP on synthetic multi-device data: does the device embedding, the interpolation and the WB input work?

Three synthetic "phones" (``SYNTHETIC_DEVICES``: warm/vivid with CLAHE, flat/neutral,
cool/crisp — each an ispkit pipeline with its own WB bias, saturation, tone curve
and local contrast) render RAWs made by unprocessing the Kodak images under random
illuminants (colour temperatures 2500-8000 K, uniform in mired, with a small Duv) and the real Bayer crops
of ../shared/data. The device images are written shifted by a random 1-3 px (the
loader's optical flow must undo it). A small MetaISP is trained four times on the
same data and steps:

    full       device embedding + as-shot WB (real_E-like)
    shared     one embedding for all devices (one look for all)
    no_wb      device embedding, WB metadata hidden
    head       device embedding, WB hidden, illuminant head (real_illuminants-like; the head is
               trained alone first and averages 32² packed tiles on whole frames)

and scored on held-out scenes (Kodak 20-24 and the N900 crop) against the exact,
unshifted device renders: PSNR and mean CIEDE2000 per device, plus the default
classical pipeline. Interpolation: the full model's render at {A: 0.5, B: 0.5}
against its renders for A and B.

Run: ``nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/metaisp_synthetic.py [--steps N] [--config tiny|small]``.
The default, 7000 steps per variant (842-914 s CPU per model on one thread, the head variant's
3000 warm-up steps of the head alone included), is the length the README table was measured at;
``--steps 900`` gives a quick run with smaller effects.
On a 2-core machine train the variants in two processes (``--work DIR --train-only --variants full,shared``
and ``... --variants no_wb,head``), then ``--work DIR --eval-only``. The table printed is the README's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ispkit.io import read_capture
from ispkit.metrics import delta_e2000, psnr
from ispkit.neural.device_rendition import estimate_color_scaler
from ispkit.neural.models.metaisp import MetaISPNet
from ispkit.neural.train.losses import angular_error
from ispkit.neural.train import TrainConfig, Trainer
from ispkit.neural.train.metaisp_data import (
    MetaISPDataset,
    prepare_scene,
    read_devices,
    scan_scenes,
)
from ispkit.neural.train.metaisp_synthetic import (
    SYNTHETIC_DEVICES,
    render_device,
    synthesize_raw,
    write_devices,
    write_scene,
)
from ispkit.neural.train.recipe_metaisp import (
    SMALL_CONFIG,
    TINY_CONFIG,
    scaler_rgb,
    metaisp_forward,
    metaisp_loss,
    metaisp_metrics,
    pretrain_illuminant_head,
    render_scene,
)
from ispkit.render import render_frame
from ispkit.stages import BlackLevel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HELD_OUT = {"kodim20", "kodim21", "kodim22", "kodim23", "kodim24", "n900_dog"}
BAYER = {"d750_rose": "d750_rose_768x512_rggb.raw", "openisp_chart": "openisp_chart_1920x1080_rggb.raw",
         "n900_dog": "n900_dog_256x344_grbg.png"}
VIEW = 64
CONFIGS = {"tiny": TINY_CONFIG, "small": SMALL_CONFIG}
#: Optimiser steps per variant by default: the README table's length (conditioning >= +3 dB needs it).
DEFAULT_STEPS = 7000
#: Steps of 16 crops training the illuminant head alone before the head variant's joint training.
HEAD_WARMUP = 3000
#: linear sRGB -> XYZ (D65), IEC 61966-2-1
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
VARIANTS = {  # name -> (illuminant head, shared look, use WB)
    "full": (False, False, True),
    "shared": (False, True, True),
    "no_wb": (False, False, False),
    "head": (True, False, False),
}


def _shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Translate by a random 1-3 px in x and y (edge pixels repeated), as a second camera would be off."""
    dy, dx = (int(rng.integers(1, 4)) * int(rng.choice([-1, 1])) for _ in range(2))
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def _sources(rng: np.random.Generator, illuminants: int = 1):
    """(name, black-level-normalised RAW frame) for every Kodak image (``illuminants`` unprocessings of each
    training image, one of each held-out one) and Bayer crop."""
    for path in sorted((DATA / "rgb" / "kodak24").glob("kodim*.png")):
        srgb = cv2.imread(str(path))[..., ::-1].astype(np.float32) / 255.0
        srgb = srgb[: srgb.shape[0] // 2 * 2, : srgb.shape[1] // 2 * 2]
        count = 1 if path.stem in HELD_OUT else illuminants
        for k in range(count):
            yield path.stem + (f"_{k}" if k else ""), synthesize_raw(srgb, rng)
    for name, file in BAYER.items():
        frame = BlackLevel()(read_capture(DATA / "bayer" / file))
        h, w = frame.data.shape[0] // 2 * 2, frame.data.shape[1] // 2 * 2
        frame = frame.replace(data=np.clip(frame.data[:h, :w], 0.0, 1.0))
        m = frame.meta
        if m.cam_to_xyz is None and m.color_matrix2 is None and getattr(m, "cam_to_srgb", None) is None:
            frame = frame.replace(cam_to_xyz=SRGB_TO_XYZ)  # the chart has no matrix: take its camera RGB as sRGB
        yield name, frame


def build_dataset(root: Path, seed: int = 0, illuminants: int = 1) -> None:
    """Write train/ and val/ scenes with shifted device images under ``root`` (``illuminants`` scenes per
    training Kodak image, each under its own illuminant)."""
    rng = np.random.default_rng(seed)
    write_devices(root, SYNTHETIC_DEVICES)
    for name, frame in _sources(rng, illuminants):
        renders = {look.name: _shift(render_device(frame, look), rng) for look in SYNTHETIC_DEVICES}
        write_scene(root / ("val" if name in HELD_OUT else "train") / name, frame, renders)


def make_net(config: str, name: str, devices: int, crop: int) -> MetaISPNet:
    """The network of a variant (random weights); the illuminant head keeps the training crop's field of view."""
    head = VARIANTS[name][0]
    return MetaISPNet(replace(CONFIGS[config], num_devices=devices, illuminant=head,
                              illum_patch=crop // 2 if head else None))


def train_variant(root: Path, scenes: list, out: Path, name: str, steps: int, crop: int, batch: int,
                  seed: int, config: str, head_warmup: int = HEAD_WARMUP) -> MetaISPNet:
    """Train one variant of :data:`VARIANTS` for ``steps`` steps on prepared ``scenes``; return the network.

    The illuminant head is first trained alone for ``head_warmup`` steps of 16 crops (seconds)."""
    _, shared, use_wb = VARIANTS[name]
    devices = read_devices(root)
    train = MetaISPDataset(scenes, devices, crop=crop, seed=seed, view_size=VIEW, samples_per_scene=16)
    torch.manual_seed(seed)
    net = make_net(config, name, len(devices), crop)
    if VARIANTS[name][0] and head_warmup:
        err = pretrain_illuminant_head(net, train, steps=head_warmup, seed=seed)
        print(f"{name}: illuminant head warmed up for {head_warmup} steps (training crops: {err:.2f}°)", flush=True)

    def forward(model, b):
        return metaisp_forward(model, b, shared_look=shared, use_wb=use_wb)

    cfg = TrainConfig(out_dir=out / name, max_steps=steps, batch_size=batch, lr=3e-3, seed=seed, device="cpu",
                      progress=False)
    Trainer(net, train, loss=metaisp_loss(), config=cfg, forward=forward, metrics=metaisp_metrics(devices)).fit()
    return net.eval()


def evaluate(root: Path, nets: dict[str, MetaISPNet]) -> dict:
    """Per-device PSNR / ΔE00 on held-out scenes, classical baseline, interpolation."""
    devices = read_devices(root)
    looks = {look.name: look for look in SYNTHETIC_DEVICES}
    rows: dict[str, dict[str, list[float]]] = {}
    interp: list[tuple[float, float, float]] = []
    scaler_err: dict[str, list[float]] = {"head": [], "shades_of_gray": []}

    def add(method: str, metric: str, dev: str, value: float) -> None:
        rows.setdefault(method, {}).setdefault(f"{metric}_{dev}", []).append(value)

    for files in scan_scenes(root / "val", devices):
        scene = prepare_scene(files, devices, view_size=VIEW, align=False)
        frame = BlackLevel()(read_capture(files.raw))
        h, w = (n // 16 * 16 for n in frame.data.shape)
        exact = {d: render_device(frame, looks[d])[:h, :w] for d in devices}
        classical = np.clip(render_frame(frame, "default").output.data, 0, 1)[:h, :w]
        renders = {}
        for name, net in nets.items():
            _, shared, use_wb = VARIANTS[name]
            for i, d in enumerate(devices):
                out = render_scene(net, scene, 0 if shared else i, use_wb=use_wb)[:h, :w]
                renders[name, i] = out
                add(name, "psnr", d, psnr(out, exact[d]))
                add(name, "de", d, float(delta_e2000(out, exact[d]).mean()))
        if "head" in nets:
            true = scaler_rgb(torch.from_numpy(scene.color_scaler).reshape(1, 4, 1, 1))
            with torch.no_grad():
                est = nets["head"].estimate_color_scaler(torch.from_numpy(scene.packed)[None], nets["head"].embed(0))
            sog = torch.from_numpy(estimate_color_scaler(scene.packed.transpose(1, 2, 0))).reshape(1, 4, 1, 1)
            scaler_err["head"].append(float(angular_error(scaler_rgb(est), true)[0]))
            scaler_err["shades_of_gray"].append(float(angular_error(scaler_rgb(sog), true)[0]))
        for d in devices:
            add("classical", "psnr", d, psnr(classical, exact[d]))
            add("classical", "de", d, float(delta_e2000(classical, exact[d]).mean()))
        for a, b in ((0, 1), (1, 2), (0, 2)) if "full" in nets else ():
            mid = render_scene(nets["full"], scene, {a: 0.5, b: 0.5})[:h, :w]
            ra, rb = renders["full", a], renders["full", b]
            interp.append((float(delta_e2000(mid, ra).mean()), float(delta_e2000(mid, rb).mean()),
                           float(delta_e2000(ra, rb).mean())))
    table = {m: {k: float(np.mean(v)) for k, v in r.items()} for m, r in rows.items()}
    for r in table.values():
        r["psnr_mean"] = float(np.mean([r[f"psnr_{d}"] for d in devices]))
        r["de_mean"] = float(np.mean([r[f"de_{d}"] for d in devices]))
    res = {"table": table, "devices": list(devices)}
    if scaler_err["head"]:
        res["scaler_error_deg"] = {k: float(np.mean(v)) for k, v in scaler_err.items()}
    if interp:
        it = np.array(interp)
        res["interpolation"] = {"de_mid_a": float(it[:, 0].mean()), "de_mid_b": float(it[:, 1].mean()),
                                "de_a_b": float(it[:, 2].mean()),
                                "between_fraction": float(np.mean((it[:, 0] < it[:, 2]) & (it[:, 1] < it[:, 2])))}
    return res


def report(res: dict, seconds: dict[str, float]) -> str:
    """The results as a Markdown table and checks."""
    devs = res["devices"]
    t = res["table"]
    names = {"full": "MetaISP (embedding + WB)", "shared": "(a) no device embedding", "no_wb": "no WB metadata",
             "head": "no WB metadata + illuminant head", "classical": "(b) default classical pipeline"}
    head = f"| method | {devs[0]} PSNR / ΔE00 | " + " | ".join(devs[1:]) + " | mean |"
    lines = [head, "|" + "---|" * (len(devs) + 2)]
    for m in ("full", "shared", "no_wb", "head", "classical"):
        if m not in t:
            continue
        cells = [f"{t[m][f'psnr_{d}']:.2f} / {t[m][f'de_{d}']:.2f}" for d in devs]
        lines.append(f"| {names[m]} | " + " | ".join(cells) + f" | {t[m]['psnr_mean']:.2f} / {t[m]['de_mean']:.2f} |")
    lines.append("")
    if "full" in t and "shared" in t:
        gain = t["full"]["psnr_mean"] - t["shared"]["psnr_mean"]
        lines.append(f"conditioning vs one look for all: {gain:+.2f} dB (needs >= +3 dB)")
    if "interpolation" in res:
        it = res["interpolation"]
        lines.append(f"interpolation {{A: 0.5, B: 0.5}}: ΔE(mid, A) {it['de_mid_a']:.2f}, ΔE(mid, B) "
                     f"{it['de_mid_b']:.2f}, ΔE(A, B) {it['de_a_b']:.2f}; between A and B in "
                     f"{100 * it['between_fraction']:.0f}% of scene pairs")
    if "full" in t and "no_wb" in t and "head" in t:
        lost = t["full"]["psnr_mean"] - t["no_wb"]["psnr_mean"]
        back = t["head"]["psnr_mean"] - t["no_wb"]["psnr_mean"]
        lines.append(f"metadata ablation: hiding WB costs {lost:.2f} dB; the illuminant head wins back {back:.2f} dB "
                     f"({100 * back / lost if lost > 0 else float('nan'):.0f}%)")
    if "scaler_error_deg" in res:
        e = res["scaler_error_deg"]
        lines.append(f"colour scaler angular error on held-out frames: illuminant head {e['head']:.2f}°, "
                     f"shades of gray {e['shades_of_gray']:.2f}°")
    lines.append("training CPU time (one thread): " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                    help=f"optimiser steps per variant (default {DEFAULT_STEPS}, the README table; 900 for a quick run)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--head-warmup", type=int, default=HEAD_WARMUP,
                    help=f"steps training the illuminant head alone first (default {HEAD_WARMUP}; 0: none)")
    ap.add_argument("--variants", default="full,shared,no_wb,head")
    ap.add_argument("--work", type=Path, default=None, help="keep data and checkpoints here (default: a temp dir)")
    ap.add_argument("--train-only", action="store_true", help="train --variants into --work and stop")
    ap.add_argument("--eval-only", action="store_true", help="score the variants already trained in --work")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # several OpenMP threads on a busy 2-core machine spin far more than they compute
    if not (DATA / "rgb" / "kodak24").is_dir():
        raise SystemExit(f"needs the shared data at {DATA} (Kodak24 and bayer/)")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        root = work / "data"
        t0 = time.perf_counter()
        if not (root / "devices.txt").is_file():
            build_dataset(root, args.seed)
        devices = read_devices(root)
        nets, seconds = {}, {}
        if args.eval_only:
            for name in args.variants.split(","):
                nets[name] = make_net(args.config, name, len(devices), args.crop)
                nets[name].load_state_dict(torch.load(work / "runs" / name / "best.pth", weights_only=True))
                nets[name].eval()
            seconds = json.loads((work / "runs" / "seconds.json").read_text()) \
                if (work / "runs" / "seconds.json").is_file() else {}
        else:
            scenes = [prepare_scene(f, devices, view_size=VIEW) for f in scan_scenes(root / "train", devices)]
            print(f"data and alignment: {time.perf_counter() - t0:.0f} s", flush=True)
            for name in args.variants.split(","):
                t1, c1 = time.perf_counter(), time.process_time()
                nets[name] = train_variant(root, scenes, work / "runs", name, args.steps, args.crop, args.batch,
                                           args.seed, args.config, args.head_warmup)
                seconds[name] = time.process_time() - c1
                print(f"{name}: {args.steps} steps, CPU {seconds[name]:.0f} s, wall {time.perf_counter() - t1:.0f} s",
                      flush=True)
                store = work / "runs" / "seconds.json"
                old = json.loads(store.read_text()) if store.is_file() else {}
                store.write_text(json.dumps({**old, name: seconds[name]}))
        if args.train_only:
            return
        res = evaluate(root, nets)
        res["cpu_seconds"] = seconds
        res["steps"] = args.steps
        print(report(res, seconds))
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
