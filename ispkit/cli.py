"""The ``ispkit`` command line: demo, render, batch, info, stages, models, presets, train, evaluate.

Bad input exits non-zero with one clear line on stderr (a traceback only
with ``--verbose``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, ISPError, ParameterError

__all__ = ["main"]

EXIT_ERROR = 2


def _parse_value(text: str) -> Any:
    """Parse the value of ``--set stage.param=value`` as TOML, falling back to a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parse_sets(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected stage.param=value (e.g. demosaic.method=menon2007)")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


def _stage_overrides(args: argparse.Namespace, preset: Any) -> dict[str, Any]:
    """``--set`` pairs, plus ``NODE.random_weights=true`` for every learned stage with ``--allow-random-weights``.

    The pipeline is built here once, so a bad ``--set`` (e.g. a weights file
    that does not exist) fails before any file is read; so does a model stage
    given no weights at all without ``--allow-random-weights``.
    """
    from .pipeline.models import require_weights
    from .render import build_pipeline

    sets = _parse_sets(args.set or [])
    pipe = build_pipeline(preset, overrides=sets)
    if getattr(args, "allow_random_weights", False):
        sets.update({f"{name}.random_weights": True for name, stage in pipe
                     if "random_weights" in stage.param_names()})
        return sets
    for name, stage in pipe:  # a model stage given no weights refuses now, once, not on every file
        if getattr(stage, "weights", "") is not None or getattr(stage, "random_weights", False):
            continue
        if hasattr(stage, "weights_path"):
            stage.weights_path()
        elif getattr(stage, "learned_model", None):  # a classical stage running a learned method
            require_weights(stage.learned_model, None, random_weights=False, where=f"stage {name!r}")
    return sets


def _cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .io.dng import write_dng
    from .io.image import write_image
    from .io.synthetic import synthesize_capture
    from .metrics import colorchecker_delta_e
    from .render import render_frame

    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    capture = synthesize_capture(illuminant=args.illuminant, seed=args.seed)
    report = None
    if args.debug:
        from .render import build_pipeline
        from .report import record_run
        report = record_run(build_pipeline(args.preset), capture.frame, source="ispkit demo (synthetic)")
        result = report.result
    else:
        result = render_frame(capture.frame, args.preset)
    image_path = write_image(result.output, out_dir / "demo.png", bit_depth=8)
    frame = capture.frame
    m = frame.meta
    dng_path = None
    if m.color_matrix1 is not None:
        dng_path = write_dng(
            out_dir / "demo_sample.dng", frame.data.round().astype("uint16"), m.cfa_pattern,
            black_level=m.black_level, white_level=m.white_level,
            color_matrix1=m.color_matrix1, calibration_illuminant1=m.calibration_illuminant1 or 21,
            as_shot_neutral=1.0 / m.wb_gains if m.wb_gains is not None else None,
            make=m.make or "ispkit", model=m.model or "Synthetic",
            baseline_exposure=m.extra.get("baseline_exposure"),
        )
    if report is not None:
        from .report import write_previews, write_report
        write_report(report, out_dir / "debug" / "report.html")
        write_previews(report, out_dir / "debug")
    de = colorchecker_delta_e(result.output.data, capture)
    de_matched = colorchecker_delta_e(result.output.data, capture, match_exposure=True)
    dt = time.perf_counter() - t0
    print(f"ispkit demo: synthetic {frame.width}x{frame.height} {m.cfa_pattern} capture of a ColorChecker "
          f"under {args.illuminant}, rendered with preset {args.preset!r} in {dt:.2f} s")
    print(f"  image:  {image_path.resolve()}")
    if dng_path is not None:
        print(f"  RAW:    {Path(dng_path).resolve()}  (try: ispkit render {dng_path} -o out.png)")
    if args.debug:
        print(f"  debug:  {(out_dir / 'debug' / 'report.html').resolve()}")
    print(f"  ColorChecker CIEDE2000 vs its true D65 colours: mean {de.mean():.2f}, "
          f"median {float(np.median(de)):.2f}, max {de.max():.2f} (24 patches; exposure-matched mean "
          f"{de_matched.mean():.2f})")
    from .render import build_pipeline
    pipe = build_pipeline(args.preset)
    tone = [name for name, st in pipe.nodes if st.type_name == "sigmoid_tone_map"]
    if tone:  # a display transform changes the colours on purpose: score the colour pipeline before it too
        colorimetric = pipe
        for name in tone:
            colorimetric = colorimetric.remove(name)
        de_c = colorchecker_delta_e(colorimetric.run(capture.frame).output.data, capture)
        print(f"  without the display transform ({', '.join(tone)}): mean {de_c.mean():.2f}, "
              f"median {float(np.median(de_c)):.2f}, max {de_c.max():.2f}")
    return 0


def _capture_files(source: Path) -> set[Path]:
    """The files a capture is read from: the path given and its same-stem PNG / RAW / JSON partners."""
    files = {source}
    files.update(source.with_suffix(s) for s in (".png", ".raw", ".json") if source.with_suffix(s).is_file())
    return {f.resolve() for f in files}


def _render_output(source: str, output: str | None) -> Path:
    """The output path of ``ispkit render``: ``-o``, else ``NAME.png`` here — never a file of the capture itself.

    An NTIRE pair or a sidecar mosaic is itself a ``.png``: the default then
    becomes ``NAME_ispkit.png``, and an explicit ``-o`` naming an input file is refused.
    """
    inputs = _capture_files(Path(source))
    if output:
        out = Path(output)
        if out.resolve() in inputs:
            raise ParameterError(f"-o/--output: {output!r} is a file of the input capture {source!r}; writing "
                                 "there would destroy the input — choose another name")
        return out
    out = Path(Path(source).with_suffix(".png").name)
    return Path(f"{Path(source).stem}_ispkit.png") if out.resolve() in inputs else out


def _cmd_render(args: argparse.Namespace) -> int:
    from .io.capture import read_capture
    from .io.image import check_image_path, write_image
    from .render import build_pipeline

    if args.weights_dir:  # weights="auto" stages look here (set before the pipeline is built)
        from .pipeline.models import WEIGHTS_ENV

        if not Path(args.weights_dir).is_dir():
            raise ConfigError(f"--weights-dir {args.weights_dir}: no such directory (it should hold <model>.pth "
                              f"files, e.g. fc4.cwp.pth; `ispkit models` lists the names)")
        os.environ[WEIGHTS_ENV] = str(Path(args.weights_dir).resolve())
    preset: Any = args.config if args.config else args.preset
    pipe = build_pipeline(preset, overrides=_stage_overrides(args, preset))
    out = _render_output(args.input, args.output)
    # refuse an unwritable format before the render, not after it
    check_image_path(out, args.bit_depth, "-o/--output", folder_must_exist=False)
    frame = read_capture(args.input)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = None
    if args.debug_dir:  # stage by stage, keeping only small previews (one full-size frame alive at a time)
        from .report import record_run
        report = record_run(pipe, frame, source=str(args.input))
        result = report.result
        path = write_image(result.output, out, bit_depth=args.bit_depth, quality=args.quality)
    elif args.timings:
        result = pipe.run(frame)
        path = write_image(result.output, out, bit_depth=args.bit_depth, quality=args.quality)
    else:  # straight to integer codes (quantised inside the fused kernel for 8-bit)
        from .render import render
        codes = render(frame, pipe, bit_depth=args.bit_depth)
        path = write_image(codes, out, bit_depth=args.bit_depth, quality=args.quality, orientation=1)
    print(f"{args.input} -> {path} ({(time.perf_counter() - t0) * 1000:.0f} ms, preset {pipe.name!r})")
    if args.timings:
        for name, sec in result.timings.items():
            print(f"  {name:<24s} {sec * 1000:8.1f} ms")
    if report is not None:
        from .report import write_previews, write_report
        page = write_report(report, Path(args.debug_dir) / "report.html")
        files = write_previews(report, args.debug_dir)
        print(f"  debug: {page} (one page: previews, histograms, timings, parameters, curves) "
              f"and {len(files)} preview images")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import render_folder

    overrides = _stage_overrides(args, args.config or args.preset)
    summary = render_folder(
        args.input, args.output, preset=args.config or args.preset, fmt=args.format, workers=args.workers,
        executor=args.executor, scheduler=args.scheduler, weights_dir=args.weights_dir,
        overwrite=args.overwrite, progress="log" if args.quiet else True, overrides=overrides,
        threads_per_worker=args.threads_per_worker,
    )
    s = summary
    print(f"ispkit batch: {s.rendered} rendered, {s.skipped} skipped (already done), {s.failed} failed "
          f"in {s.seconds:.1f} s -> {args.output}", file=sys.stderr)
    print(f"  manifest: {s.manifest}\n  gallery:  {s.gallery}", file=sys.stderr)
    if s.failures:
        print(s.table(), file=sys.stderr)
    return 1 if s.failed else 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from .profile import make_profile

    spec = args.hue_sat_map or ("90x30" if args.sensitivities else "none")
    dims: tuple[int, ...] | None = None
    if spec.lower() != "none":
        try:
            dims = tuple(int(v) for v in spec.lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) != 2:
            raise ConfigError(f"--hue-sat-map {spec!r}: expected HUExSAT divisions (e.g. 90x30) or 'none'")
    print(make_profile(args.output, sensitivities=args.sensitivities, chart=args.chart, boxes=args.boxes,
                       reference=args.reference, illuminants=tuple(args.illuminants.split(",")), dims=dims))  # type: ignore[arg-type]
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .io.capture import read_capture
    from .io.raw import describe

    frame = read_capture(args.input)
    info = describe(frame)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if isinstance(v, list) and v and isinstance(v[0], list):
            v = "; ".join(" ".join(f"{x:.4g}" for x in row) for row in v)
        elif isinstance(v, list):
            v = " ".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in v)
        print(f"{k:<{width}}  {v}")
    return 0


