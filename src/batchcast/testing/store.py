"""The artifact-store contract: a backend's test module supplies the fixture ``store`` and inherits ``StoreContract``.

``store`` is an empty ``ArtifactStore`` (a fresh bucket or folder per test);
the suite also asks for pytest's ``tmp_path`` and ``monkeypatch``. ``manifest`` and
``commit_with_file`` are there for a backend's own tests beside the suite.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest

from batchcast.errors import IntegrityError, RunExists, RunNotFound, StoreError
from batchcast.runs import latest
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

    def test_latest_comes_from_its_index_not_a_listing(self, store, tmp_path, monkeypatch):
        ts = [f"20260101T0000000000{i:02d}Z" for i in range(6)]
        for i in (1, 3, 2):  # committed out of order: the newest stays latest
            commit_with_file(store, tmp_path, ts=ts[i])
        commit_with_file(store, tmp_path, ts=ts[4], status=RunStatus.FAILED)
        commit_with_file(store, tmp_path, ts=ts[0], action="application")
        staged = store.stage(manifest(store, action="application", ts=ts[5]))
        store.commit_staged(staged.run_id)
        assert store.latest("svc", "1", "evaluation") is None  # never committed: listed once, then recorded
        for reader in (store, type(store)(store.url)):  # this process, and another one's view of the store
            monkeypatch.setattr(reader, "list_runs", _no_listing)
            assert reader.latest("svc", "1", "training").run_ts == ts[3]
            assert reader.resolve("svc", "1", "latest").run_ts == ts[3]
            assert reader.latest("svc", "1", "application").run_id == staged.run_id
            assert reader.latest("svc", "1", "evaluation") is None

    def test_latest_holds_when_commits_race(self, store, tmp_path, monkeypatch):
        stamps = [f"20260101T000000{i:06d}Z" for i in range(24)]
        random.Random(7).shuffle(stamps)
        start = threading.Barrier(6)

        def commit(mine):
            start.wait()
            for ts in mine:
                store.commit(manifest(store, ts=ts))

        threads = [threading.Thread(target=commit, args=(stamps[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.list_runs("svc", "1")) == 24
        monkeypatch.setattr(store, "list_runs", _no_listing)
        assert store.latest("svc", "1", "training").run_ts == max(stamps)

    def test_latest_is_rebuilt_when_its_index_is_missing_or_stale(self, store, tmp_path, monkeypatch):
        ts = [f"20260101T0000000000{i:02d}Z" for i in range(5)]
        for i in (0, 2, 1):
            commit_with_file(store, tmp_path, ts=ts[i])
        store.fs.rm(store._path("svc", "1", latest.LATEST), recursive=True)  # a store from before the index
        assert store.latest("svc", "1", "training").run_ts == ts[2]
        newest = store.latest("svc", "1", "training")
        store.fs.rm(store._path(newest.run_id), recursive=True)  # its run deleted: the index must not name it
        assert store.latest("svc", "1", "training").run_ts == ts[1]
        commit_with_file(store, tmp_path, ts=ts[3])
        with monkeypatch.context() as patched:  # rebuilt: no listing needed any more
            patched.setattr(store, "list_runs", _no_listing)
            assert store.latest("svc", "1", "training").run_ts == ts[3]

    def test_latest_lists_while_the_newest_manifest_cannot_be_read(self, store, tmp_path):
        ts = [f"20260101T0000000000{i:02d}Z" for i in range(2)]
        commit_with_file(store, tmp_path, ts=ts[0])
        newest = commit_with_file(store, tmp_path, ts=ts[1])
        path = store._path(newest.run_id, "manifest.json")
        raw = store.fs.cat_file(path)
        store.fs.pipe_file(path, b"{not a manifest")
        assert store.latest("svc", "1", "training").run_ts == ts[0]  # as a listing says
        store.fs.pipe_file(path, raw)  # restored from a backup: the newest again
        assert store.latest("svc", "1", "training").run_ts == ts[1]

    def test_latest_survives_a_run_that_claimed_and_died(self, store, tmp_path, monkeypatch):
        ts = [f"20260101T0000000000{i:02d}Z" for i in range(4)]
        commit_with_file(store, tmp_path, ts=ts[0])
        store.claim_latest(manifest(store, ts=ts[2]).sealed())  # killed between its claim and its commit
        with monkeypatch.context() as patched:
            patched.setattr(store, "list_runs", _no_listing)
            assert store.latest("svc", "1", "training").run_ts == ts[0]  # in flight: not committed yet
        monkeypatch.setattr(latest, "GRACE_S", 0.0)  # long after: it never will be
        commit_with_file(store, tmp_path, ts=ts[1])
        assert store.latest("svc", "1", "training").run_ts == ts[1]
        monkeypatch.setattr(store, "list_runs", _no_listing)
        assert store.latest("svc", "1", "training").run_ts == ts[1]

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


def _no_listing(*args, **kwargs):
    raise AssertionError("listed every manifest to find latest")
