"""Online serving: ``batchcast serve`` against ``mlflow models serve``, the same scikit-learn model, in one run.

- The model: a LogisticRegression on 8 features, trained by ``batchcast run
  training``; MLflow serves the same ``model.joblib``, saved as an MLflow
  sklearn model in MLflow's own venv (``.venv-mlflow``, ``--env-manager local``).
- The servers: one process each, on 127.0.0.1. ``batchcast serve`` with its
  defaults (in the model's uv environment); MLflow with ``-w 1``.
- The client: wrk (C, one thread), one-row requests in MLflow's
  ``dataframe_records`` form, which both accept; 1, 8 and 32 connections for
  a fixed duration. Servers alternate within each round; figures are
  medians of the rounds.

Run: ``make bench-serving`` (installs wrk and MLflow's venv), or
``.venv/bin/python benchmarks/serving.py --duration 5 --rounds 1`` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from run import BATCHCAST, FEATURES, ROOT, generate, write_spec  # noqa: E402

MLFLOW_PY = ROOT / ".venv-mlflow" / "bin" / "python"
CONNECTIONS = (1, 8, 32)
GOAL_RATIO, GOAL_P99_MS = 2.0, 20.0
SAVE = ("import joblib, mlflow.sklearn, sys, sklearn; "
        "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
        "pip_requirements=[f'scikit-learn=={sklearn.__version__}'])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="Seconds per measurement.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for program, fix in ((shutil.which("wrk"), "apt-get install wrk"), (MLFLOW_PY.exists(), "make bench-serving")):
        if not program:
            sys.exit(f"missing: {fix}")
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-serving-") as tmp:
        root = Path(tmp)
        model_file = train(root)
        body = json.dumps({"dataframe_records": [dict.fromkeys(FEATURES, 0.25)]})
        (root / "post.lua").write_text(f"wrk.method = 'POST'\nwrk.body = '{body}'\n"
                                       "wrk.headers['Content-Type'] = 'application/json'\n")
        ports = {"batchcast serve": free_port(), "mlflow models serve": free_port()}
        servers = [start_batchcast(root, ports["batchcast serve"]),
                   start_mlflow(root, model_file, ports["mlflow models serve"])]
        try:
            results = measure(root / "post.lua", ports, args)
        finally:
            for proc in servers:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    report(results, args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(root: Path) -> Path:
    (root / ".batchcast").mkdir()
    write_spec(root, "features")
    with duckdb.connect(str(root / ".batchcast" / "warehouse.duckdb")) as con:
        con.register("t", generate(100_000, 1, True))
        con.execute("CREATE TABLE train AS SELECT * FROM t")
        con.execute("CREATE TABLE features AS SELECT * EXCLUDE (churned) FROM t")
    subprocess.run([BATCHCAST, "run", "training"], cwd=root, check=True, capture_output=True)
    run = json.loads(subprocess.run([BATCHCAST, "runs", "--json"], cwd=root, check=True, capture_output=True,
                                    text=True).stdout)[-1]["run_id"]
    return root / ".batchcast" / "artifacts" / run / "output" / "model.joblib"


def start_batchcast(root: Path, port: int) -> subprocess.Popen:
    log = (root / "batchcast-serve.log").open("w")
    proc = subprocess.Popen([BATCHCAST, "serve", "--port", str(port)], cwd=root, stdout=log, stderr=log)
    return ready(proc, port, "/v2/health/ready", root / "batchcast-serve.log")


def start_mlflow(root: Path, model_file: Path, port: int) -> subprocess.Popen:
    subprocess.run([str(MLFLOW_PY), "-c", SAVE, str(model_file), str(root / "mlflow-model")], check=True)
    log = (root / "mlflow-serve.log").open("w")
    proc = subprocess.Popen([str(MLFLOW_PY.parent / "mlflow"), "models", "serve", "-m", str(root / "mlflow-model"),
                             "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local", "-w", "1"],
                            stdout=log, stderr=log,  # MLflow execs uvicorn from PATH
                            env={**os.environ, "PATH": f"{MLFLOW_PY.parent}:{os.environ['PATH']}"})
    return ready(proc, port, "/ping", root / "mlflow-serve.log")


def ready(proc: subprocess.Popen, port: int, path: str, log: Path) -> subprocess.Popen:
    deadline = time.monotonic() + 600  # batchcast builds the model's environment on its first start
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit(f"server on port {port} did not become ready:\n{log.read_text()[-2000:]}")


def measure(script: Path, ports: dict[str, int], args) -> dict:
    for port in ports.values():
        wrk(script, port, 8, 3)  # warm-up: first calls import and compile
    samples: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for connections in CONNECTIONS:
            order = list(ports) if r % 2 == 0 else list(reversed(ports))
            for name in order:
                samples.setdefault((name, connections), []).append(wrk(script, ports[name], connections,
                                                                       args.duration))
    return {key: {figure: statistics.median(s[figure] for s in found) for figure in found[0]}
            for key, found in samples.items()}


def wrk(script: Path, port: int, connections: int, duration: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([0-9.]+\w+)$", out, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p50_ms": _ms(percentiles["50"]), "p99_ms": _ms(percentiles["99"]),
            "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def report(results: dict, args) -> None:
    lines = ["| connections | server | requests/s | p50 ms | p99 ms | errors |",
             "| --- | --- | --- | --- | --- | --- |"]
    for connections in CONNECTIONS:
        for name in ("batchcast serve", "mlflow models serve"):
            f = results[(name, connections)]
            lines.append(f"| {connections} | {name} | {f['rps']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | "
                         f"{f['errors']:.0f} |")
    ours, theirs = results[("batchcast serve", 32)], results[("mlflow models serve", 32)]
    ratio = ours["rps"] / theirs["rps"]
    verdicts = [f"requests/s at 32 connections, batchcast / MLflow: {ratio:.2f} (goal >= {GOAL_RATIO}): "
                f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}",
                f"batchcast's p99 at 32 connections: {ours['p99_ms']:.2f} ms (goal <= {GOAL_P99_MS} ms): "
                f"{'met' if ours['p99_ms'] <= GOAL_P99_MS else 'NOT met'}"]
    print("\n".join(lines + [""] + verdicts))
    out = Path(__file__).parent / "results" / "serving.json"
    out.write_text(json.dumps({"duration_s": args.duration, "rounds": args.rounds, "verdicts": verdicts,
                               "results": [{"server": n, "connections": c, **f} for (n, c), f in results.items()]},
                              indent=2))


if __name__ == "__main__":
    main()
