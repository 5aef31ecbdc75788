"""Every script in examples/ runs to completion and writes what it says."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
#: arguments that keep an example quick here (and independent of optional tools)
FAST_ARGS = {"compare_developers": ["--fast"]}


def test_examples_exist():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out"), *FAST_ARGS.get(script.stem, [])],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
    written = list((tmp_path / "out").glob("*"))
    assert written, f"{script.name} wrote no output"
    assert all(p.stat().st_size > 0 for p in written)
