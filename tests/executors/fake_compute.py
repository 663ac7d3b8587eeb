"""A FAKE Compute Engine API, for contract tests of the gce executor; not Google Cloud.

Compute Engine cannot run here, so this HTTP server on 127.0.0.1 plays the
API's side of the calls the executor (and the run inside the VM) make:
insert, get, serial port output and delete of an instance. Every inserted
instance is parsed strictly into the client's own ``compute_v1.Instance``
type, so a field the API would not know fails the test.

What a "VM" does is the test's ``scenario``:

- ``run``: boot, then run the container declaration's entry point on this
  machine with its env; the run deletes its own VM through this API;
- ``crash``: boot, then stop (TERMINATED) without running anything;
- ``never_up``: stay PROVISIONING;
- ``hang``: stay RUNNING until deleted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from google.cloud import compute_v1

ENTRYPOINT = ["run", "{ACTION}", "--date", "{LOGICAL_DATE}", "--executor", "inline", "--run-ts", "{RUN_TS}"]


class FakeVM:
    def __init__(self, body: dict, scenario: str, batchcast: str, spec: Path):
        self.body, self.name, self.scenario = body, body["name"], scenario
        self.status, self.deleted, self.proc, self.serial = "PROVISIONING", False, None, ""
        threading.Thread(target=self._live, args=(batchcast, spec), daemon=True).start()

    def _live(self, batchcast: str, spec: Path) -> None:
        if self.scenario == "never_up":
            return
        time.sleep(0.2)
        self.status = "STAGING"
        time.sleep(0.2)
        self.status = "RUNNING"
        if self.scenario == "crash":
            time.sleep(0.3)
            self.serial = "konlet: container exited with code 139\n"
            self.status = "TERMINATED"
        elif self.scenario == "run":
            declaration = yaml.safe_load(next(i["value"] for i in self.body["metadata"]["items"]
                                              if i["key"] == "gce-container-declaration"))
            env = {e["name"]: e["value"] for e in declaration["spec"]["containers"][0]["env"]}
            argv = [batchcast, "--spec", str(spec), *[a.format(**env) for a in ENTRYPOINT]]
            if env["MODEL_RUN"]:
                argv += ["--model", env["MODEL_RUN"]]
            self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
            self.serial = self.proc.communicate()[0]
            if not self.deleted:  # the run did not delete its VM: the container just stopped
                self.status = "TERMINATED"

    def delete(self) -> None:
        self.deleted = True
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def resource(self) -> dict:
        return {**self.body, "status": self.status, "kind": "compute#instance"}


class FakeCompute:
    def __init__(self, spec: Path, batchcast: str):
        self.spec, self.batchcast = spec, batchcast
        self.scenario = "run"
        self.vms: dict[str, FakeVM] = {}
        self.inserted: list[dict] = []
        self.deletes: list[str] = []

    def __enter__(self) -> "FakeCompute":
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc) -> None:
        for vm in self.vms.values():
            vm.delete()
        self.server.shutdown()
        self.server.server_close()

    def insert(self, text: str) -> None:
        compute_v1.Instance.from_json(text, ignore_unknown_fields=False)  # raises on a field the API lacks
        body = json.loads(text)
        self.vms[body["name"]] = FakeVM(body, self.scenario, self.batchcast, self.spec)
        self.inserted.append(body)  # last: a test that sees it may act on the VM at once


def _operation(kind: str, target: str) -> dict:
    return {"kind": "compute#operation", "name": f"operation-{time.monotonic_ns()}", "operationType": kind,
            "targetLink": target, "status": "DONE", "progress": 100}


def _handler(fake: FakeCompute):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            fake.insert(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self._json(200, _operation("insert", self.path))

        def do_DELETE(self):
            name = self.path.split("?")[0].rsplit("/", 1)[-1]
            vm = fake.vms.get(name)
            if vm is None or vm.deleted:
                return self._not_found(name)
            fake.deletes.append(name)
            vm.delete()
            self._json(200, _operation("delete", self.path))

        def do_GET(self):
            path = self.path.split("?")[0]
            if path.endswith("/serialPort"):
                vm = fake.vms.get(path.split("/")[-2])
                if vm is None or vm.deleted:
                    return self._not_found(path)
                return self._json(200, {"kind": "compute#serialPortOutput", "contents": vm.serial})
            name = path.rsplit("/", 1)[-1]
            vm = fake.vms.get(name)
            if vm is None or vm.deleted:
                return self._not_found(name)
            self._json(200, vm.resource())

        def _not_found(self, what: str) -> None:
            self._json(404, {"error": {"code": 404, "message": f"The resource '{what}' was not found",
                                       "errors": [{"reason": "notFound", "message": "not found"}]}})

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler
