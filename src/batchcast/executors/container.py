"""The service's image, run by podman or docker on this machine.

The container runs ``batchcast run ACTION --executor inline`` (the image is
the isolation) with the run id fixed in advance; this process waits on the
container's state through the engine, saves the container's log, and reads
the outcome from the manifest the container committed. A container that
ends without committing (killed, out of memory) gets a failed manifest
that says how it ended.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

from batchcast.commit import ensure_committed
from batchcast.containers import engine_command, engine_run, identity, run_env
from batchcast.errors import ExecutorError, RunTimeout
from batchcast.executors.base import Executor
from batchcast.runs import Manifest, RunRequest, RunStatus
from batchcast.spec import ServiceSpec
from batchcast.warehouses import local_file

# Passed by name (the value comes from this process's environment, never the command line).
PASS_THROUGH = ("AWS_", "GOOGLE_", "PG", "STORAGE_EMULATOR_HOST", "BATCHCAST_BIGQUERY_ENDPOINT", "BATCHCAST__",
                "GCSFS_")


class ContainerExecutor(Executor):
    name = "container"

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        engine = engine_command(os.environ.get("BATCHCAST_CONTAINER_ENGINE"))
        started = dt.datetime.now(dt.timezone.utc)
        name = container_name(spec, request)
        options, env = self._options(spec, request, engine)
        try:
            engine_run(engine, "run", "--detach", "--name", name, *options, spec.image_tag, env=env)
        except ExecutorError:
            engine_run(engine, "rm", "--force", name, check=False)
            raise
        try:
            code = self._wait(engine, name, spec.action(request.action).timeout)
        except RunTimeout as exc:
            engine_run(engine, "kill", name, check=False)
            self._save_log(engine, name, request)
            engine_run(engine, "rm", "--force", name, check=False)
            return ensure_committed(spec, request, RunStatus.TIMED_OUT, started, exc)
        except BaseException:  # interrupted: leave no container behind
            engine_run(engine, "rm", "--force", name, check=False)
            raise
        state = engine_run(engine, "inspect", "--format", "{{.State.OOMKilled}}", name, check=False)
        self._save_log(engine, name, request)
        engine_run(engine, "rm", "--force", name, check=False)
        return ensure_committed(spec, request, RunStatus.FAILED, started, ExecutorError(
            f"container {name} exited with code {code}{_how(code, state == 'true')} before committing its run",
            "read the run's log; run it again once the cause is fixed"))

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        engine_run(engine_command(os.environ.get("BATCHCAST_CONTAINER_ENGINE")), "kill",
                   container_name(spec, request), check=False)

    def _options(self, spec: ServiceSpec, request: RunRequest, engine: list[str]) -> tuple[list[str], dict]:
        """The engine's options, and its environment: values travel there, only names on the command line."""
        digest, image_id = identity(engine, spec.image_tag)
        env = {**run_env(spec, request, self.name), "BATCHCAST_IMAGE_DIGEST": digest, "BATCHCAST_IMAGE_ID": image_id}
        # Explicit limits: without them runc copies the caller's, which a rootful podman may not set here.
        options = [f"--network={spec.image.network}", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
        names = sorted({*env, *(key for key in os.environ if key.startswith(PASS_THROUGH))})
        for key in names:
            options += ["--env", key]
        for folder in _local_folders(spec):  # same path inside, so every URL means the same thing
            options += ["--volume", f"{folder}:{folder}"]
        return options, {**os.environ, **env}

    def _wait(self, engine: list[str], name: str, timeout: float) -> int:
        try:
            out = subprocess.run([*engine, "wait", name], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunTimeout(f"container {name} ran longer than its timeout of {timeout:g} s and was killed",
                             "raise [actions.*] timeout, or make the job faster") from None
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise ExecutorError(f"cannot tell how container {name} ended: {out.stderr.strip()[-300:]}",
                                "check the container engine") from None

    def _save_log(self, engine: list[str], name: str, request: RunRequest) -> None:
        result = subprocess.run([*engine, "logs", name], capture_output=True, text=True)
        with open(request.log_path, "a") as log:
            log.write(result.stdout + result.stderr)


def container_name(spec: ServiceSpec, request: RunRequest) -> str:
    s = spec.service
    return f"batchcast-{s.name}-{s.version}-{request.action}-{request.run_ts}".lower().replace(".", "-")


def _local_folders(spec: ServiceSpec) -> list[str]:
    folders = []
    if "://" not in spec.storage_url:
        folders.append(Path(spec.storage_url))
    warehouse = local_file(spec.warehouse_url)
    if warehouse is not None:
        folders.append(warehouse.parent)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return sorted({str(f) for f in folders})


def _how(code: int, oom: bool) -> str:
    if oom:
        return " (OOMKilled: out of memory; raise the container's memory)"
    if code == 137:
        return " (killed by SIGKILL: 'kill', or out of memory)"
    if code == 143:
        return " (stopped by SIGTERM)"
    return ""
