"""What the fake cloud APIs share: a JSON server on 127.0.0.1, and "workloads" that run the image's entry point.

A fake plays the API's side only; where the platform would start the
service's image, it calls its ``start`` with the pod spec the body describes
(``{"containers": [{image, command, args, env}]}``). By default that runs the
image's real entry point (``containers.ENTRYPOINT``) with the container's
command, args and env, on this machine and with batchcast's own interpreter,
so the run really commits and the executor's reading of its manifest is what
gets tested; ``tests/executors/in_podman.py`` starts the image itself instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from batchcast.isolation.images import ENTRYPOINT


class FakeServer:
    """A context manager serving ``handler()`` on 127.0.0.1; ``endpoint`` is its base URL."""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def workloads(self) -> list:
        return []

    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc) -> None:
        for workload in self.workloads():
            workload.stop()
        self.server.shutdown()
        self.server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    def _json(self, code: int, body: dict) -> None:
        self._send(code, json.dumps(body).encode(), "application/json")

    def _send(self, code: int, data: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> str:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

    def log_message(self, *args) -> None:
        pass


Starter = Callable[[dict, str], "Workload"]  # (pod spec, workload name) -> the started workload


def local(batchcast: str, spec: Path) -> Starter:
    """Run a pod spec's first container on this machine, with batchcast's own interpreter."""
    return lambda pod, name: Workload(batchcast, spec, pod["containers"][0])


class Workload:
    """A container's command (else the image's entry point) and args as a local process group, for one run."""

    def __init__(self, batchcast: str, spec: Path, container: dict):
        bin_dir = str(Path(batchcast).parent)
        argv = [*(container.get("command") or ENTRYPOINT), *(container.get("args") or [])]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}  # JSON may omit empty values
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BATCHCAST_SPEC": str(spec)},
            start_new_session=True)

    def finish(self) -> tuple[int, str]:
        output = self.proc.communicate()[0]
        return self.proc.returncode, output

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)


def fake_api_fixture(fake: type, table: str, endpoint_variable: str):
    """The ``fake_api`` fixture of an executor's tests: ``table`` added to the adopted spec, ``fake`` serving it,
    and the executor pointed at it through ``endpoint_variable``."""
    import pytest

    from batchcast.testing.executors import with_table
    from tests.conftest import BATCHCAST

    @pytest.fixture
    def fake_api(adopted, monkeypatch):
        spec = adopted / "batchcast.toml"
        with_table(spec, table)
        with fake(spec, BATCHCAST) as served:
            monkeypatch.setenv(endpoint_variable, served.endpoint)
            yield served

    return fake_api
