"""The executor contract: an executor's test module supplies the fixture ``executor`` and inherits ``ExecutorContract``.

``executor`` is the name the executor is registered under (in
``batchcast.registry.EXECUTORS``, for the test's duration if need be). Each
test runs the example command-contract service (``churn_repo``, adopted into
the service folder ``adopted``: both fixtures come with the suite) through the
executor and checks the committed manifest: the outcome is read from there,
never from logs. A test that changes the repository or its spec calls
``build`` before it runs, for executors that run a package of them (the
container executor's image); ``check_interpreter`` says which Python the
model's code must have run in.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from batchcast.executors import get_executor
from batchcast.runs.manifest import Manifest, RunRequest, RunStatus
from batchcast.service import Service
from batchcast.spec import scaffold


def example_repository(folder: Path) -> Path:
    """An existing command-contract repository at ``folder``: the init template without its spec."""
    scaffold.init(folder)
    (folder / "batchcast.toml").unlink()
    return folder


def adopt_example(repo: Path, service: Path) -> Path:
    """The service folder ``service``, beside ``repo``, with the spec `batchcast adopt` writes for it."""
    service.mkdir()
    scaffold.adopt(repo, "churn", "predictions", "player_id:STRING,label:BOOL", service)
    return service


def patch_training(repo, code: str) -> None:
    task = repo / "prediction" / "task.py"
    task.write_text(task.read_text().replace(
        "    def training(self) -> None:\n", "    def training(self) -> None:\n" + code))


class ExecutorContract:
    @pytest.fixture
    def churn_repo(self, tmp_path: Path) -> Path:
        return example_repository(tmp_path / "churn-model")

    @pytest.fixture
    def adopted(self, churn_repo: Path, tmp_path: Path) -> Path:
        return adopt_example(churn_repo, tmp_path / "service")

    def build(self, adopted: Path) -> None:
        """Package the repository and spec as the test left them, for an executor that runs a package; else nothing."""

    def test_success_is_committed_with_log_and_outputs(self, executor, adopted):
        self.build(adopted)
        manifest = Service(adopted / "batchcast.toml").run("training", "2026-01-01", executor=executor)
        assert manifest.status is RunStatus.SUCCEEDED and manifest.executor == executor
        assert {"output/model.joblib", "log.txt"} <= set(manifest.files)

    def test_nonzero_exit_is_a_failed_manifest(self, executor, adopted, churn_repo):
        patch_training(churn_repo, "        raise SystemExit(3)\n")
        self.build(adopted)
        manifest = Service(adopted / "batchcast.toml").run("training", executor=executor)
        assert manifest.status is RunStatus.FAILED
        assert "exited with code 3" in manifest.error["message"]

    def test_timeout_is_recorded(self, executor, adopted, churn_repo):
        patch_training(churn_repo, "        import time; time.sleep(30)\n")
        spec = adopted / "batchcast.toml"
        spec.write_text(spec.read_text().replace("[actions.training]\n", "[actions.training]\ntimeout = 1\n"))
        self.build(adopted)
        manifest = Service(spec).run("training", executor=executor)
        assert manifest.status is RunStatus.TIMED_OUT
        assert manifest.error["type"] == "RunTimeout"

    def test_model_sees_its_interpreter(self, executor, adopted, churn_repo):
        patch_training(churn_repo, "        import sys; (self.output / 'prefix.json').write_text("
                                   "json.dumps(sys.prefix))\n")
        self.build(adopted)
        manifest = Service(adopted / "batchcast.toml").run("training", executor=executor)
        stored = adopted / ".batchcast/artifacts" / manifest.run_id / "output/prefix.json"
        self.check_interpreter(json.loads(stored.read_text()))


class ContractAgainstFakeAPI(ExecutorContract):
    """The contract for an executor whose platform is a fake API on 127.0.0.1 (not a cluster or a cloud).

    The fake's workload runs the image's entry point with batchcast's own interpreter.
    """

    def check_interpreter(self, prefix):
        assert prefix == sys.prefix


def with_table(spec: Path, table: str) -> None:
    """Add an ``[actions.X.table]`` block to the adopted repository's spec (before its application action)."""
    spec.write_text(spec.read_text().replace("[actions.application]", table + "\n[actions.application]"))


def cancel_mid_run(service: Service, executor: str, submitted: list, env_of) -> Manifest:
    """Run training in a thread, cancel it through the executor once the platform holds it, return its manifest.

    ``submitted`` is the fake API's list of received bodies; ``env_of`` reads a body's container env.
    """
    result = {}
    thread = threading.Thread(target=lambda: result.update(m=service.run("training", executor=executor)))
    thread.start()
    for _ in range(200):
        if submitted:
            break
        time.sleep(0.05)
    env = env_of(submitted[0])
    request = RunRequest(name=service.name, version=service.version, spec_path=str(service.spec.file),
                         action="training", logical_date=env["LOGICAL_DATE"],
                         run_ts=env["RUN_TS"], executor=executor, log_path="/dev/null")
    get_executor(executor).cancel(request, service.spec)
    thread.join(timeout=60)
    assert not thread.is_alive(), f"the {executor} run did not end after its cancel"
    return result["m"]
