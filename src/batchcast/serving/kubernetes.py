"""``batchcast kubernetes render-serving``: a Deployment, a Service and a HorizontalPodAutoscaler for ``serve``.

Built from the Kubernetes client's own model classes (the API's types),
then written as YAML for ``kubectl apply -f``. The Deployment runs the
service's image (``batchcast build``), whose environment is the model's, so
the server runs there with ``--inline``; it listens on all the pod's
addresses (the Service reaches it there), which is why ``--host`` says so.
Credentials come from Secrets by reference, never from values here. What
``render-streaming`` shares with this is :mod:`batchcast.isolation.deployment`.
"""

from __future__ import annotations

from pathlib import Path

from batchcast.isolation.deployment import Surface, models

PROBES = {"readiness": "/v2/health/ready", "liveness": "/v2/health/live"}
GRACE = 45  # uvicorn's 30 s for the requests in flight, 8 s for the online log's last rows


def manifests(spec, port: int = 8080) -> list:
    """The V1Deployment, V1Service and V2HorizontalPodAutoscaler serving ``spec``'s model."""
    k = models("render-serving")
    surface = Surface(spec, "serve", spec.serve)
    deployment = surface.deployment(["serve", "--inline", "--host", "0.0.0.0", "--port", str(port)],
                                    ("http", port), PROBES, GRACE)
    service = k.V1Service(
        api_version="v1", kind="Service", metadata=k.V1ObjectMeta(name=surface.name, labels=surface.labels),
        spec=k.V1ServiceSpec(selector=surface.labels,
                             ports=[k.V1ServicePort(name="http", port=80, target_port="http")]))
    return [deployment, service, surface.cpu_autoscaler()]


def render(spec, out: Path, port: int = 8080) -> list[Path]:
    """Write one YAML file per object into ``out``; the paths written."""
    return Surface(spec, "serve", spec.serve).write(manifests(spec, port), out)
