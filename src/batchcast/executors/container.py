"""The service's image, run by podman or docker on this machine.

The container runs ``batchcast run ACTION --executor inline`` (the image is
the isolation) with the run id fixed in advance; this process waits on the
container's state through the engine, saves the container's log, and reads
the outcome from the manifest the container committed. A container that
ends without committing (killed, out of memory) gets a failed manifest
that says how it ended.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from batchcast.errors import ExecutorError
from batchcast.executors.remote import Ended, RemoteExecutor
from batchcast.isolation.images import engine_command, engine_run, identity, run_env
from batchcast.runs.manifest import RunRequest
from batchcast.spec import ServiceSpec
from batchcast.warehouses import local_file

# Passed by name (the value comes from this process's environment, never the command line).
PASS_THROUGH = ("AWS_", "GOOGLE_", "PG", "STORAGE_EMULATOR_HOST", "BATCHCAST_BIGQUERY_ENDPOINT", "BATCHCAST__",
                "GCSFS_")


@dataclass
class Container:
    """A started container, by name, and the engine that runs it."""

    engine: list[str]  # the engine's argv prefix
    name: str


class ContainerExecutor(RemoteExecutor[Container]):
    name = "container"
    removed = "killed"

    def start(self, request: RunRequest, spec: ServiceSpec) -> Container:
        container = Container(_engine(), container_name(request))
        options, env = self._options(spec, request, container.engine)
        try:
            engine_run(container.engine, "run", "--detach", "--name", container.name, *options, spec.image_tag,
                       env=env)
        except ExecutorError:  # a container created but not started still holds its name
            self.remove(container)
            raise
        return container

    def wait(self, container: Container, timeout: float) -> Ended | None:
        try:
            out = subprocess.run([*container.engine, "wait", container.name], capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        code = _exit_code(container, out)
        state = engine_run(container.engine, "inspect", "--format", "{{.State.OOMKilled}}", container.name,
                           check=False)
        return Ended(ExecutorError(
            f"container {container.name} exited with code {code}{_how(code, state == 'true')} before committing "
            "its run", "read the run's log; run it again once the cause is fixed"))

    def stop(self, container: Container) -> None:
        engine_run(container.engine, "kill", container.name, check=False)

    def save_log(self, container: Container, request: RunRequest) -> None:
        result = subprocess.run([*container.engine, "logs", container.name], capture_output=True, text=True)
        with open(request.log_path, "a") as log:
            log.write(result.stdout + result.stderr)

    def remove(self, container: Container) -> None:
        engine_run(container.engine, "rm", "--force", container.name, check=False)

    def describe(self, container: Container) -> str:
        return f"container {container.name}"

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        engine_run(_engine(), "kill", container_name(request), check=False)

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


def container_name(request: RunRequest) -> str:
    return f"batchcast-{request.run_id.replace('/', '-')}".lower().replace(".", "-")


def _engine() -> list[str]:
    return engine_command(os.environ.get("BATCHCAST_CONTAINER_ENGINE"))


def _exit_code(container: Container, out: subprocess.CompletedProcess) -> int:
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ExecutorError(f"cannot tell how container {container.name} ended: {out.stderr.strip()[-300:]}",
                            "check the container engine") from None


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
