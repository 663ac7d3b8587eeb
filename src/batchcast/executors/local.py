"""A subprocess in an isolated virtualenv, built with uv and cached by a hash of its requirements.

Command contract: the model's command runs in a virtualenv holding only the
model's requirements, while batchcast does the I/O from its own process.
Python contract: batchcast's worker and the model share the child process,
so its virtualenv holds the model's requirements plus batchcast's runtime
libraries pinned to the versions of the parent, and batchcast's own package
linked in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from batchcast.actions import PythonEnv, execute
from batchcast.errors import Cancelled, ExecutorError, RunTimeout
from batchcast.executors.base import Executor
from batchcast.isolation import process
from batchcast.isolation.environments import ensure_environment
from batchcast.model import pyfunc
from batchcast.runs.commit import ensure_committed, now
from batchcast.runs.manifest import Manifest, RunRequest, RunStatus
from batchcast.spec import ServiceSpec


class LocalExecutor(Executor):
    name = "local"
    worker = "batchcast.executors.child"  # the child's entry point (python -m WORKER REQUEST.json)

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        if spec.imports(spec.action(request.action)):  # an MLflow model's import runs none of the model's code
            return execute(request, spec=spec)
        with_runtime = spec.model.contract == "python"
        started = now()
        # One deadline from here, building the environment included, that the child can see: a child
        # that must stop something elsewhere (a Beam job) stops it before the executor's and the scheduler's.
        deadline = time.time() + spec.action(request.action).timeout
        try:
            environment = self.environment(spec, request)
        except ExecutorError as exc:  # a run like any other: `batchcast runs`, the dashboard and alerts see it
            Path(request.log_path).write_text(getattr(exc, "detail", "") or exc.message)
            return ensure_committed(spec, request, RunStatus.FAILED, started, exc)
        request = request.model_copy(update={"environment": environment.record()})
        if not with_runtime:
            return execute(request, PythonEnv(environment.path / "bin", environment.path), spec=spec)
        return self._child(request, spec, environment.path, deadline)

    def environment(self, spec: ServiceSpec, request: RunRequest | None = None):
        """The isolated environment the run gets (an executor built on this one adds to it)."""
        return ensure_environment(spec, spec.model.contract == "python", added=pyfunc.added_for(spec),
                                  requirements=pyfunc.requirements_for(spec, request and request.applied))

    def grace(self, spec: ServiceSpec, request: RunRequest) -> float:
        """Seconds the child gets, after SIGTERM, before its tree is killed: none, all it runs is local."""
        return 0.0

    def _child(self, request: RunRequest, spec: ServiceSpec, venv: Path, deadline: float) -> Manifest:
        log_path = Path(request.log_path)
        request_file = log_path.with_name("request.json")
        request_file.write_text(request.model_dump_json())
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["VIRTUAL_ENV"] = str(venv)
        env["BATCHCAST_DEADLINE"] = f"{deadline:.3f}"
        started = now()
        argv = [str(venv / "bin" / "python"), "-m", self.worker, str(request_file)]
        try:
            code = process.run(argv, cwd=spec.root, env=env, log_path=log_path,
                               timeout=spec.action(request.action).timeout, grace=self.grace(spec, request))
        except RunTimeout as exc:
            return ensure_committed(spec, request, RunStatus.TIMED_OUT, started, exc)
        except KeyboardInterrupt:  # the worker is killed already; record why it stopped
            ensure_committed(spec, request, RunStatus.CANCELLED, started, Cancelled())
            raise
        error = ExecutorError(f"the worker exited with code {code} before committing its run; "
                              f"last log lines: {process.tail(log_path)}",
                              "read the run's log; a crash here is a batchcast bug or an out-of-memory kill")
        return ensure_committed(spec, request, RunStatus.FAILED, started, error)
