"""Online serving: ``batchcast serve`` against ``mlflow models serve`` and BentoML, the same model, in one run.

- The model: a LogisticRegression on 8 features, trained by ``batchcast run
  training``. MLflow serves the same ``model.joblib`` saved as an MLflow
  sklearn model, in its own venv (``.venv-mlflow``, ``--env-manager local``,
  one worker) with uvloop and httptools, which its uvicorn then uses as
  batchcast's does. BentoML (``.venv-bentoml``) runs the smallest service
  that loads the same file: one class, one ``@bentoml.api`` taking MLflow's
  ``dataframe_records``, one worker.
- ``batchcast serve`` runs with its defaults, in the model's uv environment.
- The client: wrk (C, one thread) for a fixed duration at 1, 32 and 128
  connections, with one-row and 100-row requests in MLflow's
  ``dataframe_records`` form, which all three accept.
- Rounds: one warm-up of every point (dropped), then ``--rounds`` rounds,
  the servers' order reversed every other round; figures are medians with
  min and max. Beside each: the server's CPU seconds over the sample (its
  whole process tree) and, at the end, its peak memory (the sum of the
  tree's peak resident sets).
- The goal at every point: batchcast's requests/s at least 1.5x the best
  other's, and its p99 no worse than either's.

Run: ``make bench-serving`` (installs wrk and both venvs), or
``.venv/bin/python benchmarks/serving.py --duration 3 --rounds 1`` for a smoke run.
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
import textwrap
import time
import urllib.request
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from run import BATCHCAST, FEATURES, ROOT, generate, write_spec  # noqa: E402

MLFLOW_PY = ROOT / ".venv-mlflow" / "bin" / "python"
BENTOML_PY = ROOT / ".venv-bentoml" / "bin" / "python"
CONNECTIONS = (1, 32, 128)
ROWS = (1, 100)
SERVERS = ("batchcast serve", "mlflow models serve", "bentoml serve")
GOAL_RATIO = 1.5
SAVE = ("import joblib, mlflow.sklearn, sys, sklearn; "
        "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
        "pip_requirements=[f'scikit-learn=={sklearn.__version__}'])")
BENTO_SERVICE = textwrap.dedent('''
    import os

    import bentoml
    import joblib
    import pandas as pd

    FEATURES = {features!r}


    @bentoml.service(workers=1)
    class Churn:
        def __init__(self):
            self.model = joblib.load(os.environ["MODEL_FILE"])

        @bentoml.api
        def predict(self, dataframe_records: list[dict[str, float]]) -> list[bool]:
            return self.model.predict(pd.DataFrame(dataframe_records, columns=FEATURES)).tolist()
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="Seconds per measurement.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for found, fix in ((shutil.which("wrk"), "apt-get install wrk"), (MLFLOW_PY.exists(), "make bench-serving"),
                       (BENTOML_PY.exists(), "make bench-serving")):
        if not found:
            sys.exit(f"missing: {fix}")
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-serving-") as tmp:
        root = Path(tmp)
        model_file = train(root)
        scripts = {rows: post_script(root, rows) for rows in ROWS}
        servers: dict[str, Server] = {}
        try:
            servers["batchcast serve"] = start_batchcast(root)
            servers["mlflow models serve"] = start_mlflow(root, model_file)
            servers["bentoml serve"] = start_bentoml(root, model_file)
            results = measure(scripts, servers, args)
            memory = {name: tree_peak_mib(server.proc.pid) for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    report(results, memory, args)


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, path: str):
        self.proc, self.port, self.path = proc, port, path

    def stop(self) -> None:
        for pid in reversed(tree(self.proc.pid)):  # BentoML's and uvicorn's children, if the parent leaves them
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


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


def post_script(root: Path, rows: int) -> Path:
    records = [{name: round(0.25 + 0.01 * (r + i), 4) for i, name in enumerate(FEATURES)} for r in range(rows)]
    body = json.dumps({"dataframe_records": records})
    script = root / f"post-{rows}.lua"
    script.write_text(f"wrk.method = 'POST'\nwrk.body = '{body}'\n"
                      "wrk.headers['Content-Type'] = 'application/json'\n")
    return script


def start_batchcast(root: Path) -> Server:
    port = free_port()
    log = root / "batchcast-serve.log"
    proc = subprocess.Popen([BATCHCAST, "serve", "--port", str(port)], cwd=root, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    return ready(Server(proc, port, "/invocations"), "/v2/health/ready", log)


def start_mlflow(root: Path, model_file: Path) -> Server:
    subprocess.run([str(MLFLOW_PY), "-c", SAVE, str(model_file), str(root / "mlflow-model")], check=True)
    port = free_port()
    log = root / "mlflow-serve.log"
    proc = subprocess.Popen([str(MLFLOW_PY.parent / "mlflow"), "models", "serve", "-m", str(root / "mlflow-model"),
                             "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local", "-w", "1"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT,  # MLflow execs uvicorn from PATH
                            env={**os.environ, "PATH": f"{MLFLOW_PY.parent}:{os.environ['PATH']}"})
    return ready(Server(proc, port, "/invocations"), "/ping", log)


def start_bentoml(root: Path, model_file: Path) -> Server:
    (root / "bento").mkdir()
    (root / "bento" / "service.py").write_text(BENTO_SERVICE.format(features=FEATURES))
    port = free_port()
    log = root / "bentoml-serve.log"
    proc = subprocess.Popen([str(BENTOML_PY.parent / "bentoml"), "serve", "service:Churn", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=root / "bento", stdout=log.open("w"),
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "MODEL_FILE": str(model_file), "BENTOML_DO_NOT_TRACK": "True",
                                 "PATH": f"{BENTOML_PY.parent}:{os.environ['PATH']}"})
    return ready(Server(proc, port, "/predict"), "/readyz", log)


def ready(server: Server, path: str, log: Path) -> Server:
    deadline = time.monotonic() + 600  # batchcast builds the model's environment on its first start
    while time.monotonic() < deadline and server.proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise SystemExit(f"server on port {server.port} did not become ready:\n{log.read_text()[-2000:]}")


def tree(root: int) -> list[int]:
    """``root`` and its descendants, parents first."""
    found, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except OSError:
            continue
        found += children
        frontier += children
    return found


def tree_cpu_s(root: int) -> float:
    """The CPU seconds (user and system) of ``root``'s live process tree."""
    ticks = 0
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_peak_mib(root: int) -> int:
    """The sum of the tree's peak resident sets (VmHWM): what the server needed at its largest."""
    kib = 0
    for pid in tree(root):
        try:
            kib += int(re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1))
        except (OSError, AttributeError):
            continue
    return round(kib / 1024)


