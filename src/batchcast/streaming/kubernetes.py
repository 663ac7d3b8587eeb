"""``batchcast kubernetes render-streaming``: a Deployment for ``stream``, and an autoscaler on consumer lag.

The Deployment runs the service's image (``batchcast build``) with ``stream
--inline --host 0.0.0.0``: the image's environment is the model's, and the
probes and Prometheus reach ``/metrics``, ``/health/live`` and
``/health/ready`` on the pod's address, on ``[stream] port`` (the container
port named ``metrics``). On SIGTERM the consumer finishes the batch in hand
(its wait, its sends, its commit) and leaves its group; the grace period
gives it that time before Kubernetes kills it.

The autoscaler is KEDA's (a ``ScaledObject``, keda.sh/v1alpha1) on the
backlog, by default: lag is what a consumer falls behind on, and CPU says
nothing about it (a consumer waiting on its broker or its sink is idle while
the lag grows; one keeping up with a quiet topic may be busy on a big model).
KEDA keeps ``lag_target`` messages per replica: the ``kafka`` trigger reads the
consumer group's lag (KEDA starts no more replicas than the topic has
partitions, since a group gives each partition to one consumer and the rest
would idle), the ``gcp-pubsub`` trigger the subscription's undelivered
messages (through a ``TriggerAuthentication`` with GCP workload identity:
the KEDA operator's service account needs roles/monitoring.viewer). A
broker that needs SASL or TLS needs a TriggerAuthentication of its own,
named in the trigger's ``authenticationRef``. ``--autoscaler hpa`` writes a
CPU HorizontalPodAutoscaler instead, for a cluster without KEDA.

KEDA's resources are custom ones, which the Kubernetes client has no model
classes for: they are plain dicts here, in the shape KEDA's documentation
gives (https://keda.sh/docs/latest/reference/scaledobject-spec/).
"""

from __future__ import annotations

import math
from pathlib import Path

from batchcast import registry
from batchcast.errors import SpecError
from batchcast.isolation.deployment import Surface

PROBES = {"readiness": "/health/ready", "liveness": "/health/live"}
KEDA = "keda.sh/v1alpha1"
AUTOSCALERS = ("keda", "hpa")
# After SIGTERM: the batch in hand (its wait for messages, then its sends: a producer's flush waits up to
# 60 s, then its commit), then closing the producers and leaving the group.
FINISH_BATCH, CLOSE = 60, 30


def manifests(spec, autoscaler: str = "keda") -> list:
    """The V1Deployment running ``spec``'s stream, then its autoscaler: KEDA's objects (dicts), or a CPU HPA."""
    stream = spec.stream
    if stream is None:
        raise SpecError(f"{spec.file} has no [stream] table", "add [stream] with source and topic or table")
    if autoscaler not in AUTOSCALERS:
        raise SpecError(f"unknown autoscaler '{autoscaler}'", f"use one of {', '.join(AUTOSCALERS)}")
    if stream.partitions != "group" and stream.max_replicas > 1:  # each replica would read the same partitions
        raise SpecError(f"[stream] partitions = {stream.partitions!r} gives this consumer its partitions itself, "
                        f"which {stream.max_replicas} replicas cannot share",
                        'set [stream] partitions = "group" (the group shares them out), or max_replicas = 1')
    if stream.port == 0:
        raise SpecError("[stream] port = 0 turns off the port the Deployment's probes ask",
                        "remove port from [stream] (default 9464), or set another")
    surface = Surface(spec, "stream", stream)
    deployment = surface.deployment(
        ["stream", "--inline", "--host", "0.0.0.0", "--port", str(stream.port)], ("metrics", stream.port),
        PROBES, math.ceil(stream.max_wait_ms / 1000) + FINISH_BATCH + CLOSE, _warehouse(surface),
        {"prometheus.io/scrape": "true", "prometheus.io/port": str(stream.port), "prometheus.io/path": "/metrics"})
    if autoscaler == "hpa":
        return [deployment, surface.cpu_autoscaler()]
    return [deployment, *_keda(surface)]


def render(spec, out: Path, autoscaler: str = "keda") -> list[Path]:
    """Write one YAML file per object into ``out``; the paths written."""
    return Surface(spec, "stream", spec.stream).write(manifests(spec, autoscaler), out)


def _warehouse(surface: Surface) -> dict[str, str]:
    """The container's warehouse URL, when ``[stream] table`` delivers there; none for a topic only."""
    spec = surface.spec
    if not spec.stream.table:
        return {}
    url = spec.warehouse_url
    backend = registry.warehouse(url)
    found = backend.load(f"the {backend.name} warehouse").local_file(url)
    if found is not None:  # a file in each pod's container, gone with it
        raise SpecError(f"[stream] table is delivered to the warehouse file {found}, which the pods cannot share",
                        "point [warehouse] url at a database the cluster reaches (PostgreSQL, BigQuery), or "
                        "deliver to a [stream] topic only")
    surface.check_url("warehouse", url)
    return {"BATCHCAST__WAREHOUSE__URL": url}


def _keda(surface: Surface) -> list[dict]:
    """The ScaledObject on the source's backlog, and the TriggerAuthentication its trigger needs, if any."""
    stream = surface.settings
    scheme = registry.scheme_of(stream.source)
    if scheme not in TRIGGERS:
        raise SpecError(f"KEDA has no trigger here for [stream] source {stream.source}",
                        "render with --autoscaler hpa")
    trigger, *more = TRIGGERS[scheme](surface)
    scaled = {"apiVersion": KEDA, "kind": "ScaledObject",
              "metadata": {"name": surface.name, "labels": surface.labels},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": surface.name},
                       "minReplicaCount": stream.min_replicas, "maxReplicaCount": stream.max_replicas,
                       "triggers": [trigger]}}
    return [scaled, *more]


def _kafka(surface: Surface) -> list[dict]:
    from batchcast.brokers.kafka_url import KafkaUrl

    spec, stream = surface.spec, surface.settings
    url = KafkaUrl.parse(stream.source, "[stream] source")
    group = stream.consumer_group(spec.service.name, spec.service.version)
    # KEDA's metadata values are strings. earliest: as the consumer starts a partition the group never committed.
    return [{"type": "kafka", "metadata": {
        "bootstrapServers": url.bootstrap, "consumerGroup": group, "topic": url.topic,
        "lagThreshold": str(stream.lag_target), "offsetResetPolicy": "earliest", "allowIdleConsumers": "false"}}]


def _pubsub(surface: Surface) -> list[dict]:
    from batchcast.brokers.pubsub import PubSubUrl

    url = PubSubUrl.parse(surface.settings.source, "[stream] source")
    authentication = {"apiVersion": KEDA, "kind": "TriggerAuthentication",
                      "metadata": {"name": surface.name, "labels": surface.labels},
                      "spec": {"podIdentity": {"provider": "gcp"}}}
    trigger = {"type": "gcp-pubsub", "authenticationRef": {"name": surface.name}, "metadata": {
        "subscriptionName": f"projects/{url.project}/subscriptions/{url.name}", "mode": "SubscriptionSize",
        "value": str(surface.settings.lag_target)}}
    return [trigger, authentication]


# KEDA's trigger for each source's scheme: (surface) -> [the trigger, then any object it refers to].
TRIGGERS = {"kafka": _kafka, "pubsub": _pubsub}
