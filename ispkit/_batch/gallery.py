"""The static gallery ``OUT_DIR/index.html``: a thumbnail per output, its time and settings, the failures.

Every name is escaped with :func:`html.escape` and every link is relative to
OUT_DIR (URL-quoted), so the folder can be moved or served as it is. A tiny
inline script records how many thumbnails loaded in ``body[data-images-loaded]``
(checked by the tests in headless Chromium).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..io._files import atomic_write

__all__ = ["write_gallery"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;background:#16181c;color:#e4e6ea}
h1{font-size:1.3em;margin:0 0 .2em} .meta{color:#9aa0a8;margin-bottom:1em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:14px}
figure{margin:0;background:#22252b;border-radius:6px;padding:8px;overflow:hidden}
figure img{width:100%;height:180px;object-fit:contain;background:#000;display:block}
figcaption{font-size:12px;margin-top:6px;overflow-wrap:anywhere} .dim{color:#9aa0a8}
.skipped{opacity:.85} table{border-collapse:collapse;margin-top:.6em}
td,th{border:1px solid #3a3e46;padding:4px 8px;text-align:left;vertical-align:top}
.failed{margin-bottom:1.5em} .failed h2{color:#ff8a80} code{font-size:12px}
a{color:#8ab4f8} figcaption a{color:inherit;text-decoration:none}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) ok++; });
  document.body.setAttribute('data-images-loaded', ok);
  document.body.setAttribute('data-images-total', imgs.length);
});
"""


def _href(rel: str) -> str:
    return html.escape(quote(rel), quote=True)


def _models(rec: dict[str, Any]) -> str:
    """Short model labels (``fc4.cwp → masked_bright_pixels`` for a fallback), the full text on hover."""
    short, full = [], []
    for m in rec.get("models") or []:
        name, fallback, sha = str(m.get("model", "?")), m.get("fallback"), m.get("sha256")
        short.append(f"{name} → {str(fallback).split(' (')[0]}" if fallback
                     else f"{name} ({str(sha)[:8]})" if sha
                     else f"{name} (random weights)" if m.get("random_weights") else name)
        untrained = "random initial weights" if m.get("random_weights") else ""
        full.append(f"{name}: {fallback or m.get('weights') or untrained}")
    if not short:
        return "none"
    return f'<span title="{html.escape("; ".join(full), quote=True)}">{html.escape(", ".join(short))}</span>'


def _figure(rec: dict[str, Any]) -> str:
    out, thumb = rec["output"], rec.get("thumb") or rec["output"]
    status = rec.get("status", "ok")
    when = "rendered" if status == "ok" else "kept from an earlier run"
    return (f'<figure class="{html.escape(status)}"><a href="{_href(out)}"><img src="{_href(thumb)}" '
            f'alt="{html.escape(rec["input_rel"])}" loading="eager"></a>'
            f'<figcaption><b>{html.escape(rec["input_rel"])}</b> → {html.escape(out)}<br>'
            f'<span class="dim">{float(rec.get("render_seconds") or rec.get("seconds") or 0):.2f} s, {when}; preset '
            f'{html.escape(str(rec.get("preset")))}, config {html.escape(str(rec.get("config_hash"))[:12])}; '
            f'models: {_models(rec)}</span></figcaption></figure>')


def _failures(failed: list[dict[str, Any]]) -> str:
    if not failed:
        return ""
    rows = "".join(f"<tr><td>{html.escape(r['input_rel'])}</td><td><code>{html.escape(str(r.get('error')))}"
                   f"</code></td></tr>" for r in failed)
    return (f'<section class="failed"><h2>{len(failed)} failed</h2><table><tr><th>input</th><th>reason</th>'
            f"</tr>{rows}</table></section>")


def write_gallery(out_dir: Path, records: list[dict[str, Any]], title: str) -> Path:
    """Write ``out_dir/index.html`` for this run's records (ok, skipped, failed) and return its path."""
    records = sorted(records, key=lambda r: r["input_rel"])
    shown = [r for r in records if r.get("status") in ("ok", "skipped") and r.get("output")]
    failed = [r for r in records if r.get("status") == "failed"]
    first = records[0] if records else {}
    settings = (f"preset {html.escape(str(first.get('preset')))}, format {html.escape(str(first.get('format')))}, "
                f"config {html.escape(str(first.get('config_hash'))[:12])}, ispkit "
                f"{html.escape(str(first.get('ispkit_version')))}, {html.escape(str(first.get('timestamp'))[:19])} UTC"
                if first else "no captures found")
    head = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>")
    body = (f"<h1>{html.escape(title)}</h1><p class=meta>{len(shown)} images, {len(failed)} failed — {settings} — "
            f"manifest: <a href=\"ispkit-manifest.jsonl\">ispkit-manifest.jsonl</a></p>"
            f"{_failures(failed)}<div class=grid>{''.join(_figure(r) for r in shown)}</div></body></html>\n")
    path = out_dir / "index.html"
    atomic_write(path, lambda fh: fh.write((head + body).encode("utf-8")))
    return path
