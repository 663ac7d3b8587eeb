"""A real ``batchcast serve`` refuses what would hold its memory or its connections (26.6).

An oversized request head is refused after ``[serve] max_header`` bytes,
without the server's memory growing with it; a client that connects and
sends nothing, or trickles its request (slowloris), is disconnected after
``[serve] request_timeout``. Sockets wait at most BOUND seconds for the
server to act, so a server that never does fails the test instead of hanging it.
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import bc, write_python_service
from tests.serving.servers import call, latest, start, stop

BOUND = 20.0
SPEC = "\n[serve]\nmax_header = 16384\nrequest_timeout = 1\n"
HEAD = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
ROW = {f"f{i}": 0.5 for i in range(1, 9)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("connections")
    write_python_service(root, rows=300, extra=SPEC)
    bc("run", "training", cwd=root)
    bc("promote", latest(root), cwd=root)
    port, proc = start(root, "--poll", "60")
    yield port, proc
    stop(proc)
    assert "Traceback" not in (root / "serve.log").read_text()  # a body cut off is a 408, not an error


def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


def closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bytes | None:
    """What the server sent before it closed ``sock`` (b"" for nothing), or None if it was still open after BOUND.

    With ``trickle``, one byte of it is sent every 0.2 s meanwhile, as slowloris does.
    """
    received, deadline, at = b"", time.monotonic() + BOUND, 0
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        try:
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    return received
                received += chunk
            elif trickle:
                sock.send(trickle[at % len(trickle):at % len(trickle) + 1])
                at += 1
        except (ConnectionResetError, BrokenPipeError):
            return received
    return None


def test_an_oversized_header_is_refused_without_the_servers_memory_growing_with_it(server):
    port, proc = server
    before = rss_mb(proc.pid)
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(HEAD + b"X-Big: ")
            sent, chunk = 0, b"a" * 2**20
            try:
                while sent < 64 * 2**20:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (ConnectionResetError, BrokenPipeError):
                pass
            answer = closed_by_server(sock)
        assert answer is not None, "the server still reads a 64 MB header"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert rss_mb(proc.pid) - before < 16, f"RSS {before:.0f} MB -> {rss_mb(proc.pid):.0f} MB"
    assert call(port, "/invocations", {"dataframe_records": [ROW]})[0] == 200


def test_a_whole_request_with_a_header_over_the_limit_gets_a_431_naming_it(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HEAD + b"X-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
        answer = closed_by_server(sock)
    assert answer is not None and answer.startswith(b"HTTP/1.1 431"), answer
    assert b"over the limit of 16384 bytes" in answer and b"[serve] max_header" in answer
    assert call(port, "/invocations", {"dataframe_records": [ROW]}, headers={"X-Fine": "a" * 8000})[0] == 200


def test_idle_and_slow_clients_are_disconnected_after_the_request_timeout(server):
    port, _ = server
    idle = socket.create_connection(("127.0.0.1", port))
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    body = b'{"dataframe_records": [{"f1": 0.5}]}'
    slow_body = socket.create_connection(("127.0.0.1", port))
    slow_body.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % (len(body) * 1000))
    try:
        assert closed_by_server(idle) is not None, "an idle connection is still open"
        for sock in slow:
            sock.sendall(HEAD)
        for sock in slow:
            answer = closed_by_server(sock, trickle=b"X-Slow: " + b"a" * 100)
            assert answer is not None, "a slowloris connection is still open"
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
        assert closed_by_server(slow_body, trickle=body) is not None, "a slow body still holds its connection"
    finally:
        for sock in [idle, slow_body, *slow]:
            sock.close()
    assert call(port, "/invocations", {"dataframe_records": [ROW]})[0] == 200


def test_a_keep_alive_client_gets_the_timeout_afresh_for_each_request(server):
    port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
    try:
        for _ in range(4):  # 2 s in all on one connection, each request well inside request_timeout = 1
            connection.request("POST", "/invocations", json.dumps({"dataframe_records": [ROW]}),
                               {"Content-Type": "application/json"})
            answer = connection.getresponse()
            assert answer.status == 200 and answer.getheader("connection") != "close"
            answer.read()
            time.sleep(0.5)
    finally:
        connection.close()
