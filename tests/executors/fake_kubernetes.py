"""A FAKE Kubernetes API server, for contract tests of the kubernetes executor; not a cluster.

No cluster can run on these machines, so this HTTP server on 127.0.0.1 plays
the API's side of exactly the calls the executor makes: create a Job, watch
it, list its pods, read a pod's log, delete the Job. Every Job it receives
is parsed into the client's own ``V1Job`` type and must serialize back to
the same body, so a field the API would not know fails the test.

What a "pod" does is the test's ``scenario``:

- ``run``: run the image's entry point on this machine with the Job's env
  (a kubelet without isolation, see fake_api.py), so the run really commits;
- ``oom``: the container is OOMKilled (exit 137) before committing;
- ``evicted``: the pod is evicted;
- ``image_pull``: the container waits forever in ErrImagePull;
- ``hang``: the container runs until the Job is deleted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kubernetes.client import ApiClient

from tests.executors.fake_api import FakeServer, JsonHandler, Starter, local

NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}


class FakeJob:
    def __init__(self, body: dict, scenario: str, start: Starter):
        self.body, self.scenario, self.name = body, scenario, body["metadata"]["name"]
        self.conditions: list[dict] = []
        self.container: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.pod_reason = self.pod_message = None
        self.log, self.workload, self.deleted, self.version = "", None, False, 1
        threading.Thread(target=self._live, args=(start,), daemon=True).start()

    def _live(self, start: Starter) -> None:
        time.sleep(0.2)
        if self.scenario == "run":
            self._set(container={"running": {}})
            self.workload = start(self.body["spec"]["template"]["spec"], self.name)
            code, self.log = self.workload.finish()
            self._end(code, "Completed" if code == 0 else "Error")
        elif self.scenario == "oom":
            self._end(137, "OOMKilled")
        elif self.scenario == "evicted":
            self.pod_reason, self.pod_message = "Evicted", "The node was low on resource: memory."
            self._end(137, "Error")
        elif self.scenario == "image_pull":
            self._set(container={"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}})
        elif self.scenario == "hang":
            self._set(container={"running": {}})

    def _end(self, code: int, reason: str) -> None:
        if self.deleted:
            return
        kind = "Complete" if code == 0 else "Failed"
        self._set(container={"terminated": {"exitCode": code, "reason": reason}},
                  conditions=[{"type": kind, "status": "True"}])

    def _set(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.version += 1

    def stop(self) -> None:
        self.deleted = True
        self.version += 1
        if self.workload:
            self.workload.stop()

    def job(self) -> dict:
        status = {"conditions": self.conditions} if self.conditions else {"active": 1}
        return {**self.body, "status": status,
                "metadata": {**self.body["metadata"], "resourceVersion": str(self.version)}}

    def pod(self) -> dict:
        status = {"phase": "Running", "containerStatuses": [
            {"name": "run", "image": "x", "imageID": "", "ready": False, "restartCount": 0, "state": self.container}]}
        if self.pod_reason:
            status.update(phase="Failed", reason=self.pod_reason, message=self.pod_message)
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{self.name}-pod0", "labels": {"job-name": self.name}},
                "spec": self.body["spec"]["template"]["spec"], "status": status}


class FakeKubernetes(FakeServer):
    """Start with ``with FakeKubernetes(...) as fake:``; ``fake.kubeconfig`` is a file for KUBECONFIG."""

    def __init__(self, spec: Path, batchcast: str, folder: Path):
        self.spec, self.folder = spec, folder
        self.start: Starter = local(batchcast, spec)
        self.scenario = "run"
        self.jobs: dict[str, FakeJob] = {}
        self.created: list[dict] = []
        self.requests: list[tuple[str, str]] = []

    def __enter__(self) -> FakeKubernetes:
        super().__enter__()
        self.kubeconfig = self.folder / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.endpoint}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
        return self

    def workloads(self) -> list:
        return list(self.jobs.values())

    def create(self, body: dict) -> dict:
        api = ApiClient()
        parsed = api.deserialize(_Response(body), "V1Job")
        assert api.sanitize_for_serialization(parsed) == body, "the Job body does not round-trip through V1Job"
        self.jobs[body["metadata"]["name"]] = FakeJob(body, self.scenario, self.start)
        self.created.append(body)  # last: a test that sees it may act on the job at once
        return self.jobs[body["metadata"]["name"]].job()

    def handler(self):
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                fake.requests.append(("POST", self.path))
                self._json(201, fake.create(json.loads(self._body())))

            def do_DELETE(self):
                fake.requests.append(("DELETE", self.path))
                job = fake.jobs.get(self.path.rsplit("/", 1)[-1])
                if job is None or job.deleted:
                    return self._json(404, NOT_FOUND)
                job.stop()
                self._json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path.endswith("/jobs") and query.get("watch", "").lower() == "true":
                    return self._watch(query["fieldSelector"].split("=", 1)[1], float(query.get("timeoutSeconds", 5)))
                if url.path.endswith("/pods"):
                    job = fake.jobs.get(query["labelSelector"].split("=", 1)[1])
                    items = [job.pod()] if job and not job.deleted else []
                    return self._json(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
                if url.path.endswith("/log"):
                    job = fake.jobs.get(url.path.split("/")[-2].removesuffix("-pod0"))
                    return self._send(200, (job.log if job else "").encode(), "text/plain")
                self._json(404, NOT_FOUND)

            def _watch(self, name: str, timeout: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                job, seen, deadline = fake.jobs.get(name), 0, time.monotonic() + timeout
                while job and time.monotonic() < deadline:
                    if job.version != seen:
                        seen = job.version
                        kind = "DELETED" if job.deleted else ("ADDED" if seen <= 2 else "MODIFIED")
                        self.wfile.write(json.dumps({"type": kind, "object": job.job()}).encode() + b"\n")
                        self.wfile.flush()
                        if job.deleted or job.conditions:
                            break
                    time.sleep(0.05)

        return Handler


class _Response:
    def __init__(self, body: dict):
        self.data = json.dumps(body).encode()

    def getheader(self, name, default=None):
        return "application/json" if name.lower() == "content-type" else default
