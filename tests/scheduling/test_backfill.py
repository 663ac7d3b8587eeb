"""Schedules as logical dates, the ledger, and backfills through the CLI."""

from __future__ import annotations

import datetime as dt

import pytest

from batchcast import Service
from batchcast.errors import SpecError
from batchcast.scheduling.plan import ticks, upcoming
from tests.conftest import bc, bc_json, query


def test_ticks_are_logical_dates():
    days = ticks("0 6 * * *", dt.date(2026, 1, 1), dt.date(2026, 1, 10))
    assert days == [dt.date(2026, 1, d) for d in range(1, 11)]
    assert ticks("0 3 * * 1", dt.date(2026, 1, 1), dt.date(2026, 1, 31)) == [
        dt.date(2026, 1, 5), dt.date(2026, 1, 12), dt.date(2026, 1, 19), dt.date(2026, 1, 26)]
    hourly = ticks("0 * * * *", dt.date(2026, 1, 1), dt.date(2026, 1, 2))  # issue 28: every tick is a period
    assert hourly == [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=h) for h in range(48)]
    with pytest.raises(SpecError, match="empty"):
        ticks("0 6 * * *", dt.date(2026, 1, 2), dt.date(2026, 1, 1))


def test_a_backfill_of_centuries_is_refused_at_once(tmp_path):
    """Issue 26.13: a range with a typo in a year walked millions of ticks, silently."""
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    refused = bc("backfill", "training", "--from", "0001-01-01", "--to", "9999-12-31", cwd=tmp_path / "svc", ok=False)
    assert "spans 3,652,059 days; a backfill covers at most 3,660" in refused.stderr and "fix: " in refused.stderr
    assert not (tmp_path / "svc" / ".batchcast" / "ledger.db").exists() or Service(
        tmp_path / "svc" / "batchcast.toml").ledger.rows("churn", "1") == []


def test_upcoming_is_strictly_after():
    now = dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)
    assert [t.isoformat() for t in upcoming("0 6 * * *", now, 2)] == [
        "2026-01-02T06:00:00+00:00", "2026-01-03T06:00:00+00:00"]


@pytest.mark.slow  # ten dates, run twice: about 30 s
def test_backfill_now_runs_ten_dates_idempotently(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    env = {"BATCHCAST__ACTIONS__APPLICATION__EXECUTOR": "inline", "BATCHCAST__ACTIONS__TRAINING__EXECUTOR": "inline"}
    bc("run", "training", cwd=svc, env=env)
    out = bc("backfill", "application", "--from", "2026-01-01", "--to", "2026-01-10", "--now", cwd=svc, env=env)
    assert out.stdout.count(" succeeded ") == 10
    # Issue 26.13: a line as the range is queued, then one per date as it ends (it printed nothing until the end).
    assert out.stdout.splitlines()[0] == "queued 10 dates of the range" and "[10/10] 2026-01-10 " in out.stdout
    db = svc / ".batchcast" / "warehouse.duckdb"
    counts = query(db, "SELECT _logical_date::VARCHAR, count(*) FROM predictions GROUP BY 1 ORDER BY 1")
    assert counts == [(f"2026-01-{d:02d}", 1000) for d in range(1, 11)]
    bc("backfill", "application", "--from", "2026-01-01", "--to", "2026-01-10", "--now", cwd=svc, env=env)
    assert query(db, "SELECT _logical_date::VARCHAR, count(*) FROM predictions GROUP BY 1 ORDER BY 1") == counts
    ledger = Service(svc / "batchcast.toml").ledger.rows("churn", "1", "application")
    assert [(r["logical_date"], r["state"], r["attempts"]) for r in ledger] == [
        (f"2026-01-{d:02d}", "succeeded", 1) for d in range(1, 11)]  # attempts since last queued


def test_backfill_without_now_only_queues(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    assert "queued in the ledger" in bc("backfill", "training", "--from", "2026-01-01", "--to", "2026-01-31",
                                        cwd=svc).stdout
    rows = Service(svc / "batchcast.toml").ledger.rows("churn", "1")
    assert [(r["action"], r["logical_date"], r["state"]) for r in rows] == [
        ("training", d, "queued") for d in ("2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26")]
    listed = bc_json("runs", cwd=svc)
    assert [(r["status"], r["logical_date"], r["source"]) for r in listed] == [
        ("queued", d, "ledger") for d in ("2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26")]
    bc("run", "training", "--date", "2026-01-05", "--executor", "inline", cwd=svc)
    listed = bc_json("runs", cwd=svc)  # the committed run replaces nothing: the date is still queued again
    assert [(r["status"], r["logical_date"]) for r in listed][:2] == [("succeeded", "2026-01-05"),
                                                                       ("queued", "2026-01-05")]
    assert "queued" in bc("runs", cwd=svc).stdout


def test_schedule_lists_next_runs(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    upcoming_runs = bc_json("schedule", "--count", "2", cwd=tmp_path / "svc")
    assert [r["action"] for r in upcoming_runs] == ["training", "training", "application", "application"]
    assert all(r["at"][11:16] in ("03:00", "06:00") for r in upcoming_runs)


def _in_a_terminal(argv: list[str], cwd, env: dict) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout and stderr; its exit code and all it wrote."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    written = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    return proc.wait(timeout=60), written.decode(errors="replace")


def test_a_backfill_draws_a_bar_on_a_terminal_and_writes_lines_to_a_file(tmp_path):
    """Issue 28, part 6: long work is not silent; a bar where a person watches, plain lines where a file does."""
    import os
    import re

    from tests.conftest import BATCHCAST, write_python_service

    spec = write_python_service(tmp_path, 200)
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    daily = {**os.environ, "BATCHCAST__ACTIONS__APPLICATION__SCHEDULE": "0 6 * * *", "TERM": "xterm",
             "COLUMNS": "120"}
    code, screen = _in_a_terminal([BATCHCAST, "--spec", str(spec), "backfill", "application", "--from",
                                   "2026-01-01", "--to", "2026-01-03", "--now"], tmp_path, daily)
    assert code == 0, screen
    assert "\x1b[" in screen  # a terminal's colours and cursor moves
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "━" in screen and "3/3 dates" in screen, screen  # the bar, at its end
    assert "[3/3] 2026-01-03" in screen  # each date's line, printed above it

    filed = bc("--spec", str(spec), "backfill", "application", "--from", "2026-01-01", "--to", "2026-01-03", "--now",
               cwd=tmp_path, env=daily)
    lines = [line for line in filed.stdout.splitlines() if line.startswith("[")]
    assert [line.split()[:2] for line in lines] == [["[1/3]", "2026-01-01"], ["[2/3]", "2026-01-02"],
                                                    ["[3/3]", "2026-01-03"]]
    assert "━" not in filed.stdout + filed.stderr and "\x1b[" not in filed.stdout + filed.stderr
