"""A single-file HTML report of what a pipeline did to one capture (``ispkit render --debug-dir``).

The pipeline runs stage by stage with a hook that keeps only what the page
shows — a small preview, a histogram and statistics of each stage's output,
its parameters and time — so one stage's full-size data is alive at a time
(the old full-size PNG per stage took 10 s and 1.8 GB for a 9 MP file).
Pointwise RGB stages that bend a neutral ramp (tone curves, OETFs) get their
transfer curve plotted; stages that set the scene illuminant get a
white-balance chromaticity plot with the camera's Planckian locus when the
frame carries a camera matrix.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .debug import contact_sheet, frame_preview
from .frame import Domain, Frame
from .io._files import atomic_write
from .pipeline import Pipeline, RunResult, Stage

__all__ = ["StageRecord", "PipelineReport", "record_run", "write_report", "write_previews", "PREVIEW_WIDTH"]

#: Width in pixels of each stage preview.
PREVIEW_WIDTH = 480
_HIST_BINS = 64
_RGB_DOMAINS = (Domain.CAMERA_RGB, Domain.LINEAR_RGB, Domain.DISPLAY_RGB)
_LOCUS_CCTS = (2000, 2500, 3000, 3500, 4000, 5000, 6500, 8000, 10000, 12000)


@dataclass
class StageRecord:
    """What the report keeps of one stage's run (small: no full-size data)."""

    name: str
    type_name: str
    params: dict[str, Any]
    seconds: float
    domain: str
    shape: tuple[int, ...]
    preview: np.ndarray  # uint8 h×w×3
    histogram: np.ndarray  # (channels, bins) counts over [0, 1)
    stats: dict[str, float]
    curve: tuple[np.ndarray, np.ndarray] | None = None
    illuminant: dict[str, Any] | None = None


@dataclass
class PipelineReport:
    """Everything :func:`write_report` draws, gathered while the pipeline ran."""

    source: str
    pipeline: str
    stages: list[StageRecord] = field(default_factory=list)
    result: RunResult | None = None


# -- what one stage's output looks like ------------------------------------------------
def _normalised_small(frame: Frame, width: int) -> np.ndarray:
    """A ≤ ``width`` wide H'×W'×C float32 copy of the frame: mosaics binned 2×2 and scaled to [0, 1]."""
    d = frame.data
    if frame.domain is Domain.RAW_MOSAIC:
        m = frame.meta
        h, w = (d.shape[0] // 2) * 2, (d.shape[1] // 2) * 2
        planes = [np.asarray(d[i:h:2, j:w:2], dtype=np.float32) for i in (0, 1) for j in (0, 1)]
        from .frame import cfa_color_indices
        idx = cfa_color_indices(m.cfa_pattern or "RGGB").reshape(-1)
        black = np.broadcast_to(np.asarray(m.black_level, np.float32), (4,))
        raw_counts = float(m.white_level) > 1.5 or float(black.max()) > 0
        scale = [max(float(m.white_level) - float(b), 1e-6) if raw_counts else 1.0 for b in black]
        off = black if raw_counts else np.zeros(4, np.float32)
        chans = []
        for c in range(3):
            sel = [(p - off[k]) / scale[k] for k, p in enumerate(planes) if idx[k] == c]
            chans.append(sum(sel) / len(sel))
        small = np.stack(chans, axis=-1)
    elif frame.domain is Domain.RAW_PACKED:
        small = np.stack([d[..., 0], 0.5 * (d[..., 1] + d[..., 2]), d[..., 3]], axis=-1).astype(np.float32)
    else:
        small = np.asarray(d, dtype=np.float32)
    if small.ndim == 2:
        small = small[..., None]
    h, w = small.shape[:2]
    if w > width:
        small = cv2.resize(np.ascontiguousarray(small), (width, max(1, round(h * width / w))),
                           interpolation=cv2.INTER_AREA)
        small = small.reshape(small.shape[0], small.shape[1], -1)
    return np.nan_to_num(small, nan=0.0, posinf=1.0, neginf=0.0)


def _preview(small: np.ndarray, domain: Domain) -> np.ndarray:
    rgb = np.repeat(small, 3, axis=2) if small.shape[2] == 1 else small[..., :3]
    shown = Domain.DISPLAY_RGB if domain is Domain.DISPLAY_RGB else Domain.LINEAR_RGB
    return (frame_preview(Frame(np.ascontiguousarray(rgb), shown)) * 255 + 0.5).astype(np.uint8)


def _stats(frame: Frame) -> dict[str, float]:
    d = frame.data
    finite = np.isfinite(d)
    n_bad = int(d.size - np.count_nonzero(finite))
    v = d if n_bad == 0 else d[finite]
    if v.size == 0:
        return {"min": math.nan, "max": math.nan, "mean": math.nan, "clipped": 0.0, "nonfinite": n_bad}
    top = 1.0 if frame.domain is not Domain.RAW_MOSAIC or float(frame.meta.white_level) <= 1.5 \
        else float(frame.meta.white_level)
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean(dtype=np.float64)),
            "clipped": float(np.count_nonzero(v >= top)) / v.size, "nonfinite": n_bad}


