"""`batchcast serve` through the CLI: bound to 127.0.0.1, and swapping to a new champion without a restart."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import BATCHCAST, bc, write_python_service

ROW = {f"f{i}": 0.5 for i in range(1, 9)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, path: str, body: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.fixture
def server(tmp_path):
    write_python_service(tmp_path, rows=300)
    bc("run", "training", cwd=tmp_path)
    bc("promote", _latest(tmp_path), cwd=tmp_path)
    port = free_port()
    log = (tmp_path / "serve.log").open("w")  # not a pipe: one access-log line per request would fill it
    proc = subprocess.Popen([BATCHCAST, "serve", "--port", str(port), "--poll", "60"], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if call(port, "/v2/health/ready")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"batchcast serve did not become ready:\n{(tmp_path / 'serve.log').read_text()}")
    yield tmp_path, port, proc
    proc.send_signal(signal.SIGTERM)  # uvicorn finishes what is in flight, then re-raises the signal
    assert proc.wait(timeout=30) == -signal.SIGTERM


def _latest(root) -> str:
    return json.loads(bc("runs", "--json", cwd=root).stdout)[-1]["run_id"]


def outward_address() -> str:
    """The machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]


def test_it_listens_on_127_0_0_1_only(server):
    _, port, _ = server
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) == 0
    address = outward_address()
    assert not address.startswith("127."), f"no address but loopback to try ({address})"
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex((address, port)) != 0, f"batchcast serve answered on {address}"


def test_a_promotion_is_served_after_sighup_and_no_request_fails_meanwhile(server):
    root, port, proc = server
    described = call(port, "/model")[2]
    before = described["run"]
    assert described["alias"] == "champion"
    failures, served_by, stop = [], set(), threading.Event()

    def client():
        while not stop.is_set():
            status, headers, body = call(port, "/invocations", {"dataframe_records": [ROW]})
            if status != 200:
                failures.append((status, body))
            served_by.add(headers.get("x-batchcast-model-run") or headers.get("X-Batchcast-Model-Run"))

    thread = threading.Thread(target=client)
    thread.start()
    bc("run", "training", cwd=root)
    bc("promote", _latest(root), cwd=root)
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while call(port, "/model")[2]["run"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    thread.join()
    after = call(port, "/model")[2]["run"]
    assert after != before and after == _latest(root)
    assert failures == []
    assert served_by == {before, after}
