"""The batch gallery: every input listed, names escaped, every thumbnail loads in headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ispkit.batch import render_folder
from tests.batch_helpers import make_dng

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ODD = ["plain.dng", "sp ace & <b>bold</b>.dng", "quote's \"q\" #1?.dng", "ünï 夜.dng"]


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    for i, name in enumerate(ODD):
        make_dng(root / "in" / ("night" if i % 2 else ".") / name, seed=i)
    (root / "in" / "broken.dng").write_text("not a RAW")
    summary = render_folder(root / "in", root / "out", workers=1, progress=False)
    return root / "out", summary


def test_gallery_lists_every_file_escaped(batch_out):
    out, summary = batch_out
    page = (out / "index.html").read_text(encoding="utf-8")
    assert summary.gallery == out / "index.html"
    for name in ODD + ["broken.dng"]:
        assert html.escape(name) in page
    assert "<b>bold</b>" not in page  # escaped, not markup
    assert page.count("<figure") == len(ODD) and "1 failed" in page
    for src in re.findall(r'<img src="([^"]+)"', page):
        from urllib.parse import unquote
        assert (out / unquote(html.unescape(src))).is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_gallery_in_headless_chromium(batch_out, tmp_path):
    out, _ = batch_out
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
           "--virtual-time-budget=5000", "--dump-dom", (out / "index.html").as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, dom[:500]
    assert int(total.group(1)) == len(ODD) and int(loaded.group(1)) == len(ODD)
    for name in ODD + ["broken.dng"]:
        assert html.escape(name, quote=False) in dom
