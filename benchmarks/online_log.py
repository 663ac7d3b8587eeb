"""The online log under load: every request ``batchcast serve`` answers is a row in ``[serve] log_table`` or counted.

- The service: the serving benchmark's LogisticRegression on 8 features
  (DuckDB warehouse, trained by ``batchcast run training``), with
  ``[serve] log_table = "online_predictions"`` and ``log_every = 1``.
- The load: wrk (one thread), one-row ``dataframe_records`` requests with a
  ``player_id``, at ``--connections`` for ``--duration`` seconds; then the
  server's own count of answered requests from ``/metrics``, its RSS, and
  SIGTERM, as Kubernetes stops a pod.
- The books: answered (the server's count of 200s) against the rows in the
  table after the server exits, plus the rows the log counted as dropped
  (its last line says how many). They must balance, and nothing may be dropped.

Run: ``.venv/bin/python benchmarks/online_log.py`` (20 s at 32 connections;
needs ``wrk``: ``apt-get install wrk``). Results go to
``benchmarks/results/online_log.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from run import FEATURES  # noqa: E402
from serving import free_port, start_batchcast, train  # noqa: E402

TABLE = "online_predictions"
SERVE = f'\n[serve]\nlog_table = "{TABLE}"\nlog_every = 1\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="Seconds of load.")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("missing: wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-online-log-") as tmp:
        root = Path(tmp)
        train(root)
        with (root / "batchcast.toml").open("a") as spec:
            spec.write(SERVE)
        body = json.dumps({"dataframe_records": [{"player_id": "p1", **dict.fromkeys(FEATURES, 0.25)}]})
        (root / "post.lua").write_text(f"wrk.method = 'POST'\nwrk.body = '{body}'\n"
                                       "wrk.headers['Content-Type'] = 'application/json'\n")
        port = free_port()
        proc = start_batchcast(root, port)
        try:
            result = load(root, proc, port, args)
        finally:
            if proc.poll() is None:
                proc.kill()
        result.update(books(root))
    report(result, args)


def load(root: Path, proc: subprocess.Popen, port: int, args) -> dict:
    rss_before = rss(proc.pid)
    out = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-s",
                          str(root / "post.lua"), f"http://127.0.0.1:{port}/invocations"],
                         capture_output=True, text=True, check=True).stdout
    time.sleep(0.5)  # the last responses wrk gave up on are counted by the server
    answered = served(port)
    rss_after = rss(proc.pid)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    p99 = re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE)
    return {"wrk_requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "requests_per_s": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p99": p99.group(1) if p99 else None, "answered": answered, "rss_before_mb": rss_before,
            "rss_after_mb": rss_after, "shutdown_s": round(time.monotonic() - started, 2), "exit": code,
            "log": (root / "batchcast-serve.log").read_text().splitlines()[-5:]}


def served(port: int) -> int:
    """Requests the server answered with a 200, by its own count."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.findall(r'^batchcast_requests_total\{[^}]*route="/invocations"[^}]*status="200"[^}]*\} (\S+)$',
                       text, re.MULTILINE)
    return sum(int(float(n)) for n in found)


def rss(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024, 1)


def books(root: Path) -> dict:
    with duckdb.connect(str(root / ".batchcast" / "warehouse.duckdb"), read_only=True) as con:
        logged = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    text = (root / "batchcast-serve.log").read_text()
    dropped = re.findall(r"online log: .*?(\d+) rows? dropped", text)
    return {"logged": logged, "dropped": int(dropped[-1]) if dropped else None}


def report(result: dict, args) -> None:
    balanced = result["dropped"] is not None and result["answered"] == result["logged"] + result["dropped"]
    result["verdict"] = (f"answered {result['answered']} = logged {result['logged']} + dropped {result['dropped']}: "
                         f"{'balanced' if balanced else 'NOT balanced'}; dropped = 0: "
                         f"{'met' if result['dropped'] == 0 else 'NOT met'}")
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "online_log.json"
    out.write_text(json.dumps({"duration_s": args.duration, "connections": args.connections, **result}, indent=2))


if __name__ == "__main__":
    main()
