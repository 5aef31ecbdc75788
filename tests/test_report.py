"""The debug report: one HTML page per render, built from small per-stage records (no intermediates kept)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

import ispkit
from ispkit.cli import main
from ispkit.io.synthetic import synthesize_capture
from ispkit.report import PREVIEW_WIDTH, record_run, write_report


@pytest.fixture(scope="module")
def capture():
    return synthesize_capture(size=(256, 384), seed=5, illuminant="A")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.svgs = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "svg":
            self.svgs += 1


def test_record_keeps_small_previews_and_real_statistics(capture):
    pipe = ispkit.load_preset("default").set({"white_balance.method": "gray_world"})
    rep = record_run(pipe, capture.frame)
    assert [r.name for r in rep.stages] == ["input", *pipe.names]
    assert rep.result.intermediates == {}  # nothing full-size is kept
    np.testing.assert_allclose(rep.result.output.data, pipe.run(capture.frame, fuse=False).output.data)
    for r in rep.stages:
        assert r.preview.dtype == np.uint8 and r.preview.shape[1] <= PREVIEW_WIDTH
    out = rep.stages[-1]
    d = rep.result.output.data
    assert out.stats["max"] == pytest.approx(float(d.max())) and out.stats["mean"] == pytest.approx(float(d.mean()))
    assert out.stats["clipped"] == pytest.approx(float(np.mean(d >= 1.0)))
    by = {r.name: r for r in rep.stages}
    x, y = by["gamma"].curve  # the sRGB OETF, read back through the stage
    np.testing.assert_allclose(y[64], 1.055 * x[64] ** (1 / 2.4) - 0.055, atol=2e-3)
    assert by["demosaic"].curve is None and by["color_matrix"].curve is None  # not pointwise / linear
    ill = by["white_balance"].illuminant  # gray world under illuminant A: red-heavy, near the as-shot neutral
    assert ill is not None and ill["estimated"][0] > ill["estimated"][2] and len(ill["locus"]) >= 5
    assert ill["as_shot"][0] > ill["as_shot"][2]


def test_report_page_is_one_self_contained_file(capture, tmp_path):
    rep = record_run(ispkit.load_preset("default"), capture.frame, source="synthetic.dng")
    page = write_report(rep, tmp_path / "sub" / "report.html")
    text = page.read_text(encoding="utf-8")
    parser = _Page()
    parser.feed(text)
    assert parser.sections == [r.name for r in rep.stages]
    assert len(parser.images) == len(rep.stages) and parser.svgs >= len(rep.stages) + 2
    first = base64.b64decode(parser.images[0].split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == rep.stages[0].preview.shape[:2]
    assert "src=\"http" not in text and "<script" not in text  # nothing fetched, nothing run
    assert re.search(r"gamma.*?\d+\.\d ms", text)


def test_cli_debug_dir_writes_the_report(tmp_path, capture, capsys):
    from ispkit.io import write_dng
    m = capture.frame.meta
    dng = write_dng(tmp_path / "c.dng", capture.frame.data.round().astype(np.uint16), m.cfa_pattern,
                    black_level=m.black_level, white_level=m.white_level, color_matrix1=m.color_matrix1,
                    as_shot_neutral=1 / m.wb_gains)
    assert main(["render", str(dng), "-o", str(tmp_path / "o.png"), "--debug-dir", str(tmp_path / "dbg")]) == 0
    assert "report.html" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "dbg").iterdir())
    assert "report.html" in names and "contact_sheet.png" in names and "00_input.png" in names


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium (Debian package chromium) not installed")
def test_report_renders_in_headless_chromium(capture, tmp_path):
    page = write_report(record_run(ispkit.load_preset("default"), capture.frame), tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
           "--window-size=1200,900", f"--screenshot={shot}", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (900, 1200)
    # the first preview (the colour chart) is drawn: many saturated pixels, unlike the dark page
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    assert np.mean((hsv[..., 1] > 80) & (hsv[..., 2] > 60)) > 0.01
