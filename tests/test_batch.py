"""ispkit batch with the local executor: discovery, isolation, manifest, resume, safety, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

import ispkit
from ispkit.batch import BatchError, render_folder
from ispkit.cli import main
from ispkit._batch.jobs import discover, plan_outputs, safe_output
from tests.batch_helpers import good_folder, leftovers, make_dng, manifest, mixed_folder

REPO = Path(__file__).resolve().parents[1]


def test_discovery_policy(tmp_path):
    src = tmp_path / "in"
    make_dng(src / "a.dng")
    (src / "a.nef").write_bytes((src / "a.dng").read_bytes())
    (src / "b.CR2").write_text("text named like a RAW")              # tried, then reported failed
    (src / "c.weird").write_bytes(b"II*\x00" + bytes(20))            # RAW signature under an unknown extension
    (src / "photo.png").write_bytes(b"\x89PNG")                      # an ordinary image: not a capture
    (src / ".hidden").mkdir()
    make_dng(src / ".hidden" / "x.dng")
    make_dng(src / "out" / "y.dng")                                  # OUT_DIR inside IN_DIR: never entered
    outside = tmp_path / "elsewhere"
    make_dng(outside / "z.dng")
    (src / "linked_dir").symlink_to(outside, target_is_directory=True)   # folder links are not followed
    (src / "link.dng").symlink_to(outside / "z.dng")                      # file links are read
    found = discover(src, src / "out")
    rels = [p.relative_to(src).as_posix() for p in found]
    assert rels == ["a.dng", "a.nef", "b.CR2", "c.weird", "link.dng"]
    jobs = plan_outputs(src, found, ".jpg")
    assert [j.output for j in jobs] == ["a.dng.jpg", "a.nef.jpg", "b.jpg", "c.jpg", "link.jpg"]
    assert plan_outputs(src, found, ".jpg") == jobs  # deterministic
    tricky = [src / n for n in ["a.dng", "a.dng.nef", "a.nef", "b.nef", "B.dng", "c.dng"]]
    assert [j.output for j in plan_outputs(src, tricky, ".jpg")] == [
        "a.dng.jpg", "a.dng.nef.jpg", "a.nef.jpg", "b.nef.jpg", "B.dng.jpg", "c.jpg"]


def test_safe_output_refuses_escapes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (out / "escape").symlink_to(outside, target_is_directory=True)
    (out / "link.jpg").symlink_to(outside / "victim.jpg")
    for bad in ["../x.jpg", "/etc/x.jpg", "escape/x.jpg", "link.jpg"]:
        with pytest.raises(BatchError):
            safe_output(out, bad)
    assert safe_output(out, "ok dir/ü x.jpg") == out / "ok dir" / "ü x.jpg"


def _reference_jpeg(src: Path, tmp: Path, preset="default", bit_depth=8, ext=".jpg", overrides=None) -> bytes:
    codes = ispkit.render(ispkit.io.read_capture(src), preset, bit_depth=bit_depth, overrides=overrides)
    return ispkit.write_image(codes, tmp / f"ref{ext}", bit_depth, orientation=1).read_bytes()


def test_mixed_folder_done_means(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    expect = mixed_folder(src)
    code = main(["batch", str(src), "-o", str(out), "--workers", "2", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    lines = manifest(out)
    by_input = {r["input_rel"]: r for r in lines}
    assert sorted(by_input) == sorted(expect["good"] + expect["bad"])  # one line per input, hidden/txt ignored
    assert len(lines) == len(by_input)
    for rel in expect["good"]:
        rec = by_input[rel]
        assert rec["status"] == "ok", rec
        img = cv2.imread(str(out / rec["output"]))
        assert img is not None and img.shape[2] == 3
        assert rec["config_hash"] == lines[0]["config_hash"] and rec["ispkit_version"] == ispkit.__version__
        assert rec["models"] == [] and rec["preset"] == "default" and rec["format"] == "jpg"
        assert rec["worker_max_rss_mb"] > 0 and rec["pid"] > 0
    assert {by_input["a.dng"]["output"], by_input["a.nef"]["output"]} == {"a.dng.jpg", "a.nef.jpg"}
    assert by_input["deep/er/c.dng"]["output"] == "deep/er/c.jpg"
    for rel in expect["bad"]:
        rec = by_input[rel]
        assert rec["status"] == "failed" and rec["error"], rec
        assert rel in err and not (out / rec["output"]).exists()
    assert "truncated" in by_input["truncated.dng"]["error"]
    # the output bytes are exactly those of ispkit.render + write_image
    assert (out / "deep/er/c.jpg").read_bytes() == _reference_jpeg(src / "deep/er/c.dng", tmp_path)
    page = (out / "index.html").read_text()
    for rel in expect["good"] + expect["bad"]:
        assert rel.rsplit("/", 1)[-1] in page
    assert not leftovers(out)


def test_resume_overwrite_and_changed_settings(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    good_folder(src, 3)
    first = render_folder(src, out, workers=1, progress=False)
    assert (first.rendered, first.skipped, first.failed) == (3, 0, 0) and first.ok
    mtimes = {p: p.stat().st_mtime_ns for p in first.outputs}
    again = render_folder(src, out, workers=1, progress=False)
    assert (again.rendered, again.skipped) == (0, 3)
    assert {p: p.stat().st_mtime_ns for p in again.outputs} == mtimes
    (first.outputs[0]).unlink()  # a missing output is rendered again
    assert render_folder(src, out, workers=1, progress=False).rendered == 1
    assert render_folder(src, out, workers=1, progress=False, overwrite=True).rendered == 3
    changed = render_folder(src, out, workers=1, progress=False, overrides={"demosaic.method": "menon2007"})
    assert changed.rendered == 3 and changed.config_hash != first.config_hash
    assert render_folder(src, out, workers=1, progress=False, fmt="png").rendered == 3
    statuses = Counter(r["status"] for r in manifest(out))
    assert statuses == {"ok": 3 + 1 + 3 + 3 + 3, "skipped": 3 + 2}


def test_non_fused_pipeline_16_bit_and_worker_builds_once(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    files = good_folder(src, 4)
    toml = tmp_path / "mine.toml"
    toml.write_text(ispkit.build_pipeline("default", overrides={"demosaic.method": "menon2007"}).to_toml())
    s = render_folder(src, out, preset=toml, fmt="tif16", workers=1, progress=False)
    assert s.rendered == 4 and set(s.split) == {"read", "render", "write"}
    recs = manifest(out)
    assert len({r["pid"] for r in recs}) == 1 and {r["worker_builds"] for r in recs} == {1}  # built once, reused
    got = (out / "img 00.tif").read_bytes()
    assert got == _reference_jpeg(files[0], tmp_path, preset=toml, bit_depth=16, ext=".tif")


def test_a_dying_worker_costs_one_file(tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    good_folder(src, 5)
    monkeypatch.setenv("ISPKIT_BATCH_TEST_CRASH", "img 01")  # SIGKILL inside the worker, as the OOM killer does
    s = render_folder(src, out, workers=1, progress=False)
    assert (s.rendered, s.failed) == (4, 1)
    assert s.failures[0].input == "sub dir é/img 01.dng"
    assert s.failures[0].reason.startswith(f"worker died (signal {int(signal.SIGKILL)}")
    recs = [r for r in manifest(out) if r["status"] == "ok"]
    assert len({r["pid"] for r in recs}) == 2  # the replacement worker went on
    assert not leftovers(out)


def _jpgs(out: Path) -> list[Path]:
    return [p for p in out.rglob("img *.jpg") if ".thumbs" not in p.parts]


def _default_sigint() -> None:
    """Give the child Ctrl-C's default action, as in a terminal: a test run started in the background of a
    non-interactive shell (``cmd &``, ``nohup``) ignores SIGINT, and children inherit that, so the batch
    would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ispkit.cli", "batch", *args], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)


