"""A store that is full or read-only fails the run as a run: nothing published, nothing half-written left behind.

Issue 26.3: a Python-contract application on a full store printed an OSError
traceback, and its 600 rows were in the table under a run no manifest
committed; the command contract left no failed manifest and a partial
output file that kept the store full. The store is a small tmpfs here
(mounting needs root, as in CI).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import bc, bc_json, query, write_python_service

DAY = "2026-01-02"


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MB tmpfs, unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def on_small_store(root: Path, tmpfs: Path) -> Path:
    """``root``'s trained, promoted and applied store moved onto the tmpfs, the spec pointed at it."""
    store = tmpfs / "artifacts"
    shutil.copytree(root / ".batchcast" / "artifacts", store)
    spec = root / "batchcast.toml"
    spec.write_text(spec.read_text() + f'\n[storage]\nurl = "{store}"\n')
    return store


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the filesystem of ``folder`` up to ``leave`` bytes free."""
    free = shutil.disk_usage(folder).free - leave
    with (folder / "filler").open("wb") as f:
        try:
            f.write(b"\0" * max(free, 0))
        except OSError:  # tmpfs rounds to pages: full is full
            pass


def files_of(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_size for p in store.rglob("*") if p.is_file()
            and p.name != "filler"}


def table_state(root: Path, table: str) -> list:
    return query(root / ".batchcast" / "warehouse.duckdb",
                 f"SELECT _logical_date::VARCHAR, count(*), max(_run_id) FROM {table} GROUP BY 1 ORDER BY 1")


@pytest.fixture
def python_service(tmp_path):
    root = tmp_path / "py"
    write_python_service(root, rows=600)
    bc("run", "training", cwd=root)
    bc("promote", "latest", cwd=root)
    bc("run", "application", "--date", DAY, cwd=root)
    return root


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_an_application_on_a_store_that_takes_nothing_publishes_nothing(python_service, tmpfs, how):
    store = on_small_store(python_service, tmpfs)
    before, files = table_state(python_service, "scores"), files_of(store)
    if how == "full":
        fill(tmpfs)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    out = bc("run", "application", "--date", DAY, cwd=python_service, ok=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    [error] = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    [fix] = [line for line in out.stderr.splitlines() if line.startswith("fix: ")]
    assert f"artifact store {store}" in error and ("No space left" in error or "Read-only" in error), error
    assert ("full" if how == "full" else "read-only") in fix, fix
    assert table_state(python_service, "scores") == before  # no row of a run that committed nothing
    assert files_of(store) == files  # and nothing of it in the store
    newest = bc("check", "application", "--date", DAY, cwd=python_service).stdout.split()[0]
    assert newest == before[0][2]  # the date's last committed run is still the one whose rows are there


def test_a_command_run_that_fills_the_store_removes_its_files_and_records_its_failure(tmp_path, tmpfs):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    root = tmp_path / "svc"
    spec = root / "batchcast.toml"
    spec.write_text(spec.read_text().replace('executor = "local"', 'executor = "inline"'))
    bc("run", "training", cwd=root)
    bc("promote", "latest", cwd=root)
    bc("run", "application", "--date", DAY, cwd=root)
    store = on_small_store(root, tmpfs)
    before, files = table_state(root, "predictions"), files_of(store)
    fill(tmpfs, leave=12 << 10)  # tmpfs pages: room for a log and a manifest, not for 19 KB of predictions
    out = bc("run", "application", "--date", DAY, cwd=root, ok=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    failed = [r for r in bc_json("runs", "--action", "application", cwd=root) if r["status"] == "failed"]
    assert len(failed) == 1 and "No space left" in failed[0]["error"], failed
    added = set(files_of(store)) - set(files)
    run = failed[0]["run_id"]
    assert added == {f"{run}/manifest.json"}, added  # its partial outputs (and its log, for room) are gone
    assert table_state(root, "predictions") == before


@pytest.mark.parametrize("landed", [True, False])
def test_a_run_killed_between_its_stage_and_its_commit_is_settled_by_its_rows(python_service, landed):
    """The executor's (or scheduler's) commit for a dead run: the staged manifest stands if its rows landed."""
    from batchcast import RunStatus, Service
    from batchcast.errors import ExecutorError
    from batchcast.runs.commit import ensure_committed, now
    from batchcast.runs.manifest import RunRequest

    service = Service(python_service / "batchcast.toml")
    [run] = service.runs("application")
    folder = python_service / ".batchcast" / "artifacts" / run.run_id
    (folder / "manifest.json").rename(folder / "manifest.json.staged")  # as a kill just before the commit leaves it
    if not landed:  # killed before the warehouse committed: the rows never became visible
        import duckdb

        with duckdb.connect(str(python_service / ".batchcast" / "warehouse.duckdb")) as con:
            con.execute("DELETE FROM scores WHERE _run_id = ?", [run.run_id])
    request = RunRequest(name=run.name, version=run.version, action=run.action, run_ts=run.run_ts,
                         spec_path=str(service.spec.file), logical_date=run.logical_date, executor="local",
                         log_path=str(python_service / "gone.log"))
    settled = ensure_committed(service.spec, request, RunStatus.FAILED, now(), ExecutorError("killed", "rerun"))
    assert settled.run_id == run.run_id and not (folder / "manifest.json.staged").exists()
    assert settled.status is (RunStatus.SUCCEEDED if landed else RunStatus.FAILED)
    assert settled.intact and (settled.rows == run.rows if landed else settled.error["message"] == "killed")


def test_a_warehouse_on_a_full_disk_says_so_and_keeps_its_rows(python_service, tmpfs):
    """Issue 26.4: DuckDB on a full disk was reported as 'cannot rollback - no transaction is active'."""
    db = tmpfs / "warehouse.duckdb"
    shutil.copyfile(python_service / ".batchcast" / "warehouse.duckdb", db)
    spec = python_service / "batchcast.toml"
    spec.write_text(spec.read_text() + f'\n[warehouse]\nurl = "duckdb:///{db}"\n')
    before = query(db, "SELECT count(*), max(_run_id) FROM scores")
    fill(tmpfs)
    out = bc("run", "application", "--date", "2026-01-03", cwd=python_service, ok=False)
    [error] = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    [fix] = [line for line in out.stderr.splitlines() if line.startswith("fix: ")]
    assert "rollback" not in error and "Traceback" not in out.stderr, out.stderr
    assert "free space on the disk that holds" in fix, fix
    (tmpfs / "filler").unlink()
    assert query(db, "SELECT count(*), max(_run_id) FROM scores") == before
