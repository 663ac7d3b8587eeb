"""What the streaming tests share: a trained service with a [stream] table, its events, and the consumer process.

The consumer runs as users run it, through the CLI (``batchcast stream``),
with ``--inline`` (in this environment: the isolated one is built once, by
the test that proves it). Tests stop it by process id.
"""

from __future__ import annotations

import json
import os
import signal as signals
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb

from tests.conftest import BATCHCAST, bc, write_python_service

# The churn model of the other tests, and one value it refuses: f1 = 666 makes it raise (a model error that
# belongs to one message, so a batch holding it must be scored message by message).
STREAM_MODEL = '''
import numpy as np
from sklearn.linear_model import LogisticRegression


class Model:
    def __init__(self, C=1.0):
        self.inner = LogisticRegression(C=C)

    def fit(self, X, y):
        self.inner.fit(X, y)
        return self

    def predict(self, X):
        if (np.asarray(X["f1"]) == 666).any():
            raise ValueError("f1 = 666 is a value this model refuses")
        return self.inner.predict(X)
'''
FEATURES = ("f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8")


def stream_service(root: Path, rows: int, stream: str, *, train: bool = True) -> Path:
    """A Python-contract service of ``rows`` feature rows, with the ``[stream]`` table ``stream``, trained once."""
    spec = write_python_service(root, rows, extra="\n[stream]\n" + textwrap.dedent(stream))
    (root / "repo" / "model.py").write_text(STREAM_MODEL)
    if train:
        bc("run", "training", cwd=root)
    return spec


def set_stream(root: Path, stream: str) -> None:
    """Replace the spec's ``[stream]`` table (tests of one module share a trained service, each its own topics)."""
    spec = root / "batchcast.toml"
    head = spec.read_text().split("\n[stream]\n")[0]
    spec.write_text(head + "\n[stream]\n" + textwrap.dedent(stream))


def events(root: Path, limit: int | None = None) -> tuple[list[bytes], list[bytes]]:
    """The application's input rows as JSON events (values) keyed by player id (keys), in player order."""
    sql = "SELECT * EXCLUDE (churned) FROM features ORDER BY player_id" + (f" LIMIT {limit}" if limit else "")
    values, keys = [], []
    for row in rows(root, sql):
        row["day"] = row["day"].isoformat()
        values.append(json.dumps(row).encode())
        keys.append(row["player_id"].encode())
    return values, keys


class Consumer:
    """``batchcast stream --inline`` (or in the model's environment) in ``root``, as a process; its log in
    ``root/stream-N.log``."""

    started = 0

    def __init__(self, root: Path, *args: str, env: dict | None = None, inline: bool = True):
        Consumer.started += 1
        self.log = root / f"stream-{Consumer.started}.log"
        self._file = open(self.log, "w")  # noqa: SIM115 - closed in wait()
        command = [BATCHCAST, "stream", *(["--inline"] if inline else []), *args]
        self.proc = subprocess.Popen(command, cwd=root, stdout=self._file,
                                     stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def signal(self, sig: int = signals.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._file.close()

    def stop(self, sig: int = signals.SIGTERM, timeout: float = 60) -> int:
        self.signal(sig)
        return self.wait(timeout)

    def text(self) -> str:
        if not self._file.closed:
            self._file.flush()
        return self.log.read_text()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(signals.SIGKILL)


def until(predicate, timeout: float = 60, what: str = "the condition", consumer: Consumer | None = None):
    """Wait for ``predicate()`` to be truthy (its value is returned); fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if consumer is not None and consumer.proc.poll() is not None:
            raise AssertionError(f"the consumer exited {consumer.proc.returncode} before {what}:\n{consumer.text()}")
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s" + (f":\n{consumer.text()[-3000:]}"
                                                                       if consumer else ""))


def rows(root: Path, sql: str) -> list[dict]:
    """The rows ``sql`` finds in the service's DuckDB warehouse, as dicts (read-only: the consumer may be writing)."""
    con = duckdb.connect(str(root / ".batchcast" / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(sql).to_arrow_table().to_pylist()  # Arrow: no pytz needed for TIMESTAMPTZ
    finally:
        con.close()


def count(root: Path, table: str) -> int:
    """Rows in ``table`` of the service's DuckDB warehouse (0 while it does not exist)."""
    try:
        return rows(root, f"SELECT count(*) AS n FROM {table}")[0]["n"]
    except duckdb.Error:  # not created yet, or locked by the consumer for a moment
        return 0


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError:  # not listening yet
        return 0, ""


def metric(text: str, name: str) -> float:
    """The sum of a metric's samples (over its labels) in a /metrics page."""
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))
