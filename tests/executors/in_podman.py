"""What a platform would start, started here with podman from the exact body batchcast rendered.

No cloud or cluster runs on these machines, but the containers they would
start can: the service's image (``batchcast build``), with the command, args
and env of the body, run by podman (runc, vfs; ENVIRONMENT.md):

- a Kubernetes pod spec (a Job's template, a KubernetesPodOperator's pod)
  with ``podman kube play``, which reads the pod spec as Kubernetes would;
- one container (a Vertex worker pool's container, a VM's container
  declaration) with ``podman run``, ``command`` as the entry point.

What the platform itself provides comes from stand-ins: the host network
(the storage emulator and PostgreSQL listen on 127.0.0.1), and ``extra_env``
or a ConfigMap for what a metadata server or a Secret would give. podman 4.3's
kube play cannot read a Kubernetes Secret (measured: "secret ... is not valid
JSON"), so a Secret named in ``envFrom`` is served as a ConfigMap of the same
name and keys; and on the host network it refuses port mappings, so a
container's ``ports`` are dropped (a probe naming one gets its number).
Nothing else in the pod spec is changed.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.executors.fake_api import Starter

LIMITS = ["nofile=4096:4096", "nproc=4096:4096"]  # runc cannot copy the caller's limits here (ENVIRONMENT.md)


class InPodman:
    """A started container; ``finish`` waits for its exit code and output, then removes what was started."""

    def __init__(self, podman: list[str], container: str, remove: Callable[[], None]):
        self.podman, self.container, self._remove = podman, container, remove

    def finish(self, timeout: float | None = None) -> tuple[int, str]:
        """The exit code and output; past ``timeout`` s (a pod's grace period, say) an AssertionError with them."""
        try:
            waited = subprocess.run([*self.podman, "wait", self.container], capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired:
            logs = subprocess.run([*self.podman, "logs", self.container], capture_output=True, text=True)
            self.stop()
            raise AssertionError(f"{self.container} still ran after {timeout} s:\n"
                                 f"{(logs.stdout + logs.stderr)[-3000:]}") from None
        logs = subprocess.run([*self.podman, "logs", self.container], capture_output=True, text=True)
        self.stop()
        code = waited.stdout.split()
        return (int(code[-1]) if code else 137), logs.stdout + logs.stderr  # none: removed while it ran

    def signal(self, name: str = "TERM") -> None:
        """Send the container's main process ``SIGname``, as the kubelet does to a pod it stops."""
        sent = subprocess.run([*self.podman, "kill", "--signal", name, self.container], capture_output=True,
                              text=True)
        assert sent.returncode == 0, f"podman kill --signal {name} {self.container}: {sent.stderr[-1000:]}"

    def stop(self) -> None:
        self._remove()


def kube_play(podman: list[str], folder: Path, secrets: dict[str, dict[str, str]] | None = None) -> Starter:
    """A Starter that plays the pod spec with ``podman kube play``; ``secrets``: name -> keys, as ConfigMaps."""

    def start(pod_spec: dict, name: str) -> InPodman:
        spec = copy.deepcopy(pod_spec)
        for container in spec["containers"]:
            for source in container.get("envFrom") or []:
                if "secretRef" in source:
                    source["configMapRef"] = source.pop("secretRef")
            _on_host_network(container)
        pod = folder / f"{name}.yaml"
        pod.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}))
        options = []
        for secret, keys in (secrets or {}).items():
            configmap = folder / f"{name}-{secret}.yaml"
            configmap.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": secret},
                                             "data": keys}))
            options += ["--configmap", str(configmap)]
        conf = folder / "containers.conf"  # kube play has no --ulimit: the defaults say it
        conf.write_text(f"[containers]\ndefault_ulimits = {json.dumps(LIMITS)}\n")
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        played = subprocess.run([*podman, "kube", "play", "--network", "host", *options, str(pod)], env=env,
                                capture_output=True, text=True)
        down = lambda: subprocess.run([*podman, "kube", "down", str(pod)], env=env, capture_output=True)  # noqa: E731
        if played.returncode != 0:
            down()
            raise AssertionError(f"podman kube play {pod.name} failed: {played.stderr[-2000:]}")
        return InPodman(podman, f"{name}-{spec['containers'][0]['name']}", down)

    return start


def _on_host_network(container: dict) -> None:
    """On the host network the container's ports are the host's: podman refuses port mappings there.

    So the ports go, and a probe naming one gets its number, as Kubernetes would resolve it.
    """
    numbers = {port.get("name"): port["containerPort"] for port in container.pop("ports", None) or []}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        action = (container.get(probe) or {}).get("httpGet") or {}
        if action.get("port") in numbers:
            action["port"] = numbers[action["port"]]


def podman_run(podman: list[str], extra_env: dict[str, str] | None = None) -> Starter:
    """A Starter that runs the pod spec's first container with ``podman run``: image, command, args, env."""

    def start(pod_spec: dict, name: str) -> InPodman:
        container = pod_spec["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []} | (extra_env or {})
        argv = [*podman, "run", "--detach", "--name", name, "--network=host"]
        argv += [option for limit in LIMITS for option in ("--ulimit", limit)]
        if container.get("command"):
            argv += ["--entrypoint", json.dumps(container["command"])]
        argv += [option for key, value in env.items() for option in ("--env", f"{key}={value}")]
        argv += [container["image"], *(container.get("args") or [])]
        remove = lambda: subprocess.run([*podman, "rm", "--force", name], capture_output=True)  # noqa: E731
        started = subprocess.run(argv, capture_output=True, text=True)
        if started.returncode != 0:
            remove()
            raise AssertionError(f"podman run {name} failed: {started.stderr[-2000:]}")
        return InPodman(podman, name, remove)

    return start
