"""RemoteExecutor's own guarantees, on the plainest platform there is: a `batchcast run` process on this machine.

The process executor below supplies only the platform calls, as the container,
kubernetes, vertex and gce executors do; the contract then holds through the
base's ``submit`` alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchcast import Service, registry
from batchcast.errors import ExecutorError
from batchcast.executors.remote import Ended, RemoteExecutor
from batchcast.isolation.images import run_env
from batchcast.runs.manifest import RunRequest, RunStatus
from batchcast.spec import ServiceSpec
from batchcast.spec.service import composed
from batchcast.testing.executors import ExecutorContract, patch_training
from tests.conftest import BATCHCAST


@dataclass
class Process:
    popen: subprocess.Popen
    log: Path


class ProcessExecutor(RemoteExecutor[Process]):
    name = "process"
    removed = "killed"

    def start(self, request: RunRequest, spec: ServiceSpec) -> Process:
        log = Path(request.log_path).with_name("process.log")
        argv = [BATCHCAST, "--spec", str(spec.file), "run", request.action, "--executor", "inline",
                "--date", request.logical_date.isoformat(), "--run-ts", request.run_ts]
        with open(log, "w") as out:
            popen = subprocess.Popen(argv + (["--model", request.model_run] if request.model_run else []),
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **run_env(spec, request, self.name)})
        return Process(popen, log)

    def wait(self, process: Process, timeout: float) -> Ended | None:
        try:
            code = process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return Ended(ExecutorError(f"process {process.popen.pid} exited with code {code} before committing its run"))

    def save_log(self, process: Process, request: RunRequest) -> None:
        with open(request.log_path, "a") as log:
            log.write(process.log.read_text())

    def remove(self, process: Process) -> None:
        if process.popen.poll() is None:  # its group: the model's command goes with it
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()

    def describe(self, process: Process) -> str:
        return f"process {process.popen.pid}"


class InterruptedExecutor(ProcessExecutor):
    """Interrupted (Ctrl-C) while it waits, once its process is running."""

    started: list[Process] = []

    def start(self, request: RunRequest, spec: ServiceSpec) -> Process:
        self.started.append(super().start(request, spec))
        return self.started[-1]

    def wait(self, process: Process, timeout: float) -> Ended | None:
        raise KeyboardInterrupt


@pytest.fixture
def registered(monkeypatch):
    rows = {**registry.EXECUTORS,
            **{name: registry.Backend(name, f"{__name__}:{cls.__name__}")
               for name, cls in (("process", ProcessExecutor), ("interrupted", InterruptedExecutor))}}
    monkeypatch.setattr(registry, "EXECUTORS", rows)
    composed.cache_clear()
    yield
    composed.cache_clear()


class TestRemoteExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, registered):
        return "process"

    def check_interpreter(self, prefix):
        assert prefix == sys.prefix  # the process runs batchcast's own `batchcast run`


def test_an_interrupted_wait_leaves_no_workload_behind(registered, adopted, churn_repo):
    patch_training(churn_repo, "        import time; time.sleep(30)\n")
    with pytest.raises(KeyboardInterrupt):
        Service(adopted / "batchcast.toml").run("training", executor="interrupted")
    [process] = InterruptedExecutor.started
    assert process.popen.poll() == -signal.SIGKILL  # killed, not left running
    [run] = Service(adopted / "batchcast.toml").runs("training")  # and recorded as its user stopped it
    assert run.status is RunStatus.CANCELLED and run.error["type"] == "Cancelled"