def _histogram(small: np.ndarray) -> np.ndarray:
    return np.stack([np.histogram(np.clip(small[..., c], 0, 1), bins=_HIST_BINS, range=(0.0, 1.0))[0]
                     for c in range(small.shape[2])])


def _curve(stage: Stage, domain: Domain, meta: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The transfer curve of a pointwise RGB stage on a neutral ramp, when it bends it."""
    spec = stage.spec
    if not spec.pointwise or domain not in _RGB_DOMAINS or domain not in spec.in_domains:
        return None
    x = np.linspace(0.0, 1.0, 129, dtype=np.float32)
    ramp = Frame(np.repeat(x[None, :, None], 3, axis=2), domain, meta)
    try:
        y = np.asarray(stage(ramp).data, dtype=np.float64)[0].mean(axis=1)
    except Exception:  # a stage that needs more than a ramp (metadata, size) simply gets no plot
        return None
    if not np.all(np.isfinite(y)):
        return None
    fit = np.polyval(np.polyfit(x, y, 1), x)
    return (x.astype(np.float64), y) if np.abs(y - fit).max() > 0.01 * max(np.ptp(y), 1e-6) else None


def _illuminant(stage: Stage, before: Any, after: Any) -> dict[str, Any] | None:
    """Estimated and as-shot illuminants (camera RGB) when the stage set the scene illuminant."""
    if "illuminant_rgb" not in stage.spec.provides or after.illuminant_rgb is None:
        return None
    out: dict[str, Any] = {"estimated": np.asarray(after.illuminant_rgb, dtype=np.float64)}
    if before.wb_gains is not None:
        out["as_shot"] = 1.0 / np.asarray(before.wb_gains, dtype=np.float64)
    if before.cam_to_xyz is not None:
        from .stages.white_balance import illuminant_rgb_from_cct
        try:
            out["locus"] = [(t, illuminant_rgb_from_cct(t, cam_to_xyz=before.cam_to_xyz)) for t in _LOCUS_CCTS]
        except Exception:  # a singular or odd matrix: the plot goes without a locus
            pass
    return out


def record_run(pipe: Pipeline, frame: Frame, *, source: str = "", preview_width: int = PREVIEW_WIDTH
               ) -> PipelineReport:
    """Run ``pipe`` stage by stage on ``frame``, keeping a small record of each stage for the report.

    Returns the :class:`PipelineReport` (its ``result`` holds the output frame
    and the per-stage timings; no intermediates are kept).
    """
    report = PipelineReport(source=source or str(frame.meta.source or "frame"), pipeline=pipe.name)
    report.stages.append(_record("input", None, frame, 0.0, None, preview_width))
    state = {"domain": frame.domain, "meta": frame.meta}

    def hook(name: str, stage: Stage, out: Frame, seconds: float) -> None:
        report.stages.append(_record(name, stage, out, seconds, state, preview_width))
        state["domain"], state["meta"] = out.domain, out.meta

    report.result = pipe.run(frame, hooks=[hook], fuse=False)
    return report


def _record(name: str, stage: Stage | None, out: Frame, seconds: float, before: dict[str, Any] | None,
            width: int) -> StageRecord:
    small = _normalised_small(out, width)
    rec = StageRecord(
        name=name, type_name=stage.type_name if stage else "input",
        params=stage.to_config()["params"] if stage else {}, seconds=seconds, domain=out.domain.value,
        shape=tuple(out.data.shape), preview=_preview(small, out.domain), histogram=_histogram(small),
        stats=_stats(out))
    if stage is not None and before is not None:
        rec.curve = _curve(stage, before["domain"], before["meta"])
        rec.illuminant = _illuminant(stage, before["meta"], out.meta)
    return rec


# -- drawing ---------------------------------------------------------------------------
def _png_uri(img: np.ndarray) -> str:
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    return "data:image/png;base64," + base64.b64encode(enc.tobytes()).decode("ascii") if ok else ""


def _svg(body: str, w: int = 240, h: int = 120, title: str = "") -> str:
    t = f"<title>{html.escape(title)}</title>" if title else ""
    return (f'<svg class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">{t}'
            f'<rect width="{w}" height="{h}" fill="#1c1c1c"/>{body}</svg>')


def _histogram_svg(hist: np.ndarray) -> str:
    colors = ("#ff5a5a", "#5ad75a", "#5a8cff") if hist.shape[0] == 3 else ("#dddddd",)
    peak = max(float(hist.max()), 1.0)
    lines = []
    for counts, color in zip(hist, colors):
        pts = " ".join(f"{i * 240 / (_HIST_BINS - 1):.1f},{118 - 110 * math.sqrt(c / peak):.1f}"
                       for i, c in enumerate(counts))
        lines.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.2" opacity="0.9"/>')
    return _svg("".join(lines), title="histogram (square-root counts, 0 to 1)")


def _curve_svg(curve: tuple[np.ndarray, np.ndarray]) -> str:
    x, y = curve
    top = max(float(y.max()), 1.0)
    pts = " ".join(f"{4 + 152 * a:.1f},{156 - 152 * b / top:.1f}" for a, b in zip(x, y))
    grid = '<line x1="4" y1="156" x2="156" y2="4" stroke="#555" stroke-dasharray="3 3"/>'
    return _svg(grid + f'<polyline points="{pts}" fill="none" stroke="#ffd25a" stroke-width="1.6"/>',
                160, 160, title="transfer curve of a neutral ramp (input 0 to 1 → output)")


def _chroma(rgb: np.ndarray) -> tuple[float, float]:
    v = np.maximum(np.asarray(rgb, dtype=np.float64), 1e-9)
    s = float(v.sum())
    return float(v[0] / s), float(v[2] / s)


def _wb_svg(ill: dict[str, Any]) -> str:
    pts = [_chroma(v) for k, v in ill.items() if k != "locus"] + [_chroma(v) for _, v in ill.get("locus", [])]
    rs, bs = [p[0] for p in pts], [p[1] for p in pts]
    lo_r, hi_r, lo_b, hi_b = min(rs) - 0.05, max(rs) + 0.05, min(bs) - 0.05, max(bs) + 0.05

    def xy(p: tuple[float, float]) -> tuple[float, float]:
        return 10 + 180 * (p[0] - lo_r) / (hi_r - lo_r), 170 - 160 * (p[1] - lo_b) / (hi_b - lo_b)
    body = []
    if "locus" in ill:
        coords = [xy(_chroma(v)) for _, v in ill["locus"]]
        body.append('<polyline points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
                    + '" fill="none" stroke="#888" stroke-width="1.2"/>')
        for (t, _), (a, b) in zip(ill["locus"], coords):
            if t in (2000, 3000, 5000, 10000):
                body.append(f'<text x="{a + 3:.1f}" y="{b - 3:.1f}" fill="#aaa" font-size="9">{t} K</text>')
    for key, color, dy in (("as_shot", "#5ad7ff", 14), ("estimated", "#ffd25a", -6)):
        if key in ill:
            a, b = xy(_chroma(ill[key]))
            body.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{color}" fill-opacity="0.8"/>'
                        f'<text x="{a + 6:.1f}" y="{b + dy:.1f}" fill="{color}" font-size="10">'
                        f'{key.replace("_", "-")}</text>')
    return _svg("".join(body), 200, 180, title="illuminant in camera r/(r+g+b) (across), b/(r+g+b) (up)")


def _fmt(v: Any) -> str:
    return html.escape(json.dumps(v) if not isinstance(v, str) else v)


def _stage_html(rec: StageRecord) -> str:
    params = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in rec.params.items())
    s = rec.stats
    stats = (f"min {s['min']:.4g} · mean {s['mean']:.4g} · max {s['max']:.4g} · "
             f"clipped {100 * s['clipped']:.2f} %" + (f" · non-finite {s['nonfinite']}" if s["nonfinite"] else ""))
    plots = _histogram_svg(rec.histogram)
    if rec.curve is not None:
        plots += _curve_svg(rec.curve)
    if rec.illuminant is not None:
        plots += _wb_svg(rec.illuminant)
    return (f'<section class="stage" id="{html.escape(rec.name)}"><h2>{html.escape(rec.name)} '
            f'<small>{html.escape(rec.type_name)} · {rec.seconds * 1000:.1f} ms · {html.escape(rec.domain)} '
            f'{"×".join(map(str, rec.shape))}</small></h2>'
            f'<div class="row"><img alt="{html.escape(rec.name)} preview" src="{_png_uri(rec.preview)}">'
            f'<div class="side"><p class="stats">{stats}</p><div class="plots">{plots}</div>'
            f'<table class="params">{params}</table></div></div></section>')


_CSS = """body{background:#121212;color:#e6e6e6;font:14px/1.4 system-ui,sans-serif;margin:24px}
h1{font-size:20px}h2{font-size:16px;margin:0 0 8px}small{color:#9a9a9a;font-weight:normal}
.stage{border-top:1px solid #333;padding:14px 0}.row{display:flex;gap:16px;align-items:flex-start}
img{max-width:480px;height:auto;background:#000}.plots{display:flex;gap:8px;flex-wrap:wrap}
.params td{padding:1px 8px 1px 0;color:#c8c8c8;font-family:monospace}.stats{color:#bdbdbd}
table.timings td{padding:1px 12px 1px 0}a{color:#8cb4ff}"""


def write_report(report: PipelineReport, path: str | Path) -> Path:
    """Write ``report`` as one self-contained HTML file (previews inlined); return its path."""
    total = sum(r.seconds for r in report.stages)
    rows = "".join(f"<tr><td><a href='#{html.escape(r.name)}'>{html.escape(r.name)}</a></td>"
                   f"<td>{r.seconds * 1000:.1f} ms</td></tr>" for r in report.stages[1:])
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ispkit report: "
            f"{html.escape(Path(report.source).name)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(report.source)} <small>pipeline {html.escape(report.pipeline)} · "
            f"{len(report.stages) - 1} stages · {total * 1000:.0f} ms · written "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}</small></h1>"
            f"<table class='timings'>{rows}</table>"
            + "".join(_stage_html(r) for r in report.stages) + "</body></html>")
    data = page.encode("utf-8")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, lambda fh: fh.write(data))


def write_previews(report: PipelineReport, directory: str | Path) -> list[Path]:
    """Write each stage's preview as ``NN_name.png`` and a ``contact_sheet.png`` (small images)."""
    from .io.image import write_image

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_image(r.preview, out / f"{i:02d}_{r.name}.png") for i, r in enumerate(report.stages)]
    sheet = contact_sheet({r.name: r.preview.astype(np.float32) / 255 for r in report.stages})
    paths.append(write_image(sheet, out / "contact_sheet.png"))
    return paths
