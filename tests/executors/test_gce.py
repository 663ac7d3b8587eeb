"""The gce executor: contract tests against a FAKE Compute Engine API (tests/executors/fake_compute.py).

No Google Cloud here. These tests check the instances the executor asks for
(parsed strictly by the official client's own types), how it waits on the
API, and that the run inside the "VM" deletes its own VM; not cloud tests.
"""

from __future__ import annotations

import pytest
import yaml

from batchcast import RunStatus, Service
from batchcast.testing.executors import ContractAgainstFakeAPI, cancel_mid_run
from tests.executors.fake_api import fake_api_fixture
from tests.executors.fake_compute import FakeCompute

GCE = '[actions.training.gce]\nproject = "acme"\nzone = "europe-west1-b"\npoll_interval = 0.2\n'


fake_api = fake_api_fixture(FakeCompute, GCE, "BATCHCAST_COMPUTE_ENDPOINT")


class TestGceContractAgainstFakeAPI(ContractAgainstFakeAPI):
    @pytest.fixture
    def executor(self, fake_api):
        return "gce"



def test_the_instance_declares_the_container_and_the_run_deletes_its_own_vm(adopted, fake_api):
    manifest = Service(adopted / "batchcast.toml").run("training", "2026-01-01", executor="gce")
    assert manifest.succeeded and manifest.executor == "gce"
    [body] = fake_api.inserted
    assert body["machineType"] == "zones/europe-west1-b/machineTypes/e2-standard-4"
    assert body["disks"][0]["initializeParams"]["sourceImage"] == "projects/cos-cloud/global/images/family/cos-stable"
    items = {i["key"]: i["value"] for i in body["metadata"]["items"]}
    declaration = yaml.safe_load(items["gce-container-declaration"])["spec"]
    assert declaration["restartPolicy"] == "Never"
    [container] = declaration["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == "localhost/batchcast/churn:1" and env["ACTION"] == "training"
    assert env["BATCHCAST_DELETE_VM"] == f"projects/acme/zones/europe-west1-b/instances/{body['name']}"
    assert manifest.run_id.endswith(env["RUN_TS"])
    assert fake_api.deletes == [body["name"]]  # once: by the run itself; the executor found it gone


def test_a_vm_that_never_comes_up_is_deleted_and_the_run_fails(adopted, fake_api):
    fake_api.scenario = "never_up"
    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace(GCE, GCE + "boot_timeout = 1\n"))
    manifest = Service(spec).run("training", executor="gce")
    assert manifest.status is RunStatus.FAILED and "never came up: still PROVISIONING" in manifest.error["message"]
    assert fake_api.deletes == [fake_api.inserted[0]["name"]]


def test_a_vm_that_stops_without_committing_is_deleted_and_the_run_fails(adopted, fake_api):
    fake_api.scenario = "crash"
    manifest = Service(adopted / "batchcast.toml").run("training", executor="gce")
    assert manifest.status is RunStatus.FAILED
    assert "ended (TERMINATED) before the run committed" in manifest.error["message"]
    assert fake_api.deletes == [fake_api.inserted[0]["name"]]
    log = (adopted / ".batchcast/artifacts" / manifest.run_id / "log.txt").read_text()
    assert "container exited with code 139" in log  # the VM's serial output, saved into the run


def test_cancel_deletes_the_vm_and_the_run_fails(adopted, fake_api):
    fake_api.scenario = "hang"
    manifest = cancel_mid_run(Service(adopted / "batchcast.toml"), "gce", fake_api.inserted, declared_env)
    assert manifest.status is RunStatus.FAILED
    assert "ended (deleted) before the run committed" in manifest.error["message"]


def declared_env(instance: dict) -> dict[str, str]:
    items = {i["key"]: i["value"] for i in instance["metadata"]["items"]}
    [container] = yaml.safe_load(items["gce-container-declaration"])["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}
