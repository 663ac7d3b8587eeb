"""The vertex executor: contract tests against a FAKE Vertex AI API (tests/executors/fake_vertex.py).

No Google Cloud here. These tests check the CustomJobs the executor asks for
(parsed strictly by the official client's own types) and how it waits on
and reads the API's answers; they are not cloud tests.
"""

from __future__ import annotations

import pytest

from batchcast import RunStatus, Service
from batchcast.testing.executors import ContractAgainstFakeAPI, cancel_mid_run
from tests.executors.fake_api import fake_api_fixture
from tests.executors.fake_vertex import FakeVertex

VERTEX = ('[actions.training.vertex]\nproject = "acme"\nregion = "europe-west4"\nmachine_type = "n2-standard-8"\n'
          'service_account = "churn@acme.iam.gserviceaccount.com"\npoll_interval = 0.2\n')


fake_api = fake_api_fixture(FakeVertex, VERTEX, "BATCHCAST_VERTEX_ENDPOINT")


class TestVertexContractAgainstFakeAPI(ContractAgainstFakeAPI):
    @pytest.fixture
    def executor(self, fake_api):
        return "vertex"



def test_the_custom_job_has_the_image_env_machine_and_no_restarts(adopted, fake_api):
    manifest = Service(adopted / "batchcast.toml").run("training", "2026-01-01", executor="vertex")
    assert manifest.succeeded and manifest.executor == "vertex"
    [job] = fake_api.created
    spec = job["jobSpec"]
    assert spec["serviceAccount"] == "churn@acme.iam.gserviceaccount.com"
    assert spec["scheduling"]["timeout"] == "3600s" and not spec["scheduling"].get("restartJobOnWorkerRestart")
    [pool] = spec["workerPoolSpecs"]
    assert pool["machineSpec"] == {"machineType": "n2-standard-8"} and pool["replicaCount"] == "1"
    env = worker_env(job)
    assert pool["containerSpec"]["imageUri"] == "localhost/batchcast/churn:1"
    assert env["ACTION"] == "training" and env["LOGICAL_DATE"] == "2026-01-01"
    assert manifest.run_id.endswith(env["RUN_TS"]) and job["displayName"] == manifest.run_id.replace("/", "-")
    assert list(fake_api.jobs)[0].startswith("projects/acme/locations/europe-west4/customJobs/")


def test_a_job_that_fails_before_running_fails_the_run_with_vertex_error(adopted, fake_api):
    fake_api.scenario = "quota"
    manifest = Service(adopted / "batchcast.toml").run("training", executor="vertex")
    assert manifest.status is RunStatus.FAILED and "JOB_STATE_FAILED" in manifest.error["message"]
    assert "exceed quota limits" in manifest.error["message"]


def test_cancel_cancels_the_job_and_the_run_fails(adopted, fake_api):
    fake_api.scenario = "hang"
    manifest = cancel_mid_run(Service(adopted / "batchcast.toml"), "vertex", fake_api.created, worker_env)
    assert manifest.status is RunStatus.FAILED and "JOB_STATE_CANCELLED" in manifest.error["message"]
    assert len(fake_api.cancels) == 1


def worker_env(job: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
