"""The kubernetes executor: contract tests against a FAKE Kubernetes API (tests/executors/fake_kubernetes.py).

No cluster runs here. These tests check the requests the executor sends
(parsed by the official client's own types) and how it reads what the API
answers; they are not cluster tests.
"""

from __future__ import annotations

import pytest

from batchcast import RunStatus, Service
from batchcast.errors import SpecError
from batchcast.testing.executors import ContractAgainstFakeAPI, cancel_mid_run
from tests.conftest import BATCHCAST
from tests.executors.fake_kubernetes import FakeKubernetes


@pytest.fixture
def fake_api(adopted, tmp_path, monkeypatch):
    with FakeKubernetes(adopted / "batchcast.toml", BATCHCAST, tmp_path) as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig))
        yield fake


class TestKubernetesContractAgainstFakeAPI(ContractAgainstFakeAPI):
    @pytest.fixture
    def executor(self, fake_api):
        return "kubernetes"



def configure(spec, extra: str) -> None:
    spec.write_text(spec.read_text().replace("[actions.application]",
                                             f"[actions.training.kubernetes]\n{extra}\n\n[actions.application]"))


def test_job_body_has_image_env_secrets_resources_placement_and_no_retries(adopted, fake_api):
    spec = adopted / "batchcast.toml"
    configure(spec, 'image = "europe-docker.pkg.dev/acme/models/churn:1"\nnamespace = "models"\n'
                    'service_account = "churn-runner"\nsecrets = ["churn-credentials"]\n'
                    'node_selector = { "cloud.google.com/gke-nodepool" = "batch" }\n'
                    'resources = { requests = { cpu = "1", memory = "2Gi" }, limits = { memory = "4Gi" } }\n'
                    'ttl_seconds_after_finished = 600')
    manifest = Service(spec).run("training", "2026-01-01", executor="kubernetes")
    assert manifest.succeeded and manifest.executor == "kubernetes"
    [job] = fake_api.created
    assert ("POST", "/apis/batch/v1/namespaces/models/jobs") in fake_api.requests
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "churn-runner"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "batch"}
    [container] = pod["containers"]
    assert container["image"] == "europe-docker.pkg.dev/acme/models/churn:1"
    assert container["envFrom"] == [{"secretRef": {"name": "churn-credentials"}}]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ACTION"] == "training" and env["LOGICAL_DATE"] == "2026-01-01" and env["NAME"] == "churn"
    assert manifest.run_id.endswith(env["RUN_TS"])
    assert job["metadata"]["annotations"]["batchcast/run-id"] == manifest.run_id
    assert "log.txt" in manifest.files


@pytest.mark.parametrize("url", ["postgresql://svc:s3cr3t@db/warehouse", "postgresql://svc@db/warehouse?password=s3cr3t"])
def test_a_password_in_a_url_is_refused_before_any_job_exists(adopted, fake_api, monkeypatch, url):
    monkeypatch.setenv("BATCHCAST__WAREHOUSE__URL", url)
    with pytest.raises(SpecError) as err:
        Service(adopted / "batchcast.toml").run("training", executor="kubernetes")
    assert "Secret" in err.value.fix and "s3cr3t" not in str(err.value) and fake_api.created == []


@pytest.mark.parametrize("scenario, expected", [
    ("oom", "was OOMKilled (out of memory, exit code 137)"),
    ("evicted", "was evicted: The node was low on resource: memory."),
])
def test_a_pod_that_dies_without_committing_fails_with_the_reason(adopted, fake_api, scenario, expected):
    fake_api.scenario = scenario
    manifest = Service(adopted / "batchcast.toml").run("training", executor="kubernetes")
    assert manifest.status is RunStatus.FAILED and expected in manifest.error["message"]
    assert "before the run committed" in manifest.error["message"]


def test_an_image_that_cannot_be_pulled_fails_fast_and_deletes_the_job(adopted, fake_api):
    fake_api.scenario = "image_pull"
    spec = adopted / "batchcast.toml"
    configure(spec, "poll_interval = 1")
    # Waiting it out would end as 'timed out' after these 30 s; failing fast ends 'failed' with the reason.
    spec.write_text(spec.read_text().replace("[actions.training]\n", "[actions.training]\ntimeout = 30\n"))
    manifest = Service(spec).run("training", executor="kubernetes")
    assert manifest.status is RunStatus.FAILED and "ErrImagePull" in manifest.error["message"]
    assert any(method == "DELETE" for method, _ in fake_api.requests)


def test_cancel_deletes_the_job_and_the_run_fails(adopted, fake_api):
    fake_api.scenario = "hang"
    manifest = cancel_mid_run(Service(adopted / "batchcast.toml"), "kubernetes", fake_api.created,
                              lambda job: {e["name"]: e["value"]
                                           for e in job["spec"]["template"]["spec"]["containers"][0]["env"]})
    assert manifest.status is RunStatus.FAILED and "deleted (cancelled)" in manifest.error["message"]
