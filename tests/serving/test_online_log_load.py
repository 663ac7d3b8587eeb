"""The online log under load (26.2): every request answered is a row in the log table or counted as dropped.

A real ``batchcast serve`` with ``[serve] log_table``, a few seconds of
one-row requests from a pool of HTTP clients, then SIGTERM as Kubernetes
stops a pod. The warehouse's DuckDB has a small memory limit, so a flush
that hands DuckDB thousands of one-row batches fails here as it did under
wrk at DuckDB's default 256 MB; ``benchmarks/online_log.py`` is the full
measurement (32 connections, 20 s).
"""

from __future__ import annotations

import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import bc, query, write_python_service
from tests.serving.servers import latest, start, stop

CLIENTS, SECONDS = 16, 4.0
ROW = {"player_id": "p1", **{f"f{i}": 0.5 for i in range(1, 9)}}
SPEC = ('\n[warehouse]\nurl = "duckdb:///.batchcast/warehouse.duckdb?memory_limit=32MB"\n'
        '\n[serve]\nlog_table = "online_predictions"\nlog_every = 1\n')
STOPPED = re.compile(r"online log: stopped: (\d+) rows written to online_predictions, (\d+) rows dropped")


def load(port: int) -> tuple[int, list[str]]:
    """One-row requests from CLIENTS clients for SECONDS; the 200s they got, and anything else."""
    answered, failures, lock = [0], [], threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while time.monotonic() < deadline:
                try:
                    status = http.post("/invocations", json={"dataframe_records": [ROW]}).status_code
                except httpx.HTTPError as exc:
                    status = repr(exc)
                with lock:
                    if status == 200:
                        answered[0] += 1
                    else:
                        failures.append(str(status))

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return answered[0], failures


def served(port: int) -> int:
    """The 200s the server counted (/metrics)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(int(float(n)) for n in re.findall(
        r'^batchcast_requests_total\{[^}]*route="/invocations"[^}]*status="200"[^}]*\} (\S+)$', text, re.MULTILINE))


def logged_rows(db) -> int:
    """Rows in the log table; none if no flush ever created it."""
    if not query(db, "SELECT 1 FROM information_schema.tables WHERE table_name = 'online_predictions'"):
        return 0
    return query(db, "SELECT count(*) FROM online_predictions")[0][0]


@pytest.mark.slow
def test_every_request_answered_under_load_is_logged_or_counted_and_none_is_dropped(tmp_path):
    write_python_service(tmp_path, rows=300, extra=SPEC)
    bc("run", "training", cwd=tmp_path)
    bc("promote", latest(tmp_path), cwd=tmp_path)
    port, proc = start(tmp_path)
    try:
        answered, failures = load(port)
        counted = served(port)
    finally:
        assert stop(proc) == -signal.SIGTERM
    said = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("online log:")]
    found = [STOPPED.fullmatch(line) for line in said]
    written, dropped = map(int, found[-1].groups()) if found and found[-1] else (None, None)
    logged = logged_rows(tmp_path / ".batchcast" / "warehouse.duckdb")
    assert failures == [] and answered == counted > 0
    assert answered == logged + (dropped or 0), (answered, logged, said[-3:])
    assert dropped == 0 and written == logged, said[-3:]  # and the last line says so