@pytest.mark.slow
def test_ctrl_c_then_rerun_renders_each_file_once(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    good_folder(src, 6)
    proc = _cli(str(src), "-o", str(out), "--workers", "2", "--quiet",
                env={"ISPKIT_BATCH_TEST_SLEEP": "0.4", "ISPKIT_BATCH_TEST_CRASH": "img 03"})
    deadline = time.monotonic() + 120
    while not _jpgs(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert not leftovers(out)
    first = manifest(out)
    assert len(first) < 6  # interrupted mid-run
    for p in _jpgs(out):
        assert cv2.imread(str(p)) is not None  # complete files only
    proc = _cli(str(src), "-o", str(out), "--workers", "2", "--quiet")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    ok = Counter(r["input_rel"] for r in manifest(out) if r["status"] == "ok")
    assert sorted(ok) == sorted(p.relative_to(src).as_posix() for p in src.rglob("*.dng"))
    assert set(ok.values()) == {1}
    assert len(_jpgs(out)) == 6 and not leftovers(out)


def test_unwritable_out_dir_is_one_clear_error(tmp_path, capsys):
    src = tmp_path / "in"
    good_folder(src, 1)
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    code = main(["batch", str(src), "-o", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to OUT_DIR" in err and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (covered by the test above)")
def test_read_only_out_dir(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    good_folder(src, 1)
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(BatchError, match="cannot write to OUT_DIR"):
            render_folder(src, out, progress=False)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_bad_arguments(tmp_path):
    with pytest.raises(BatchError, match="does not exist"):
        render_folder(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(BatchError, match="is IN_DIR"):
        render_folder(tmp_path, tmp_path)
    with pytest.raises(ispkit.errors.ParameterError, match="format"):
        render_folder(tmp_path, tmp_path / "o", fmt="gif")
    with pytest.raises(ispkit.errors.UnknownNameError):
        render_folder(tmp_path, tmp_path / "o", preset="no-such-preset")


def test_progress_bar_and_log_lines(tmp_path, capsys):
    src = tmp_path / "in"
    good_folder(src, 2)
    assert main(["batch", str(src), "-o", str(tmp_path / "o1"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "img/s" in err or "s/img" in err and "2/2" in err
    assert main(["batch", str(src), "-o", str(tmp_path / "o2"), "--workers", "1", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "[1/2] ok" in err and "[2/2] ok" in err and "%|" not in err


def test_task_records_models_warnings_and_weights_dir(tmp_path, monkeypatch):
    """In-process: the worker task exports ISPKIT_WEIGHTS and returns the models and warnings of the render."""
    import warnings

    from ispkit._batch import worker
    from ispkit.frame import CaptureMetadata

    src = make_dng(tmp_path / "a.dng")
    used = [{"stage": "white_balance", "model": "fc4.cwp", "weights": None, "sha256": None,
             "fallback": "no weights found: gray world"}]

    def fake_render(pipe, frame, bit_depth):
        warnings.warn("fc4.cwp: weights not found, using the classical fallback")
        return np.zeros((4, 6, 3), np.uint8), CaptureMetadata(extra={"models": used})

    monkeypatch.setattr(worker, "render_codes", fake_render)
    monkeypatch.setenv("ISPKIT_WEIGHTS", "unset")
    task = worker.Task(source=str(src), output=str(tmp_path / "o" / "a.jpg"), thumb=str(tmp_path / "t" / "a.jpg"),
                       preset="default", overrides={}, config_hash="x" * 64, bit_depth=8,
                       weights_dir=str(tmp_path / "weights"))
    out = worker.run_task(task)
    assert out.status == "ok" and out.models == used and out.size == (6, 4)
    assert out.warnings == ["fc4.cwp: weights not found, using the classical fallback"]
    assert os.environ["ISPKIT_WEIGHTS"] == str(tmp_path / "weights")
    assert (tmp_path / "o" / "a.jpg").is_file() and (tmp_path / "t" / "a.jpg").is_file()
    bad = worker.run_task(worker.Task(**{**task.__dict__, "source": str(tmp_path / "missing.dng")}))
    assert bad.status == "failed" and "missing.dng" in bad.error


def test_stale_temp_files_are_removed_before_rendering(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    good_folder(src, 1)
    out.mkdir()
    stale = out / ".img 00.jpg.k2j3h4.part"
    stale.write_bytes(b"half an image")
    s = render_folder(src, out, workers=1, progress=False)
    assert s.rendered == 1 and not stale.exists() and not leftovers(out)


def test_full_disk_stops_the_batch_with_a_clear_error(tmp_path):
    """A worker's ENOSPC (or EROFS) ends the batch with a BatchError after recording that file."""
    import errno

    from ispkit._batch.manifest import Manifest
    from ispkit._batch.worker import Outcome, Task
    from ispkit.batch import _Run
    from ispkit._batch.jobs import Job

    out = tmp_path / "out"
    out.mkdir()
    job = Job(source=str(tmp_path / "a.dng"), rel="a.dng", output="a.jpg")
    task = Task(source=job.source, output=str(out / "a.jpg"), thumb="t", preset="default", overrides={},
                config_hash="h", bit_depth=8)
    with Manifest(out / "ispkit-manifest.jsonl") as m:
        run = _Run(tmp_path, out, "jpg", "default", {}, "h", m, by_output={task.output: job})
        with pytest.raises(BatchError, match="free space"):
            run.on_result(task, Outcome(status="failed", error="[Errno 28] No space left on device",
                                        errno=errno.ENOSPC))
    assert [r["status"] for r in manifest(out)] == ["failed"]


def test_threads_per_worker_reaches_every_task_and_is_checked(tmp_path, monkeypatch):
    import ispkit.batch as batch

    good_folder(tmp_path / "in", n=2)
    src = tmp_path / "in"
    seen = []
    monkeypatch.setattr(batch, "_execute", lambda tasks, *a: seen.extend(t.threads for t in tasks))
    render_folder(src, tmp_path / "a", workers=2, threads_per_worker=3, progress=False)
    assert seen == [3, 3]
    seen.clear()
    render_folder(src, tmp_path / "b", workers=2, progress=False)   # default: the cores shared by the workers
    assert seen == [max(1, (os.cpu_count() or 1) // 2)] * 2
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ispkit.errors.ParameterError, match="threads_per_worker"):
            render_folder(src, tmp_path / "c", threads_per_worker=bad, progress=False)
