"""``batchcast kubernetes render-serving``: a Deployment, a Service and a HorizontalPodAutoscaler for ``serve``.

Built from the Kubernetes client's own model classes (the API's types),
then written as YAML for ``kubectl apply -f``. The Deployment runs the
service's image (``batchcast build``), whose environment is the model's, so
the server runs there with ``--inline``; it listens on all the pod's
addresses (the Service reaches it there), which is why ``--host`` says so.
Credentials come from Secrets by reference, never from values here.
"""

from __future__ import annotations

import re
from pathlib import Path

from batchcast.errors import MissingExtra, SpecError
from batchcast.redaction import has_secret

PROBES = {"readiness": "/v2/health/ready", "liveness": "/v2/health/live"}


def manifests(spec, port: int = 8080) -> list:
    """The V1Deployment, V1Service and V2HorizontalPodAutoscaler serving ``spec``'s model."""
    try:
        from kubernetes import client as k
    except ImportError:
        raise MissingExtra("batchcast kubernetes render-serving", "kubernetes") from None
    serve, name = spec.serve, _name(spec)
    if "://" not in spec.storage_url or spec.storage_url.startswith("file://"):
        raise SpecError(f"[storage] url is the local folder {spec.storage_url}, which the pods cannot read",
                        "set [storage] url to the bucket the cluster reads, e.g. gs://bucket/models or s3://...")
    if has_secret(spec.storage_url):  # anyone who can read the Deployment could read it
        raise SpecError("the storage URL holds a password, which the Deployment would carry in clear",
                        "put BATCHCAST__STORAGE__URL in a Secret listed in [serve] secrets")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "batchcast",
              "batchcast/service": spec.service.name, "batchcast/version": spec.service.version}
    probes = {kind: k.V1Probe(http_get=k.V1HTTPGetAction(path=path, port="http"), period_seconds=10,
                              timeout_seconds=5, failure_threshold=3) for kind, path in PROBES.items()}
    # The model is fetched, verified and loaded before the server listens: up to 5 min before liveness counts.
    startup = k.V1Probe(http_get=k.V1HTTPGetAction(path=PROBES["liveness"], port="http"), period_seconds=5,
                        failure_threshold=60)
    container = k.V1Container(
        name="serve", image=spec.image_tag, args=["serve", "--inline", "--host", "0.0.0.0", "--port", str(port)],
        ports=[k.V1ContainerPort(name="http", container_port=port)],
        env=[k.V1EnvVar(name="BATCHCAST__STORAGE__URL", value=spec.storage_url)],
        env_from=[k.V1EnvFromSource(secret_ref=k.V1SecretEnvSource(name=s)) for s in serve.secrets] or None,
        resources=k.V1ResourceRequirements(requests={"cpu": serve.cpu, "memory": serve.memory},
                                           limits={"cpu": _twice(serve.cpu), "memory": serve.memory}),
        readiness_probe=probes["readiness"], liveness_probe=probes["liveness"], startup_probe=startup)
    pod = k.V1PodSpec(containers=[container], service_account_name=serve.service_account,
                      termination_grace_period_seconds=45)  # uvicorn's 30 s for requests, 8 s for the log
    deployment = k.V1Deployment(
        api_version="apps/v1", kind="Deployment", metadata=k.V1ObjectMeta(name=name, labels=labels),
        spec=k.V1DeploymentSpec(replicas=serve.min_replicas, selector=k.V1LabelSelector(match_labels=labels),
                                template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=pod)))
    service = k.V1Service(
        api_version="v1", kind="Service", metadata=k.V1ObjectMeta(name=name, labels=labels),
        spec=k.V1ServiceSpec(selector=labels, ports=[k.V1ServicePort(name="http", port=80, target_port="http")]))
    autoscaler = k.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2", kind="HorizontalPodAutoscaler", metadata=k.V1ObjectMeta(name=name, labels=labels),
        spec=k.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k.V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name=name),
            min_replicas=serve.min_replicas, max_replicas=serve.max_replicas,
            metrics=[k.V2MetricSpec(type="Resource", resource=k.V2ResourceMetricSource(
                name="cpu", target=k.V2MetricTarget(type="Utilization", average_utilization=serve.cpu_target)))]))
    return [deployment, service, autoscaler]


def render(spec, out: Path, port: int = 8080) -> list[Path]:
    """Write one YAML file per object into ``out``; the paths written."""
    import yaml
    from kubernetes.client import ApiClient

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for obj in manifests(spec, port):
        path = out / f"{_name(spec)}-{obj.kind.lower()}.yaml"
        path.write_text(yaml.safe_dump(ApiClient().sanitize_for_serialization(obj), sort_keys=False))
        written.append(path)
    return written


def _name(spec) -> str:
    """A DNS-1123 name for the objects: the service and version."""
    text = f"{spec.service.name}-{spec.service.version}-serve".lower()
    return re.sub(r"[^a-z0-9-]", "-", text)[:63].strip("-")


def _twice(cpu: str) -> str:
    if cpu.endswith("m"):
        return f"{int(float(cpu[:-1]) * 2)}m"
    return f"{int(float(cpu) * 2000)}m"
