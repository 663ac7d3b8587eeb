"""schemathesis against a running `batchcast serve`: requests generated from its /openapi.json get no 5xx.

The server's own /metrics count what it answered, so the test checks the
number of requests and their statuses from the server's side.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import bc, write_python_service
from tests.serving.servers import call, start, stop

pytestmark = pytest.mark.slow  # schemathesis: a server and generated requests, about 20 s

ST = Path(sys.executable).with_name("st")


def answered(port: int) -> dict[str, int]:
    """Requests the server answered, by status, from its Prometheus counters."""
    text = call(port, "/metrics")[2]
    counts: dict[str, int] = {}
    for status, value in re.findall(r'^batchcast_requests_total\{[^}]*status="(\d+)"[^}]*\} ([0-9.e+]+)$', text,
                                    re.MULTILINE):
        counts[status] = counts.get(status, 0) + int(float(value))
    return counts


def test_generated_requests_get_no_server_error(tmp_path):
    write_python_service(tmp_path, rows=300)
    bc("run", "training", cwd=tmp_path)
    port, proc = start(tmp_path)
    try:
        result = subprocess.run([str(ST), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks",
                                 "not_a_server_error", "--max-examples", "100", "--seed", "1", "--no-color"],
                                capture_output=True, text=True, timeout=600, cwd=tmp_path)
        counts = answered(port)
    finally:
        stop(proc)
    assert result.returncode == 0, result.stdout[-3000:]
    assert sum(counts.values()) >= 1000, counts
    assert not any(status.startswith("5") for status in counts), (counts, (tmp_path / "serve.log").read_text()[-3000:])
    assert counts.get("200", 0) >= 100 and sum(n for s, n in counts.items() if s.startswith("4")) >= 100, counts
