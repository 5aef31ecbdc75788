"""Night presets on scenes with known truth, and night-classical speed against rawpy, in one run.

Run: ``python benchmarks/bench_night.py [--size 512 768] [--runs 3] [--speed-size 3000 4000] [--no-speed | --speed-only]``

Quality. Scenes from :mod:`ispkit.io.night`: the synthetic ColorChecker
night scene (illuminant A, sodium / LED / neon / cyan lamps), the real D750
Bayer crop with the same lamps, and the two NTIRE night photos re-mosaiced to
RAW with their JSON matrices and noise profiles — darkened 4–7 EV with
Poisson-Gaussian noise from the NTIRE 2023 (Canon EOS 7D) noise profile (the
photos: their own). For each preset:

* PSNR / SSIM of the render of the noisy frame against the same preset's
  render of the noise-free frame with the same metadata (so the score is
  what the noise did; the issue's definition);
* "PSNR ideal": against the noise-free frame rendered without the
  denoising stages (``bayer_denoise``, ``chroma_denoise``) — this one also
  charges the denoisers for the clean detail and colour edges they smear;
* ΔE00 of the grey patches (mean colour of each, against the grey of the
  same L*; "no cast") — synthetic scenes only;
* ΔE00 of the clipped lamp cores against neutral (mean over the pixels).

``default`` is pushed by the known under-exposure (``exposure.ev = stops``),
``night-classical`` as shipped, ``night`` as shipped with no weights
available (its classical fallbacks) when that preset exists.

Speed. A 12 MP RGGB DNG (tiled synthetic capture), read and rendered to
8-bit by ``ispkit.render(path, "night-classical", bit_depth=8)`` against
``rawpy.imread(path).postprocess()`` (LibRaw AHD, its default; no denoise),
medians of ``--runs`` after a warm-up, in the same process. Also the
per-stage split of one night-classical run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np

from _common import make_dng, median_time

warnings.filterwarnings("ignore")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def scenes(size: tuple[int, int]) -> list:
    from ispkit.io.night import bayer_night_scene, photo_night_scene, synthetic_night_scene

    out = [synthetic_night_scene(stops=s, size=size, seed=11) for s in (4.0, 5.0, 6.0, 7.0)]
    rose = DATA / "bayer" / "d750_rose_768x512_rggb.raw"
    if rose.exists():
        out += [bayer_night_scene(rose, stops=s, seed=12) for s in (5.0, 6.0)]
    for name in ("nightimaging22_IMG_2304", "nightimaging23_test"):
        jpg = DATA / "night" / f"{name}.jpg"
        if jpg.exists():
            out += [photo_night_scene(jpg, stops=s, size=(432, 650), seed=13) for s in (4.0, 5.0)]
    if len(out) == 4:
        print(f"(no {DATA}: synthetic scenes only)")
    return out


def presets(stops: float) -> dict:
    import ispkit
    from ispkit.presets import list_presets
    from ispkit.stages import Exposure

    out = {"default (pushed)": ispkit.load_preset("default").replace("exposure", Exposure(ev=stops)),
           "night-classical": ispkit.load_preset("night-classical")}
    if "night" in list_presets():
        try:
            out["night (no weights)"] = ispkit.load_preset("night")
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            print(f"note: preset 'night' does not load here ({type(exc).__name__}: {exc}); skipped")
    return out


def without_denoising(pipe):
    for name, stage in zip(pipe.names, pipe.stages):
        if stage.type_name in ("bayer_denoise", "chroma_denoise"):
            pipe = pipe.remove(name)
    return pipe


def score(pipe, scene) -> tuple[float, float, float, float, float]:
    from ispkit.metrics import neutral_delta_e, psnr, ssim

    out = np.clip(pipe(scene.frame).data, 0, 1)
    ref = np.clip(pipe(scene.clean).data, 0, 1)
    ideal = psnr(out, np.clip(without_denoising(pipe)(scene.clean).data, 0, 1))
    grey = float("nan")
    if scene.neutral_boxes:
        greys = np.array([out[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0) for y0, y1, x0, x1 in scene.neutral_boxes[:4]])
        grey = float(neutral_delta_e(greys).mean())
    lamp = float(neutral_delta_e(out[scene.lamp_mask]).mean()) if scene.lamp_mask.any() else float("nan")
    return psnr(out, ref), ssim(out, ref), ideal, grey, lamp


def quality(size: tuple[int, int]) -> None:
    from ispkit.presets import list_presets

    if "night" not in list_presets():
        print("note: no 'night' preset in this tree yet; only default and night-classical are scored")
    print(f"{'scene':30s} {'preset':18s} {'PSNR dB':>8s} {'SSIM':>6s} {'PSNR ideal':>10s} {'ΔE grey':>8s} "
          f"{'ΔE lamps':>9s}")
    gains: dict[str, list[float]] = {}
    for scene in scenes(size):
        rows = {name: score(pipe, scene) for name, pipe in presets(scene.stops).items()}
        base = rows["default (pushed)"][0]
        for name, (p, s, ideal, g, lmp) in rows.items():
            print(f"{scene.name:30s} {name:18s} {p:8.2f} {s:6.3f} {ideal:10.2f} {g:8.2f} {lmp:9.2f}")
            if name != "default (pushed)":
                gains.setdefault(name, []).append(p - base)
    for name, g in gains.items():
        print(f"PSNR gain of {name} over default (pushed): median {statistics.median(g):+.1f} dB, "
              f"min {min(g):+.1f} dB over {len(g)} scenes")


def speed(h: int, w: int, runs: int) -> None:
    import rawpy

    import ispkit
    from ispkit.io import read_raw

    pipe = ispkit.load_preset("night-classical")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_dng(Path(tmp) / "night.dng", h, w)

        def ahd():
            with rawpy.imread(str(path)) as r:
                r.postprocess()

        t_ahd = median_time(ahd, runs)
        t_ours = median_time(lambda: ispkit.render(path, pipe, bit_depth=8), runs)
        print(f"\n{h * w / 1e6:.0f} MP DNG, read -> 8-bit, median of {runs} (load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"rawpy postprocess() (AHD)          {t_ahd * 1e3:8.0f} ms")
        print(f"ispkit night-classical             {t_ours * 1e3:8.0f} ms")
        print(f"RATIO night-classical / rawpy AHD  {t_ours / t_ahd:8.2f}x  (target <= 2)")
        res = pipe.run(read_raw(path))
        total = sum(res.timings.values())
        print("per stage: " + ", ".join(f"{k} {v * 1e3:.0f} ms ({100 * v / total:.0f} %)"
                                        for k, v in res.timings.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", nargs=2, type=int, default=(512, 768), metavar=("H", "W"))
    ap.add_argument("--speed-size", nargs=2, type=int, default=(3000, 4000), metavar=("H", "W"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="skip the quality table")
    args = ap.parse_args()
    if not args.speed_only:
        quality(tuple(args.size))
    if not args.no_speed:
        speed(*args.speed_size, args.runs)


if __name__ == "__main__":
    main()
