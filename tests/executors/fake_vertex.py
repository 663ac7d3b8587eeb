"""A FAKE Vertex AI API (CustomJobs over REST), for contract tests of the vertex executor; not Google Cloud.

Vertex AI cannot run here, so this HTTP server on 127.0.0.1 plays the API's
side of the calls the executor makes: create, get, list and cancel a
CustomJob. Every job it receives is parsed strictly into the client's own
``aiplatform_v1.CustomJob`` type, so a field the API would not know fails
the test.

What a job does is the test's ``scenario``: ``run`` (run the image's entry
point on this machine with the worker's env, see fake_api.py), ``quota``
(fail before any worker starts), ``hang`` (run until cancelled).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

from google.cloud import aiplatform_v1

from tests.executors.fake_api import FakeServer, JsonHandler, Starter, local

NOT_FOUND = {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
_ids = itertools.count(1000)


class FakeJob:
    def __init__(self, name: str, body: dict, scenario: str, start: Starter):
        self.name, self.body, self.scenario = name, body, scenario
        self.state, self.error, self.workload = "JOB_STATE_PENDING", None, None
        threading.Thread(target=self._guarded, args=(start,), daemon=True).start()

    def _guarded(self, start: Starter) -> None:
        try:
            self._live(start)
        except Exception as exc:  # a bug in the fake must fail the test, not hang it
            self.state, self.error = "JOB_STATE_FAILED", {"code": 13, "message": f"fake API bug: {exc!r}"}

    def _live(self, start: Starter) -> None:
        time.sleep(0.2)
        if self.state == "JOB_STATE_CANCELLED":  # cancelled while pending
            return
        if self.scenario == "quota":
            self.state = "JOB_STATE_FAILED"
            self.error = {"code": 8,
                          "message": "The following quota metrics exceed quota limits: custom_model_training_cpus"}
            return
        self.state = "JOB_STATE_RUNNING"
        if self.scenario != "run":
            return
        container = self.body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
        # Vertex runs the worker pool's container as a container runtime would: command, args, env.
        pod = {"containers": [{"image": container["imageUri"], "command": container.get("command"),
                               "args": container.get("args"), "env": container.get("env")}]}
        self.workload = start(pod, self.name.rsplit("/", 1)[-1])
        code = self.workload.finish()[0]
        if self.state == "JOB_STATE_RUNNING":
            self.state = "JOB_STATE_SUCCEEDED" if code == 0 else "JOB_STATE_FAILED"
            if code:
                self.error = {"code": 3,
                              "message": f"The replica workerpool0-0 exited with a non-zero status of {code}."}

    def stop(self) -> None:
        self.state = "JOB_STATE_CANCELLED"
        self.error = {"code": 1, "message": "CANCELED"}
        if self.workload:
            self.workload.stop()

    def resource(self) -> dict:
        found = {**self.body, "name": self.name, "state": self.state}
        if self.error:
            found["error"] = self.error
        return found


class FakeVertex(FakeServer):
    def __init__(self, spec: Path, batchcast: str):
        self.spec = spec
        self.start: Starter = local(batchcast, spec)
        self.scenario = "run"
        self.jobs: dict[str, FakeJob] = {}
        self.created: list[dict] = []
        self.cancels: list[str] = []

    def workloads(self) -> list:
        return list(self.jobs.values())

    def create(self, parent: str, text: str) -> dict:
        aiplatform_v1.CustomJob.from_json(text, ignore_unknown_fields=False)  # raises on a field the API lacks
        body = json.loads(text)
        name = f"{parent}/customJobs/{next(_ids)}"
        self.jobs[name] = FakeJob(name, body, self.scenario, self.start)
        self.created.append(body)  # last: a test that sees it may act on the job at once
        return self.jobs[name].resource()

    def handler(self):
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                path = self.path.split("?")[0].removeprefix("/v1/")
                text = self._body()
                if not path.endswith(":cancel"):
                    return self._json(200, fake.create(path.removesuffix("/customJobs"), text))
                job = fake.jobs.get(path.removesuffix(":cancel"))
                if job is None:
                    return self._json(404, NOT_FOUND)
                fake.cancels.append(job.name)
                job.stop()
                self._json(200, {})

            def do_GET(self):
                path, _, query = self.path.partition("?")
                path = path.removeprefix("/v1/")
                if path.endswith("/customJobs"):
                    jobs = [j.resource() for j in fake.jobs.values() if j.name.startswith(path)]
                    if "display_name" in query:
                        jobs = [j for j in jobs if j["displayName"] in query.replace("%22", "")]
                    return self._json(200, {"customJobs": jobs})
                job = fake.jobs.get(path)
                self._json(200, job.resource()) if job else self._json(404, NOT_FOUND)

        return Handler
