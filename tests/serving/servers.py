"""Starting and calling a real ``batchcast serve`` process on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import BATCHCAST, bc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, path: str, body=None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, _json(text)
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, _json(exc.read())


def _json(text: bytes):
    try:
        return json.loads(text)
    except ValueError:
        return text.decode()


def start(root: Path, *args: str, wait: float = 300) -> tuple[int, subprocess.Popen]:
    """``batchcast serve`` in ``root``, once it answers ready; its output goes to root/serve.log.

    The first start of a spec builds the model's environment, hence the long wait.
    """
    port = free_port()
    log = (root / "serve.log").open("w")  # not a pipe: one access-log line per request would fill it
    proc = subprocess.Popen([BATCHCAST, "serve", "--port", str(port), *args], cwd=root, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if call(port, "/v2/health/ready")[0] == 200:
                return port, proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    pytest.fail(f"batchcast serve did not become ready:\n{(root / 'serve.log').read_text()}")


def stop(proc: subprocess.Popen) -> int:
    """SIGTERM, as Kubernetes stops a pod: uvicorn finishes what is in flight, then re-raises the signal."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def latest(root: Path) -> str:
    return json.loads(bc("runs", "--json", cwd=root).stdout)[-1]["run_id"]
