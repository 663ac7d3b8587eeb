"""Two manual runs on one DuckDB file: the second waits for the first's lock, within a bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from tests.conftest import BATCHCAST, bc, query, write_python_service


@pytest.fixture
def service(tmp_path):
    write_python_service(tmp_path, rows=600)
    bc("run", "training", cwd=tmp_path)
    return tmp_path


def _hold(db, seconds: float) -> subprocess.Popen:
    """Another process writing the file until ``seconds`` pass or its stdin closes."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, select, sys
        con = duckdb.connect({str(db)!r})
        print('held', flush=True)
        select.select([sys.stdin], [], [], {seconds})
        con.close()""")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _stderr_until(process: subprocess.Popen, text: str, timeout: float) -> tuple[list[str], threading.Thread]:
    """Collect ``process``'s stderr lines on a thread; return once ``text`` appears (or at exit)."""
    lines: list[str] = []
    seen = threading.Event()

    def read():
        for line in process.stderr:
            lines.append(line)
            if text in line:
                seen.set()
        seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen.wait(timeout)
    return lines, reader


def test_a_manual_run_waits_for_another_process_lock(service):
    """The holder lets go only once the run says it waits, however slow the run is to start."""
    db = service / ".batchcast" / "warehouse.duckdb"
    waiting = "locked by another process; waiting up to 120 s"
    holder = _hold(db, 300)
    run = subprocess.Popen([BATCHCAST, "run", "application", "--date", "2026-01-02"], cwd=service,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines, reader = _stderr_until(run, waiting, timeout=120)
        assert any(waiting in line for line in lines), "".join(lines)
    finally:
        holder.stdin.close()
        holder.wait()
    assert run.wait(timeout=300) == 0
    reader.join(timeout=10)
    assert any("published 600 rows of 2026-01-02" in line for line in lines), "".join(lines)
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
