"""A FAKE Compute Engine API, for contract tests of the gce executor; not Google Cloud.

Compute Engine cannot run here, so this HTTP server on 127.0.0.1 plays the
API's side of the calls the executor (and the image's entry point on the
VM) make: insert, get, serial port output and delete of an instance. Every
inserted instance is parsed strictly into the client's own
``compute_v1.Instance`` type, so a field the API would not know fails the test.

What a "VM" does is the test's ``scenario``:

- ``run``: boot, then run the container declaration's image entry point on
  this machine with its env (see fake_api.py); it deletes its own VM
  through this API when the run ends;
- ``crash``: boot, then stop (TERMINATED) without running anything;
- ``never_up``: stay PROVISIONING;
- ``hang``: stay RUNNING until deleted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml
from google.cloud import compute_v1

from tests.executors.fake_api import FakeServer, JsonHandler, Starter, local


class FakeVM:
    def __init__(self, body: dict, scenario: str, start: Starter):
        self.body, self.name, self.scenario = body, body["name"], scenario
        self.status, self.deleted, self.workload, self.serial = "PROVISIONING", False, None, ""
        threading.Thread(target=self._live, args=(start,), daemon=True).start()

    def _live(self, start: Starter) -> None:
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
            self.workload = start(declaration["spec"], self.name)  # konlet runs the declaration's container
            self.serial = self.workload.finish()[1]
            if not self.deleted:  # the run did not delete its VM: the container just stopped
                self.status = "TERMINATED"

    def stop(self) -> None:
        self.deleted = True
        if self.workload:
            self.workload.stop()

    def resource(self) -> dict:
        return {**self.body, "status": self.status, "kind": "compute#instance"}


class FakeCompute(FakeServer):
    def __init__(self, spec: Path, batchcast: str):
        self.spec = spec
        self.start: Starter = local(batchcast, spec)
        self.scenario = "run"
        self.vms: dict[str, FakeVM] = {}
        self.inserted: list[dict] = []
        self.deletes: list[str] = []

    def workloads(self) -> list:
        return list(self.vms.values())

    def insert(self, text: str) -> None:
        compute_v1.Instance.from_json(text, ignore_unknown_fields=False)  # raises on a field the API lacks
        body = json.loads(text)
        self.vms[body["name"]] = FakeVM(body, self.scenario, self.start)
        self.inserted.append(body)  # last: a test that sees it may act on the VM at once

    def handler(self):
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                fake.insert(self._body())
                self._json(200, _operation("insert", self.path))

            def do_DELETE(self):
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                vm = fake.vms.get(name)
                if vm is None or vm.deleted:
                    return self._not_found(name)
                fake.deletes.append(name)
                vm.stop()
                self._json(200, _operation("delete", self.path))

            def do_GET(self):
                path = self.path.split("?")[0]
                serial = path.endswith("/serialPort")
                name = path.split("/")[-2] if serial else path.rsplit("/", 1)[-1]
                vm = fake.vms.get(name)
                if vm is None or vm.deleted:
                    return self._not_found(name)
                self._json(200, {"kind": "compute#serialPortOutput", "contents": vm.serial} if serial
                           else vm.resource())

            def _not_found(self, what: str) -> None:
                self._json(404, {"error": {"code": 404, "message": f"The resource '{what}' was not found",
                                           "errors": [{"reason": "notFound", "message": "not found"}]}})

        return Handler


def _operation(kind: str, target: str) -> dict:
    return {"kind": "compute#operation", "name": f"operation-{time.monotonic_ns()}", "operationType": kind,
            "targetLink": target, "status": "DONE", "progress": 100}
