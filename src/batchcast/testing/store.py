"""The artifact-store contract: a backend's test module supplies the fixture ``store`` and inherits ``StoreContract``.

``store`` is an empty ``ArtifactStore`` (a fresh bucket or folder per test);
the suite also asks for pytest's ``tmp_path``. ``manifest`` and
``commit_with_file`` are there for a backend's own tests beside the suite.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from batchcast.errors import IntegrityError, RunExists, RunNotFound, StoreError
from batchcast.runs.manifest import Manifest, RunStatus, new_run_ts, run_id


def manifest(store, action="training", status=RunStatus.SUCCEEDED, files=None, ts=None) -> Manifest:
    ts = ts or new_run_ts()
    now = dt.datetime.now(dt.UTC)
    return Manifest(run_id=run_id("svc", "1", action, ts), name="svc", version="1", action=action, kind=action,
                    run_ts=ts, status=status, logical_date=dt.date(2026, 1, 1), started_at=now, ended_at=now,
                    executor="inline", contract="python", files=files or {})


def commit_with_file(store, tmp_path, content=b"model-bytes", **kw) -> Manifest:
    m = manifest(store, **kw)
    local = tmp_path / "model.bin"
    local.write_bytes(content)
    m.files["output/model.bin"] = store.put_file(m.run_id, "output/model.bin", local)
    return store.commit(m)  # the manifest as committed: sealed


class StoreContract:
    def test_commit_then_read_back(self, store, tmp_path):
        m = commit_with_file(store, tmp_path)
        read = store.manifest(m.run_id)
        assert read.model_dump() == m.model_dump() and read.intact
        assert [r.run_id for r in store.list_runs("svc", "1")] == [m.run_id]

    def test_uncommitted_folder_is_invisible(self, store, tmp_path):
        m = manifest(store)
        (tmp_path / "f").write_bytes(b"x")
        store.put_file(m.run_id, "output/f", tmp_path / "f")
        assert store.list_runs("svc", "1") == []
        with pytest.raises(RunNotFound):
            store.manifest(m.run_id)

    def test_committed_run_is_never_overwritten(self, store, tmp_path):
        m = commit_with_file(store, tmp_path)
        with pytest.raises(RunExists):
            store.commit(m)
        with pytest.raises(RunExists):
            store.put_file(m.run_id, "output/model.bin", tmp_path / "model.bin")

    def test_latest_is_newest_successful_of_its_kind(self, store, tmp_path):
        first = commit_with_file(store, tmp_path)
        commit_with_file(store, tmp_path, status=RunStatus.FAILED)
        commit_with_file(store, tmp_path, action="application")
        assert store.latest("svc", "1", "training").run_id == first.run_id
        assert store.resolve("svc", "1", "latest").run_id == first.run_id
        assert store.resolve("svc", "1", first.run_ts).run_id == first.run_id

    def test_alias_moves_and_keeps_history(self, store, tmp_path):
        a, b = commit_with_file(store, tmp_path), commit_with_file(store, tmp_path)
        store.set_alias("svc", "1", "champion", a.run_id)
        store.set_alias("svc", "1", "champion", b.run_id)
        assert store.alias("svc", "1", "champion") == b.run_id
        assert store.resolve("svc", "1", "champion").run_id == b.run_id
        history = store.alias_history("svc", "1", "champion")
        assert [h["run_id"] for h in history] == [a.run_id, b.run_id]
        assert history[1]["previous"] == a.run_id

    def test_alias_refuses_failed_runs(self, store, tmp_path):
        failed = commit_with_file(store, tmp_path, status=RunStatus.FAILED)
        with pytest.raises(StoreError, match="only successful runs"):
            store.set_alias("svc", "1", "champion", failed.run_id)
        assert store.alias("svc", "1", "champion") is None

    def test_alias_readers_never_see_a_partial_document(self, store, tmp_path):
        runs = [commit_with_file(store, tmp_path) for _ in range(2)]
        ids = {r.run_id for r in runs}
        seen, stop = [], threading.Event()

        def read():
            while not stop.is_set():
                seen.append(store.alias("svc", "1", "champion"))

        store.set_alias("svc", "1", "champion", runs[0].run_id)
        reader = threading.Thread(target=read)
        reader.start()
        for i in range(30):
            store.set_alias("svc", "1", "champion", runs[i % 2].run_id)
        stop.set()
        reader.join()
        assert seen and set(seen) <= ids

    def test_fetch_verifies_checksums(self, store, tmp_path):
        m = commit_with_file(store, tmp_path)
        out = tmp_path / "fetched"
        assert [p.name for p in store.fetch(m, "output", out)] == ["model.bin"]
        assert (out / "model.bin").read_bytes() == b"model-bytes"
        store.fs.pipe_file(f"{store.root}/{m.run_id}/output/model.bin", b"model-bytez")
        with pytest.raises(IntegrityError, match=r"output/model.bin: sha256 .* differs from the manifest"):
            store.fetch(m, "output", tmp_path / "again")
        assert not (tmp_path / "again" / "model.bin").exists()

    def test_unknown_reference_is_a_clear_error(self, store):
        with pytest.raises(RunNotFound, match="'nope' names no alias and no single run"):
            store.resolve("svc", "1", "nope")
