"""Alerts from the scheduler, received by a real HTTP server and a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from batchcast import Service
from tests.conftest import bc
from tests.scheduling.test_scheduler import TODAY, scheduled


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd checks its server by connecting to the port it was given
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def webhook():
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/secret-token"
    finally:
        server.shutdown()
        server.server_close()


def test_a_failure_alerts_once_on_each_channel_and_the_next_success_once_more(tmp_path, smtp, webhook):
    (inbox, port), (received, url) = smtp, webhook
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"\nretries = 0')
    spec.write_text(spec.read_text() + f'\n[alerts]\nemail = ["oncall@example.com"]\nsmtp = "smtp://127.0.0.1:{port}"\n'
                                       'dashboard = "http://127.0.0.1:9999"\n')
    env = {"BATCHCAST__ALERTS__WEBHOOK": url}  # the token stays out of the spec file
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    good = spec.read_text()
    spec.write_text(good.replace("label:BOOL", "label:BOOL,missing_col:STRING"))
    failed = bc("--spec", str(spec), "scheduler", "--interval", "0.3", "--exit-when-idle", cwd=tmp_path, env=env,
                ok=False)
    assert "secret-token" not in failed.stdout + failed.stderr

    [failure] = received
    [(to, mail)] = inbox.messages
    run_id = Service(spec).runs("application")[-1].run_id
    assert failure["batchcast"]["kind"] == "failure" and failure["batchcast"]["logical_date"] == TODAY.isoformat()
    for text in (failure["text"], mail.get_payload()):
        assert "scores/2 application" in text and TODAY.isoformat() in text
        assert "missing_col" in text and "fix:" in text
        assert f"http://127.0.0.1:9999/runs/{run_id}" in text
    assert to == ["oncall@example.com"] and "failed" in mail["Subject"]

    spec.write_text(good)
    bc("--spec", str(spec), "backfill", "application", "--from", str(TODAY), "--to", str(TODAY), cwd=tmp_path)
    bc("--spec", str(spec), "scheduler", "--interval", "0.3", "--exit-when-idle", cwd=tmp_path, env=env)  # exit 0
    assert [m["batchcast"]["kind"] for m in received] == ["failure", "recovery"]
    assert len(inbox.messages) == 2 and "recovered" in inbox.messages[1][1]["Subject"]
    assert f"/runs/{Service(spec).runs('application')[-1].run_id}" in received[1]["text"]

    bc("--spec", str(spec), "backfill", "application", "--from", str(TODAY), "--to", str(TODAY), cwd=tmp_path)
    bc("--spec", str(spec), "scheduler", "--interval", "0.3", "--exit-when-idle", cwd=tmp_path, env=env)
    assert len(received) == 2 and len(inbox.messages) == 2  # a success after a success says nothing


def test_an_unreachable_alert_channel_is_logged_without_its_url(tmp_path):
    spec = scheduled(tmp_path, 'schedule = "0 0 * * *"\nwait_for_training = 0')
    out = bc("--spec", str(spec), "scheduler", "--interval", "0.3", "--exit-when-idle", cwd=tmp_path, ok=False,
             env={"BATCHCAST__ALERTS__WEBHOOK": "http://127.0.0.1:1/hooks/secret-token"})
    assert "alert not delivered: webhook to 127.0.0.1" in out.stderr
    assert "secret-token" not in out.stderr + out.stdout
