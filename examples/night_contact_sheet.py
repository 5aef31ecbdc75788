"""Night contact sheets: a dark, noisy scene rendered by `default` and `night-classical`, stage by stage.

Run: python examples/night_contact_sheet.py [OUTPUT_DIR] [--size H W] [--stops EV]

For each scene (the synthetic ColorChecker night scene with sodium / LED /
neon lamps; the real D750 Bayer crop and the NTIRE 2023 night photo when
../shared/data is present) it writes ``<scene>.png``: a first row of
before/after — the noisy RAW, ``default`` pushed by the known under-exposure,
``night-classical``, and ``night-classical`` on the noise-free scene (the
truth) — then every intermediate of the ``night-classical`` run. It prints
the PSNR of both presets against their own noise-free render.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import ispkit
from ispkit.debug import contact_sheet, frame_preview
from ispkit.io.night import bayer_night_scene, photo_night_scene, synthetic_night_scene
from ispkit.metrics import psnr
from ispkit.stages import Exposure

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def scenes(size: tuple[int, int], stops: float) -> list:
    out = [synthetic_night_scene(stops=stops, size=size, seed=0)]
    rose = DATA / "bayer" / "d750_rose_768x512_rggb.raw"
    if rose.exists():
        out.append(bayer_night_scene(rose, stops=stops, seed=0))
    photo = DATA / "night" / "nightimaging23_test.jpg"
    if photo.exists():
        out.append(photo_night_scene(photo, stops=stops - 1.5, size=(size[0] * 3 // 2 // 2 * 2, size[1] * 3 // 2 // 2 * 2),
                                     seed=0))
    return out


def sheet_for(scene, night: ispkit.Pipeline, default: ispkit.Pipeline) -> tuple[np.ndarray, float, float]:
    run = night.run(scene.frame, keep_intermediates=True)
    ours = np.clip(run.output.data, 0, 1)
    truth = np.clip(night(scene.clean).data, 0, 1)
    pushed = np.clip(default(scene.frame).data, 0, 1)
    previews = {
        f"RAW, {scene.stops:g} EV under": frame_preview(scene.frame),
        "default, pushed": pushed,
        "night-classical": ours,
        "night-classical, no noise (truth)": truth,
    }
    previews.update({f"{i}. {name}": frame_preview(f) for i, (name, f) in enumerate(run.intermediates.items(), 1)
                     if name != "input"})
    gain = run.output.meta.extra.get("exposure_gain")
    print(f"  exposure gain {gain:.1f} (limit: {run.output.meta.extra.get('exposure_gain_limit')})")
    return (contact_sheet(previews, thumb_width=320, columns=4),
            psnr(pushed, np.clip(default(scene.clean).data, 0, 1)), psnr(ours, truth))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default="night-sheets", type=Path)
    ap.add_argument("--size", nargs=2, type=int, default=(256, 384), metavar=("H", "W"))
    ap.add_argument("--stops", type=float, default=6.0)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    night = ispkit.load_preset("night-classical")
    for scene in scenes(tuple(args.size), args.stops):
        default = ispkit.load_preset("default").replace("exposure", Exposure(ev=scene.stops))
        print(scene.name)
        sheet, p_default, p_night = sheet_for(scene, night, default)
        path = ispkit.write_image(sheet.astype(np.float32) / 255.0, args.out_dir / f"{scene.name}.png", bit_depth=8)
        print(f"  PSNR vs noise-free render: default {p_default:.1f} dB, night-classical {p_night:.1f} dB -> {path}")


if __name__ == "__main__":
    main()