def _first_paragraph(doc: str | None) -> str:
    import inspect

    text = inspect.cleandoc(doc or "")
    return " ".join(text.split("\n\n", 1)[0].split())


def _cmd_stages(args: argparse.Namespace) -> int:
    from .pipeline import get_stage_class, stage_names

    if args.name:
        cls = get_stage_class(args.name)
        print(f"{cls.type_name}  ({cls.__module__}.{cls.__name__}, version {cls.version})")
        print(f"  {_first_paragraph(cls.__doc__)}")
        print("parameters:")
        for prm in cls.parameters():
            default = "omitted" if prm["default"] is None else json.dumps(prm["default"])
            print(f"  {prm['name']:<14s} {prm['type']}; default {default}")
            if prm["allowed"]:
                print(f"  {'':<14s} one of: {', '.join(prm['allowed'])}")
        return 0
    for name in stage_names():
        cls = get_stage_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        params = ", ".join(cls.param_names())
        print(f"{name:<24s} {cls.__name__:<24s} {doc}")
        if args.verbose:
            print(f"{'':<24s} params: {params}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .neural import get_model_entry, list_models

    for name in list_models():
        w = get_model_entry(name).weights
        c = w.contract
        print(f"{name:<26s} licence: {w.license}")
        print(f"{'':<26s} input: {c.domain}, {c.in_channels} ch ({c.channel_order}), size multiple "
              f"{c.size_multiple}, scale {c.scale:g}; {c.normalization}")
        if args.verbose:
            print(f"{'':<26s} paper: {w.paper}")
            print(f"{'':<26s} weights: {w.url}")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from .presets import list_presets, load_preset, preset_description, preset_text

    width = max([12] + [len(n) for n in list_presets()])
    for name in list_presets():
        if args.show:
            if name == args.show:  # as shipped: description and comments kept, a ready --config copy
                print(preset_text(name), end="")
            continue
        pipe = load_preset(name)
        print(f"{name:<{width}s} {' -> '.join(pipe.names)}")
        desc = preset_description(name)
        if desc:
            print(f"{'':<{width}s} {desc}")
    if args.show and args.show not in list_presets():
        from .errors import unknown_name
        raise unknown_name("preset", args.show, list_presets())
    return 0


def _one_line_warning(command: str) -> Any:
    """A ``warnings.showwarning`` that prints ``ispkit CMD: warning: message`` (no source file or line)."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = " ".join(str(message).split())
        print(f"ispkit {command}: warning: {text}", file=file or sys.stderr)
    return show


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ispkit", description="Hybrid classical + neural camera ISP.")
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks and details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="render the bundled synthetic sample and report its colour accuracy")
    d.add_argument("-o", "--output", default="ispkit-demo", help="output folder (default ./ispkit-demo)")
    d.add_argument("--preset", default="default")
    d.add_argument("--illuminant", default="D65", help="scene illuminant: D65, A, F2 … (default D65)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--debug", action="store_true", help="also write debug/report.html and stage previews")
    d.set_defaults(func=_cmd_demo)

    r = sub.add_parser("render", help="render a RAW file to PNG/JPEG/TIFF")
    r.add_argument("input")
    r.add_argument("-o", "--output", help="output image (.png .jpg .tif); default: input name .png")
    r.add_argument("--preset", default="default", help="preset name (see `ispkit presets`)")
    r.add_argument("--config", help="pipeline TOML file (instead of --preset)")
    r.add_argument("--set", action="append", metavar="STAGE.PARAM=VALUE",
                   help="override a parameter, e.g. --set demosaic.method=menon2007 (repeatable)")
    r.add_argument("--bit-depth", type=int, default=8, choices=(8, 16))
    r.add_argument("--quality", type=int, default=95, help="JPEG quality")
    r.add_argument("--debug-dir", help="write report.html (every stage: preview, histogram, timing, parameters, "
                                      "tone and white-balance plots) and small previews here")
    r.add_argument("--timings", action="store_true", help="print per-stage timings")
    r.add_argument("--weights-dir", metavar="DIR",
                   help="model weights folder for weights='auto' stages (<model>.pth; same as ISPKIT_WEIGHTS=DIR)")
    r.add_argument("--allow-random-weights", action="store_true",
                   help="let learned stages without weights run on random initial weights (meaningless output, "
                        "warned and recorded); without it they refuse to run")
    r.set_defaults(func=_cmd_render)

    b = sub.add_parser("batch", help="render every RAW under a folder (workers or Dask; manifest, resume, gallery)")
    b.add_argument("input", metavar="IN_DIR")
    b.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    b.add_argument("--preset", default="default", help="preset name or pipeline TOML path")
    b.add_argument("--config", help="pipeline TOML file (instead of --preset)")
    b.add_argument("--set", action="append", metavar="STAGE.PARAM=VALUE", help="override a parameter (repeatable)")
    b.add_argument("--format", default="jpg", choices=("jpg", "png", "png16", "tif16"))
    b.add_argument("--workers", type=int, help="worker processes (default: the CPU count)")
    b.add_argument("--threads-per-worker", type=int, metavar="N",
                   help="threads each local worker's kernels use (default: the CPU count / workers)")
    b.add_argument("--executor", default="local", choices=("local", "dask"))
    b.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (default: a LocalCluster)")
    b.add_argument("--weights-dir", metavar="DIR", help="model weights folder (ISPKIT_WEIGHTS in every worker)")
    b.add_argument("--overwrite", action="store_true", help="re-render outputs already done with this pipeline")
    b.add_argument("--quiet", action="store_true", help="plain log lines instead of a progress bar")
    b.add_argument("--allow-random-weights", action="store_true",
                   help="let learned stages without weights run on random initial weights (warned, recorded in "
                        "the manifest's overrides)")
    b.set_defaults(func=_cmd_batch)

    pf = sub.add_parser("profile", help="build a DCP camera profile (ForwardMatrix + HueSatMap) from spectral "
                                        "sensitivities or a RAW of a ColorChecker")
    src = pf.add_mutually_exclusive_group(required=True)
    src.add_argument("--sensitivities", metavar="CAMERA", help='a camera of colour.MSDS_CAMERA_SENSITIVITIES, '
                                                               'e.g. "Nikon 5100 (NPL)"')
    src.add_argument("--chart", metavar="RAW", help="a RAW (DNG …) of a 24-patch ColorChecker")
    pf.add_argument("-o", "--output", required=True, help="the .dcp to write")
    pf.add_argument("--boxes", default="synthetic", help="with --chart: JSON file of 24 [y0, y1, x0, x1] patch boxes "
                                                         "(row-major from dark skin), or 'synthetic' (the layout of "
                                                         "ispkit's synthetic chart; default)")
    pf.add_argument("--reference", metavar="JSON", help="with --chart: the chart's 24 measured [L, a, b] (D50) "
                                                        "values (default: colour-science's ColorChecker under D50)")
    pf.add_argument("--illuminants", default="A,D55,F",
                    help="calibration illuminants: three (default A,D55,F — a DNG 1.6 triple-illuminant profile "
                         "fitted over a broad set of standard lights; F = EXIF 'Fluorescent') or two of A, D50, D55, "
                         "D65, D75, F, CWF, or one light such as F2")
    pf.add_argument("--hue-sat-map", default=None, metavar="HxS",
                    help="HueSatMap divisions, or 'none' (default 90x30 with --sensitivities, none with --chart)")
    pf.set_defaults(func=_cmd_profile)

    i = sub.add_parser("info", help="print a RAW file's metadata")
    i.add_argument("input")
    i.add_argument("--json", action="store_true", help="machine-readable JSON")
    i.set_defaults(func=_cmd_info)

    s = sub.add_parser("stages", help="list the registered stages, or describe one (ispkit stages demosaic)")
    s.add_argument("name", nargs="?", help="a stage type: print its parameters, types, defaults and allowed values")
    s.set_defaults(func=_cmd_stages)

    m = sub.add_parser("models", help="list the model zoo with licences and input contracts")
    m.set_defaults(func=_cmd_models)

    pr = sub.add_parser("presets", help="list presets (or --show NAME to print one as TOML)")
    pr.add_argument("--show", metavar="NAME")
    pr.set_defaults(func=_cmd_presets)

    from ._train_commands import add_train_commands
    add_train_commands(sub)  # train, evaluate
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ispkit`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_ERROR
    import warnings
    with warnings.catch_warnings():  # restores the caller's warning settings afterwards
        if not args.verbose:
            warnings.filterwarnings("ignore", message=".*Matplotlib.*")
            warnings.showwarning = _one_line_warning(args.command)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; ISPError and OS errors become one line on stderr and exit code 2."""
    try:
        import ispkit  # noqa: F401  (registers the stages)
        return int(args.func(args) or 0)
    except ISPError as exc:
        if args.verbose:
            raise
        print(f"ispkit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"ispkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`ispkit models | head`): stop quietly
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if args.verbose:
            raise
        print(f"ispkit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
