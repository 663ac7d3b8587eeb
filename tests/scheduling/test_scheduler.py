"""The embedded scheduler, as a real process on a real service: catch-up, waiting, retries, timeouts, pause."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

from batchcast import Service
from tests.conftest import BATCHCAST, bc, bc_json, query, write_python_service

TODAY = dt.datetime.now(dt.UTC).date()


def scheduled(tmp_path: Path, application: str, training: str = "", rows: int = 300) -> Path:
    """A Python-contract service (inline executor) with extra keys for its actions."""
    spec = write_python_service(tmp_path, rows)
    text = spec.read_text()
    text = text.replace('[actions.application]\n', f'[actions.application]\n{application}\n')
    text = text.replace('[actions.training]\n', f'[actions.training]\n{training}\n')
    spec.write_text(text)
    return spec


def scheduler(spec: Path, *args: str, ok: bool | None = True, timeout: float = 240) -> subprocess.CompletedProcess:
    result = subprocess.run([BATCHCAST, "--spec", str(spec), "scheduler", "--interval", "0.3", "--exit-when-idle",
                             *args], cwd=spec.parent, capture_output=True, text=True, timeout=timeout)
    if ok is not None and (result.returncode == 0) != ok:
        raise AssertionError(f"scheduler exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def background_scheduler(spec: Path):
    """``batchcast scheduler`` running until the block ends, then stopped with SIGTERM."""
    proc = subprocess.Popen([BATCHCAST, "--spec", str(spec), "scheduler", "--interval", "0.3"], cwd=spec.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.output = proc.communicate(timeout=30)[0]  # read to the end: a full pipe would block it


def ledger(spec: Path, action: str) -> list[tuple[str, str, int]]:
    rows = Service(spec).ledger.rows("scores", "2", action)
    return [(r["logical_date"], r["state"], r["attempts"]) for r in rows]


def committed(spec: Path, action: str) -> list[tuple[str, str]]:
    return [(m.logical_date.isoformat(), m.status.value) for m in Service(spec).runs(action)]


def days_back(n: int) -> list[str]:
    return [(TODAY - dt.timedelta(days=k)).isoformat() for k in range(n - 1, -1, -1)]


def test_catchup_all_runs_each_missed_date_once_oldest_first(tmp_path):
    start = TODAY - dt.timedelta(days=2)
    spec = scheduled(tmp_path, f'schedule = "0 0 * * *"\nstart_date = {start}\ncatchup = "all"')
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    scheduler(spec)
    assert ledger(spec, "application") == [(d, "succeeded", 1) for d in days_back(3)]
    assert committed(spec, "application") == [(d, "succeeded") for d in days_back(3)]
    counts = query(tmp_path / ".batchcast" / "warehouse.duckdb", "SELECT _logical_date::VARCHAR, count(*), "
                   "count(DISTINCT player_id) FROM scores GROUP BY 1 ORDER BY 1")
    assert counts == [(d, 300, 300) for d in days_back(3)]
    scheduler(spec)  # a second start finds nothing due: no date runs twice
    assert len(committed(spec, "application")) == 3


def test_catchup_latest_runs_one_and_skips_the_rest(tmp_path):
    start = TODAY - dt.timedelta(days=2)
    spec = scheduled(tmp_path, f'schedule = "0 0 * * *"\nstart_date = {start}\ncatchup = "latest"')
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    scheduler(spec)
    older, latest = days_back(3)[:2], days_back(3)[2]
    assert ledger(spec, "application") == [(d, "skipped", 0) for d in older] + [(latest, "succeeded", 1)]
    assert committed(spec, "application") == [(latest, "succeeded")]
    listed = bc_json("--spec", str(spec), "runs", "--action", "application", cwd=tmp_path)
    assert sorted((r["logical_date"], r["status"]) for r in listed) == [
        (older[0], "skipped"), (older[1], "skipped"), (latest, "succeeded")]


def test_catchup_none_skips_what_was_missed(tmp_path):
    start = TODAY - dt.timedelta(days=2)
    spec = scheduled(tmp_path, f'schedule = "0 0 * * *"\nstart_date = {start}\ncatchup = "none"')
    scheduler(spec)
    assert ledger(spec, "application") == [(d, "skipped", 0) for d in days_back(3)]
    assert committed(spec, "application") == []


def test_application_waits_for_training_then_runs(tmp_path):
    """Both scheduled for today: application shows 'waiting for training' until the model exists."""
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"', training='schedule = "0 0 * * *"')
    Service(spec).pause("training")
    with background_scheduler(spec) as proc:
        listed = _until(lambda: [r for r in bc_json("--spec", str(spec), "runs", cwd=tmp_path)
                                 if r["status"] == "waiting for training"])
        assert listed[0]["action"] == "application" and "no" in listed[0]["error"]
        bc("--spec", str(spec), "resume", "training", cwd=tmp_path)
        _until(lambda: ledger(spec, "application") == [(TODAY.isoformat(), "succeeded", 1)])
    assert proc.returncode == 0, proc.output
    assert ledger(spec, "training") == [(TODAY.isoformat(), "succeeded", 1)]
    application = Service(spec).runs("application")
    assert [m.model_run for m in application] == [Service(spec).runs("training")[0].run_id]


def test_waiting_has_a_limit(tmp_path):
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"\nwait_for_training = 1')
    result = scheduler(spec, ok=False)
    [(day, state, attempts)] = ledger(spec, "application")
    assert (day, state, attempts) == (TODAY.isoformat(), "failed", 0)
    row = Service(spec).ledger.rows("scores", "2", "application")[0]
    assert "wait_for_training" in row["error"] and "waited 1 s" in row["error"], result.stderr


WAIT_FOR = '[actions.application.wait_for]\npath = "landing/{{ ds }}/_SUCCESS"\npoll = "1s"\n'


def test_a_date_waits_for_its_data_then_runs_when_it_arrives(tmp_path):
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"')
    spec.write_text(spec.read_text() + WAIT_FOR)
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    marker = tmp_path / "landing" / TODAY.isoformat() / "_SUCCESS"
    arrived = ("--spec", str(spec), "check", "application", "--date", TODAY.isoformat(), "--arrived")
    assert bc(*arrived, cwd=tmp_path, ok=None).returncode == 75
    with background_scheduler(spec) as proc:
        listed = _until(lambda: [r for r in bc_json("--spec", str(spec), "runs", cwd=tmp_path)
                                 if r["status"] == "waiting for data"])
        assert listed[0]["action"] == "application"
        assert f"no file matches landing/{TODAY}/_SUCCESS" in listed[0]["error"]
        time.sleep(2.5)  # looked at again, every second, and still waiting
        assert committed(spec, "application") == [] and ledger(spec, "application")[0][1] == "waiting"
        marker.parent.mkdir(parents=True)
        marker.touch()
        _until(lambda: ledger(spec, "application") == [(TODAY.isoformat(), "succeeded", 1)])
    assert proc.returncode == 0, proc.output
    assert proc.output.count("waiting for data") == 1, proc.output  # said once, not at every look
    assert committed(spec, "application") == [(TODAY.isoformat(), "succeeded")]
    assert bc(*arrived, cwd=tmp_path).stdout.strip() == f"application {TODAY}: its input is there"


def test_data_that_never_comes_fails_the_date_past_its_timeout_naming_it(tmp_path):
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"')
    spec.write_text(spec.read_text() + WAIT_FOR + 'timeout = "2s"\n')
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    result = scheduler(spec, ok=False)
    assert ledger(spec, "application") == [(TODAY.isoformat(), "failed", 0)]
    [row] = Service(spec).ledger.rows("scores", "2", "application")
    assert row["error"] == (f"waited 2s ([actions.application.wait_for] timeout) for its input, which never came: "
                            f"no file matches landing/{TODAY}/_SUCCESS"), result.stderr
    assert committed(spec, "application") == []  # nothing ran, nothing was published


def test_a_query_wait_for_is_there_once_it_returns_a_row_and_a_failing_look_is_not_there_yet(tmp_path):
    import duckdb

    spec = scheduled(tmp_path, "")
    spec.write_text(spec.read_text() + "[actions.application.wait_for]\n"
                    "query = \"SELECT 1 FROM arrivals WHERE day = DATE '{{ ds }}'\"\n")
    arrived = ("--spec", str(spec), "check", "application", "--date", "2026-01-02", "--arrived", "--json")
    first = bc(*arrived, cwd=tmp_path, ok=None)
    assert first.returncode == 75
    assert "arrivals" in json.loads(first.stdout)["missing"]  # the table does not exist yet: looked at again
    con = duckdb.connect(str(tmp_path / ".batchcast" / "warehouse.duckdb"))
    con.execute("CREATE TABLE arrivals AS SELECT DATE '2026-01-01' AS day")
    con.close()
    assert bc(*arrived, cwd=tmp_path, ok=None).returncode == 75
    assert json.loads(bc(*arrived, cwd=tmp_path, ok=None).stdout)["missing"].endswith("returned no row")
    con = duckdb.connect(str(tmp_path / ".batchcast" / "warehouse.duckdb"))
    con.execute("INSERT INTO arrivals VALUES (DATE '2026-01-02')")
    con.close()
    assert json.loads(bc(*arrived, cwd=tmp_path).stdout) == {"action": "application", "logical_date": "2026-01-02",
                                                             "arrived": True, "missing": None}


def test_transient_errors_are_retried_with_backoff_terminal_ones_are_not(tmp_path):
    # A DuckDB file another process holds is 'unavailable' (transient); a missing column is a schema error (terminal).
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"\nretries = 2\nretry_delay = 0.5')
    # lock_wait=0: each attempt fails at once, so the scheduler's own retries show
    spec.write_text(spec.read_text() + '\n[warehouse]\nurl = "duckdb:///.batchcast/warehouse.duckdb?lock_wait=0"\n')
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(tmp_path / '.batchcast' / 'warehouse.duckdb')!r})
        print('held', flush=True)
        time.sleep(600)""")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        scheduler(spec, ok=False)
    finally:
        holder.kill()
        holder.wait()
    assert ledger(spec, "application") == [(TODAY.isoformat(), "failed", 3)]
    runs = Service(spec).runs("application")
    assert [m.error["type"] for m in runs] == ["WarehouseUnavailable"] * 3
    gaps = [(b.started_at - a.ended_at).total_seconds() for a, b in zip(runs, runs[1:], strict=False)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0  # 0.5 s, then doubled

    broken = spec.read_text().replace("label:BOOL", "label:BOOL,missing_col:STRING")
    spec.write_text(broken)
    bc("--spec", str(spec), "backfill", "application", "--from", str(TODAY), "--to", str(TODAY), cwd=tmp_path)
    scheduler(spec, ok=False)
    assert ledger(spec, "application") == [(TODAY.isoformat(), "failed", 1)]
    assert Service(spec).runs("application")[-1].error["type"] == "SchemaError"


def test_paused_actions_do_not_run_until_resumed(tmp_path):
    spec = scheduled(tmp_path, "", training='schedule = "0 0 * * *"')
    bc("--spec", str(spec), "pause", "training", cwd=tmp_path)
    assert bc_json("--spec", str(spec), "schedule", cwd=tmp_path)[0]["paused"] is True
    scheduler(spec)
    assert ledger(spec, "training") == [] and committed(spec, "training") == []
    bc("--spec", str(spec), "resume", "training", cwd=tmp_path)
    scheduler(spec)
    assert committed(spec, "training") == [(TODAY.isoformat(), "succeeded")]


def test_a_second_scheduler_on_the_same_service_is_refused(tmp_path):
    spec = scheduled(tmp_path, "", training='schedule = "0 0 * * *"')
    Service(spec).pause("training")
    with background_scheduler(spec) as first:
        lock = tmp_path / ".batchcast" / "scheduler" / "scheduler.lock"
        _until(lambda: lock.exists() and lock.read_text() == str(first.pid))
        second = scheduler(spec, ok=False, timeout=60)
        assert "another scheduler is running scores/2" in second.stderr and "fix: stop it first" in second.stderr


def test_a_second_folder_of_the_same_service_cannot_schedule_it_too(tmp_path):
    """Issue 26.10: two folders sharing a store and a warehouse each ran a scheduler, and every date ran twice."""
    first = scheduled(tmp_path / "a", "", training='schedule = "0 0 * * *"')
    shared = (f'\n[storage]\nurl = "{tmp_path / "a" / ".batchcast" / "artifacts"}"\n'
              f'[warehouse]\nurl = "duckdb:///{tmp_path / "a" / ".batchcast" / "warehouse.duckdb"}"\n')
    first.write_text(first.read_text() + shared)
    second = tmp_path / "b" / "batchcast.toml"
    second.parent.mkdir()
    second.write_text(first.read_text().replace('path = "repo"', f'path = "{tmp_path / "a" / "repo"}"'))
    Service(first).pause("training")
    lease = tmp_path / "a" / ".batchcast" / "artifacts" / "scores" / "2" / "_scheduler" / "lease.json"
    with background_scheduler(first) as running:
        _until(lambda: lease.exists() and f'"pid": {running.pid}' in lease.read_text())
        refused = scheduler(second, ok=False, timeout=60)
        assert f"another scheduler is running scores/2: pid {running.pid}" in refused.stderr
        assert str(tmp_path / "a") in refused.stderr and "fix: stop it first" in refused.stderr
    assert not lease.exists()  # released when the first stopped: the second may take over now
    scheduler(second)


def test_a_run_past_its_timeout_is_killed_with_its_children(tmp_path):
    """Command contract, local executor: the model starts a grandchild that would outlive a naive kill."""
    repo = tmp_path / "repo"
    (repo / "prediction").mkdir(parents=True)
    (repo / "prediction" / "__init__.py").write_text("")
    (repo / "prediction" / "main.py").write_text(textwrap.dedent(f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        open({str(tmp_path / 'child.pid')!r}, "w").write(str(child.pid))
        time.sleep(600)
        """))
    spec = tmp_path / "batchcast.toml"
    spec.write_text(textwrap.dedent("""
        [service]
        name = "scores"
        version = "2"
        [model]
        path = "repo"
        command = "python -m prediction.main"
        [actions.training]
        executor = "local"
        schedule = "0 0 * * *"
        timeout = 3
        """))
    scheduler(spec, ok=False)
    assert ledger(spec, "training") == [(TODAY.isoformat(), "timed out", 1)]
    [manifest] = Service(spec).runs("training")
    assert manifest.status.value == "timed out" and "timeout of 3 s" in manifest.error["message"]
    pid = int((tmp_path / "child.pid").read_text())
    assert not _alive(pid), f"the model's child {pid} survived the timeout"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _until(check, timeout: float = 120, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s: {check}")


def test_the_scheduler_is_the_timeout_of_inline_runs(tmp_path):
    """Inline runs have no timeout of their own: the scheduler kills the run's tree and commits it timed out."""
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"\ntimeout = 8')
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    model = tmp_path / "repo" / "model.py"
    model.write_text(model.read_text().replace("    def predict(self, X):", textwrap.indent(textwrap.dedent(f"""\
        def predict(self, X):
            import subprocess, time
            child = subprocess.Popen(["sleep", "600"], start_new_session=True)
            open({str(tmp_path / 'child.pid')!r}, "w").write(str(child.pid))
            time.sleep(600)

        def _unused(self, X):"""), "    ")))
    scheduler(spec, ok=False)
    assert ledger(spec, "application") == [(TODAY.isoformat(), "timed out", 1)]
    [manifest] = Service(spec).runs("application")
    assert manifest.status.value == "timed out" and "killed with its children" in manifest.error["message"]
    assert not _alive(int((tmp_path / "child.pid").read_text()))
