"""ispkit batch on Dask: a 2-worker LocalCluster gives the local executor's bytes and survives a dying worker."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from ispkit.batch import BatchError, render_folder
from tests.batch_helpers import good_folder, leftovers, manifest


@pytest.mark.slow
def test_dask_matches_local_bytes_and_survives_a_killed_worker(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    src = tmp_path / "in"
    good_folder(src, 4)
    local = render_folder(src, tmp_path / "local", workers=1, progress=False)
    assert local.rendered == 4
    monkeypatch.setenv("ISPKIT_BATCH_TEST_CRASH", "img 02")  # SIGKILL in whichever Dask worker takes it
    dsk = render_folder(src, tmp_path / "dask", workers=2, executor="dask", progress=False)
    assert (dsk.rendered, dsk.failed) == (3, 1)
    assert dsk.failures[0].input == "img 02.dng" and "KilledWorker" in dsk.failures[0].reason
    for out in local.outputs:
        twin = tmp_path / "dask" / out.relative_to(tmp_path / "local")
        if "img 02" not in out.name:
            assert twin.read_bytes() == out.read_bytes()
    lines = manifest(tmp_path / "dask")
    assert Counter(r["input_rel"] for r in lines) == Counter(r["input_rel"] for r in manifest(tmp_path / "local"))
    assert not leftovers(tmp_path / "dask")


def test_missing_dask_names_the_extra(tmp_path, monkeypatch):
    good_folder(tmp_path / "in", 1)
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(BatchError, match=r'pip install "ispkit\[dask\]"'):
        render_folder(tmp_path / "in", tmp_path / "out", executor="dask", progress=False)


def test_scheduler_address_uses_that_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    good_folder(tmp_path / "in", 2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        s = render_folder(tmp_path / "in", tmp_path / "out", executor="dask", scheduler=cluster.scheduler_address,
                          progress=False)
    assert (s.rendered, s.failed) == (2, 0)
    assert {r["input_rel"] for r in manifest(tmp_path / "out")} == {"img 00.dng", "sub dir é/img 01.dng"}


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from ispkit._batch import distributed_exec
    monkeypatch.setattr(distributed_exec, "CONNECT_TIMEOUT", "1s")
    good_folder(tmp_path / "in", 1)
    with pytest.raises(BatchError, match="cannot reach the Dask scheduler"):
        render_folder(tmp_path / "in", tmp_path / "out", executor="dask", scheduler="tcp://127.0.0.1:9",
                      progress=False)