def measure(scripts: dict[int, Path], servers: dict[str, Server], args) -> dict:
    points = [(c, rows) for rows in ROWS for c in CONNECTIONS]
    samples: dict[tuple[str, int, int], list[dict]] = {}
    for r in range(args.rounds + 1):  # round 0 is the warm-up: first calls import and compile
        order = list(servers) if r % 2 == 1 else list(reversed(servers))
        for connections, rows in points:
            for name in order:
                sample = wrk(scripts[rows], servers[name], connections, args.duration if r else 3)
                if r:
                    samples.setdefault((name, connections, rows), []).append(sample)
    return {key: {figure: [s[figure] for s in found] for figure in found[0]} for key, found in samples.items()}


def wrk(script: Path, server: Server, connections: int, duration: int) -> dict:
    cpu = tree_cpu_s(server.proc.pid)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{server.port}{server.path}"], capture_output=True, text=True,
                         check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([0-9.]+\w+)\s*$", out, re.MULTILINE))
    if len(percentiles) != 2:
        raise SystemExit(f"wrk against {server.path} on port {server.port} answered no latency:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p50_ms": _ms(percentiles["50"]), "p99_ms": _ms(percentiles["99"]),
            "cpu_s": round(tree_cpu_s(server.proc.pid) - cpu, 2),
            "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def verdicts(results: dict) -> list[str]:
    found = []
    for rows in ROWS:
        for connections in CONNECTIONS:
            ours = {k: statistics.median(v) for k, v in results[(SERVERS[0], connections, rows)].items()}
            others = [{k: statistics.median(v) for k, v in results[(name, connections, rows)].items()}
                      for name in SERVERS[1:]]
            ratio = ours["rps"] / max(o["rps"] for o in others)
            p99 = min(o["p99_ms"] for o in others)
            met = ratio >= GOAL_RATIO and ours["p99_ms"] <= p99
            found.append(f"{rows} row(s), {connections} connection(s): requests/s {ratio:.2f}x the best other's "
                         f"(goal >= {GOAL_RATIO}), p99 {ours['p99_ms']:.2f} ms against the best other's "
                         f"{p99:.2f}: {'met' if met else 'NOT met'}")
    return found


def report(results: dict, memory: dict, args) -> None:
    lines = ["| rows | connections | server | requests/s | p50 ms | p99 ms | server CPU s | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rows in ROWS:
        for connections in CONNECTIONS:
            for name in SERVERS:
                f = results[(name, connections, rows)]
                lines.append(f"| {rows} | {connections} | {name} | {_spread(f['rps'], 0)} | "
                             f"{_spread(f['p50_ms'], 2)} | {_spread(f['p99_ms'], 2)} | "
                             f"{statistics.median(f['cpu_s']):.1f} | {sum(f['errors']):.0f} |")
    peaks = ", ".join(f"{name} {mib} MiB" for name, mib in memory.items())
    found = verdicts(results)
    print("\n".join([*lines, "", f"server peak memory (the tree's VmHWM summed): {peaks}", "", *found]))
    out = Path(__file__).parent / "results" / "serving.json"
    out.write_text(json.dumps({"duration_s": args.duration, "rounds": args.rounds, "peak_mib": memory,
                               "verdicts": found,
                               "results": [{"server": n, "connections": c, "rows": r, **f}
                                           for (n, c, r), f in results.items()]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
