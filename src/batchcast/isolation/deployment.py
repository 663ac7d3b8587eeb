"""The service's image as a long-running Kubernetes Deployment: what ``render-serving`` and ``render-streaming`` share.

A surface (``serve``, ``stream``) runs the image ``batchcast build`` made,
whose environment is the model's, so the command runs there with
``--inline``. What both need is here, once: the refusals of a store the pods
cannot read or whose URL holds a password, the objects' name and labels, the
container's resources (``[serve]``/``[stream]`` ``cpu`` and ``memory``; the CPU
limit twice the request), Secrets by reference, the Deployment with its
probes, the CPU HorizontalPodAutoscaler, and writing the objects as YAML.

The objects are the Kubernetes client's own model classes (the API's
types); a custom resource the client has no class for (KEDA's) is a plain
dict, and is written the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchcast.errors import MissingExtra, SpecError
from batchcast.redaction import has_secret
from batchcast.spec import ServiceSpec
from batchcast.spec.serve import Deployed

# The model is fetched, verified and loaded before the port listens: 60 x 5 s before liveness counts.
STARTUP_PERIOD, STARTUP_FAILURES = 5, 60


def models(command: str):
    """The Kubernetes client's model classes (``kubernetes.client``); MissingExtra naming ``command`` without it."""
    try:
        from kubernetes import client
    except ImportError:
        raise MissingExtra(f"batchcast kubernetes {command}", "kubernetes") from None
    return client


@dataclass(frozen=True)
class Surface:
    """One of the image's long-running commands on Kubernetes, and its settings table (``[serve]``, ``[stream]``)."""

    spec: ServiceSpec
    command: str  # "serve" or "stream": the container's name, the last part of the objects' name
    settings: Deployed

    @property
    def where(self) -> str:
        return f"[{self.command}]"

    @property
    def name(self) -> str:
        """A DNS-1123 name for the objects: the service, its version and the command."""
        text = f"{self.spec.service.name}-{self.spec.service.version}-{self.command}".lower()
        return re.sub(r"[^a-z0-9-]", "-", text)[:63].strip("-")

    @property
    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/managed-by": "batchcast",
                "batchcast/service": self.spec.service.name, "batchcast/version": self.spec.service.version}

    def check_url(self, key: str, url: str) -> None:
        """SpecError if ``url`` (the ``[key]`` URL) holds a password, which the Deployment would carry in clear."""
        if has_secret(url):  # anyone who can read the Deployment could read it
            raise SpecError(f"the {key} URL holds a password, which the Deployment would carry in clear",
                            f"put BATCHCAST__{key.upper()}__URL in a Secret listed in {self.where} secrets")

    def check_store(self) -> None:
        """SpecError for a store the pods cannot read (a local folder) or whose URL holds a password."""
        url = self.spec.storage_url
        if "://" not in url or url.startswith("file://"):
            raise SpecError(f"[storage] url is the local folder {url}, which the pods cannot read",
                            "set [storage] url to the bucket the cluster reads, e.g. gs://bucket/models or s3://...")
        self.check_url("storage", url)

    def deployment(self, args: list[str], port: tuple[str, int], probes: dict[str, str], grace: int,
                   env: dict[str, str] | None = None, annotations: dict[str, str] | None = None):
        """The V1Deployment running the image with ``args``.

        ``port`` is the container port's (name, number); ``probes`` the paths of its ``readiness`` and
        ``liveness`` probes (the startup probe asks the liveness one); ``grace`` the seconds between
        SIGTERM and SIGKILL; ``env`` what the container gets beside the store's URL.
        """
        k, s = models(f"render-{self.command}"), self.settings
        self.check_store()
        checks = {kind: k.V1Probe(http_get=k.V1HTTPGetAction(path=path, port=port[0]), period_seconds=10,
                                  timeout_seconds=5, failure_threshold=3) for kind, path in probes.items()}
        startup = k.V1Probe(http_get=k.V1HTTPGetAction(path=probes["liveness"], port=port[0]),
                            period_seconds=STARTUP_PERIOD, failure_threshold=STARTUP_FAILURES)
        values = {"BATCHCAST__STORAGE__URL": self.spec.storage_url, **(env or {})}
        container = k.V1Container(
            name=self.command, image=self.spec.image_tag, args=args,
            ports=[k.V1ContainerPort(name=port[0], container_port=port[1])],
            env=[k.V1EnvVar(name=key, value=value) for key, value in values.items()],
            env_from=[k.V1EnvFromSource(secret_ref=k.V1SecretEnvSource(name=n)) for n in s.secrets] or None,
            resources=k.V1ResourceRequirements(requests={"cpu": s.cpu, "memory": s.memory},
                                               limits={"cpu": twice(s.cpu), "memory": s.memory}),
            readiness_probe=checks["readiness"], liveness_probe=checks["liveness"], startup_probe=startup)
        pod = k.V1PodSpec(containers=[container], service_account_name=s.service_account,
                          termination_grace_period_seconds=grace)
        return k.V1Deployment(
            api_version="apps/v1", kind="Deployment", metadata=k.V1ObjectMeta(name=self.name, labels=self.labels),
            spec=k.V1DeploymentSpec(
                replicas=s.min_replicas, selector=k.V1LabelSelector(match_labels=self.labels),
                template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=self.labels, annotations=annotations),
                                             spec=pod)))

    def cpu_autoscaler(self):
        """The V2HorizontalPodAutoscaler keeping ``min_replicas``..``max_replicas`` pods at ``cpu_target`` % CPU."""
        k, s = models(f"render-{self.command}"), self.settings
        return k.V2HorizontalPodAutoscaler(
            api_version="autoscaling/v2", kind="HorizontalPodAutoscaler",
            metadata=k.V1ObjectMeta(name=self.name, labels=self.labels),
            spec=k.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=k.V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment",
                                                                 name=self.name),
                min_replicas=s.min_replicas, max_replicas=s.max_replicas,
                metrics=[k.V2MetricSpec(type="Resource", resource=k.V2ResourceMetricSource(
                    name="cpu", target=k.V2MetricTarget(type="Utilization", average_utilization=s.cpu_target)))]))

    def write(self, objects: list[Any], out: Path) -> list[Path]:
        """Each object (a client model, or a custom resource's dict) as ``out/NAME-KIND.yaml``; the paths written."""
        import yaml
        from kubernetes.client import ApiClient

        out.mkdir(parents=True, exist_ok=True)
        written = []
        for obj in objects:
            kind = obj["kind"] if isinstance(obj, dict) else obj.kind
            path = out / f"{self.name}-{kind.lower()}.yaml"
            path.write_text(yaml.safe_dump(ApiClient().sanitize_for_serialization(obj), sort_keys=False))
            written.append(path)
        return written


def twice(cpu: str) -> str:
    """Twice a Kubernetes CPU quantity, in millicores: the limit that lets a pod burst over its request."""
    if cpu.endswith("m"):
        return f"{int(float(cpu[:-1]) * 2)}m"
    return f"{int(float(cpu) * 2000)}m"
