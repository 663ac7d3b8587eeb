"""Two manual runs on one DuckDB file: the second waits for the first's lock, within a bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import BATCHCAST, bc, query, write_python_service


@pytest.fixture
def service(tmp_path):
    write_python_service(tmp_path, rows=600)
    bc("run", "training", cwd=tmp_path)
    return tmp_path


def _hold(db, seconds: float) -> subprocess.Popen:
    """Another process writing the file for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r})
        print('held', flush=True)
        time.sleep({seconds})
        con.close()""")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_manual_run_waits_for_another_process_lock(service):
    db = service / ".batchcast" / "warehouse.duckdb"
    holder = _hold(db, 3)
    try:
        out = bc("run", "application", "--date", "2026-01-02", cwd=service)
    finally:
        holder.wait()
    assert "locked by another process; waiting up to 120 s" in out.stderr
    assert query(db, "SELECT count(*) FROM scores WHERE _logical_date = DATE '2026-01-02'")[0][0] == 600


def test_two_manual_runs_for_two_dates_both_succeed(service):
    runs = [subprocess.Popen([BATCHCAST, "run", "application", "--date", day],
                             cwd=service, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for day in ("2026-01-01", "2026-01-02")]
    assert [p.wait(timeout=300) for p in runs] == [0, 0], [p.stderr.read() for p in runs]
    db = service / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT _logical_date::VARCHAR, count(*) FROM scores GROUP BY 1 ORDER BY 1") == [
        ("2026-01-01", 600), ("2026-01-02", 600)]


def test_the_wait_is_bounded(service):
    db = service / ".batchcast" / "warehouse.duckdb"
    holder = _hold(db, 60)
    try:
        out = bc("run", "application", "--date", "2026-01-02", cwd=service, ok=False,
                 env={"BATCHCAST__WAREHOUSE__URL": f"duckdb:///{db}?lock_wait=1"})
    finally:
        holder.kill()
        holder.wait()
    assert "(waited 1 s for its lock)" in out.stderr and "?lock_wait=SECONDS" in out.stderr
