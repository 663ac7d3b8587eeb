"""`batchcast kubernetes render-streaming`: the YAML it writes, read back as Kubernetes would, and what it refuses.

No cluster: the Deployment and the HorizontalPodAutoscaler are read with the
Kubernetes client's own deserializer (the API's types, as the serving test
in tests/executors/test_in_podman.py reads render-serving's); KEDA's objects
are custom resources, checked field by field. tests/executors/test_in_podman.py
plays the Deployment's pod in podman against a Kafka broker.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from batchcast.errors import SpecError
from batchcast.spec import load_spec
from batchcast.streaming.kubernetes import manifests, render
from tests.conftest import bc, write_python_service

KAFKA = '''
source = "kafka://k1.internal:9092,k2.internal:9092/churn-events"
topic = "kafka://k1.internal:9092/churn-scores"
port = 9500
lag_target = 250
min_replicas = 2
max_replicas = 6
cpu = "250m"
memory = "1Gi"
service_account = "churn-stream"
secrets = ["churn-credentials", "broker-credentials"]
'''
PUBSUB = '''
source = "pubsub://acme-analytics/churn-events-sub"
topic = "pubsub://acme-analytics/churn-scores"
lag_target = 40
'''
STORE = '[storage]\nurl = "gs://acme-models/artifacts"\n'


def service(root: Path, stream: str, *, before: str = STORE) -> Path:
    """A service whose spec has ``before`` (the store, the warehouse) and the ``[stream]`` table ``stream``."""
    return write_python_service(root, 20, extra=f"\n{before}\n[stream]\n{textwrap.dedent(stream)}")


def documents(out: Path) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}


def typed(document: dict, kind: str):
    """``document`` as the Kubernetes client's model ``kind``: what the API server would accept of it."""
    from kubernetes.client import ApiClient

    class Raw:  # what ApiClient.deserialize reads: a response whose data is the JSON text
        data = json.dumps(document)

    return ApiClient().deserialize(Raw(), kind)


def test_a_kafka_stream_is_a_deployment_and_a_keda_scaled_object_on_the_groups_lag(tmp_path):
    spec = service(tmp_path, KAFKA)
    out = tmp_path / "k8s"
    written = bc("kubernetes", "render-streaming", "--out", str(out), cwd=tmp_path).stdout.splitlines()
    assert written == [f"wrote {out}/scores-2-stream-deployment.yaml", f"wrote {out}/scores-2-stream-scaledobject.yaml"]
    found = documents(out)
    deployment = typed(found["scores-2-stream-deployment.yaml"], "V1Deployment")
    assert deployment.spec.replicas == 2 and deployment.metadata.name == "scores-2-stream"
    pod = deployment.spec.template.spec
    [container] = pod.containers
    assert container.image == load_spec(spec).image_tag
    assert container.args == ["stream", "--inline", "--host", "0.0.0.0", "--port", "9500"]
    assert [(p.name, p.container_port) for p in container.ports] == [("metrics", 9500)]
    probes = {"readiness": container.readiness_probe, "liveness": container.liveness_probe,
              "startup": container.startup_probe}
    assert {kind: (p.http_get.path, p.http_get.port) for kind, p in probes.items()} == {
        "readiness": ("/health/ready", "metrics"), "liveness": ("/health/live", "metrics"),
        "startup": ("/health/live", "metrics")}
    assert container.startup_probe.period_seconds * container.startup_probe.failure_threshold == 300
    assert container.resources.requests == {"cpu": "250m", "memory": "1Gi"}
    assert container.resources.limits == {"cpu": "500m", "memory": "1Gi"}
    assert [(e.name, e.value) for e in container.env] == [("BATCHCAST__STORAGE__URL", "gs://acme-models/artifacts")]
    assert [s.secret_ref.name for s in container.env_from] == ["churn-credentials", "broker-credentials"]
    assert pod.service_account_name == "churn-stream"
    # The batch in hand: its wait (100 ms), a producer's flush (up to 60 s), then closing and leaving the group.
    assert pod.termination_grace_period_seconds == 91
    assert deployment.spec.template.metadata.annotations["prometheus.io/port"] == "9500"
    assert deployment.spec.selector.match_labels == deployment.spec.template.metadata.labels

    scaled = found["scores-2-stream-scaledobject.yaml"]
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": "scores-2-stream"}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 6)
    assert scaled["spec"]["triggers"] == [{"type": "kafka", "metadata": {
        "bootstrapServers": "k1.internal:9092,k2.internal:9092", "consumerGroup": "batchcast-scores-2",
        "topic": "churn-events", "lagThreshold": "250", "offsetResetPolicy": "earliest",
        "allowIdleConsumers": "false"}}]


def test_the_scaled_object_watches_the_group_the_spec_names(tmp_path):
    spec = load_spec(service(tmp_path, KAFKA + 'group = "churn-scorers"\n'))
    [trigger] = manifests(spec)[1]["spec"]["triggers"]
    assert trigger["metadata"]["consumerGroup"] == "churn-scorers"


def test_a_pubsub_stream_scales_on_the_subscriptions_backlog_through_workload_identity(tmp_path):
    spec = load_spec(service(tmp_path, PUBSUB))
    paths = render(spec, tmp_path / "k8s")
    assert [p.name for p in paths] == ["scores-2-stream-deployment.yaml", "scores-2-stream-scaledobject.yaml",
                                       "scores-2-stream-triggerauthentication.yaml"]
    found = documents(tmp_path / "k8s")
    container = typed(found["scores-2-stream-deployment.yaml"], "V1Deployment").spec.template.spec.containers[0]
    assert container.ports[0].container_port == 9464 and container.args[-1] == "9464"  # [stream] port's default
    assert container.env_from is None  # no Secrets listed: none referred to
    scaled = found["scores-2-stream-scaledobject.yaml"]
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 4)
    assert scaled["spec"]["triggers"] == [{
        "type": "gcp-pubsub", "authenticationRef": {"name": "scores-2-stream"},
        "metadata": {"subscriptionName": "projects/acme-analytics/subscriptions/churn-events-sub",
                     "mode": "SubscriptionSize", "value": "40"}}]
    authentication = found["scores-2-stream-triggerauthentication.yaml"]
    assert (authentication["apiVersion"], authentication["kind"]) == ("keda.sh/v1alpha1", "TriggerAuthentication")
    assert authentication["metadata"]["name"] == "scores-2-stream"
    assert authentication["spec"] == {"podIdentity": {"provider": "gcp"}}


def test_autoscaler_hpa_writes_a_cpu_horizontal_pod_autoscaler_instead(tmp_path):
    service(tmp_path, KAFKA + "cpu_target = 55\n")
    out = tmp_path / "k8s"
    bc("kubernetes", "render-streaming", "--out", str(out), "--autoscaler", "hpa", cwd=tmp_path)
    found = documents(out)
    assert sorted(found) == ["scores-2-stream-deployment.yaml", "scores-2-stream-horizontalpodautoscaler.yaml"]
    autoscaler = typed(found["scores-2-stream-horizontalpodautoscaler.yaml"], "V2HorizontalPodAutoscaler")
    assert (autoscaler.spec.scale_target_ref.kind, autoscaler.spec.scale_target_ref.name) == (
        "Deployment", "scores-2-stream")
    assert (autoscaler.spec.min_replicas, autoscaler.spec.max_replicas) == (2, 6)
    [metric] = autoscaler.spec.metrics
    assert (metric.resource.name, metric.resource.target.average_utilization) == ("cpu", 55)


def test_a_table_on_a_database_gets_the_warehouse_url(tmp_path):
    before = STORE + '\n[warehouse]\nurl = "bigquery://acme-analytics/churn"\n'
    spec = load_spec(service(tmp_path, 'source = "kafka://k1:9092/events"\ntable = "scores_stream"\n', before=before))
    container = manifests(spec, "hpa")[0].spec.template.spec.containers[0]
    assert {e.name: e.value for e in container.env} == {"BATCHCAST__STORAGE__URL": "gs://acme-models/artifacts",
                                                       "BATCHCAST__WAREHOUSE__URL": "bigquery://acme-analytics/churn"}


def test_a_static_assignment_with_a_single_replica_renders(tmp_path):
    spec = load_spec(service(tmp_path, KAFKA.replace("min_replicas = 2\nmax_replicas = 6\n", "max_replicas = 1\n")
                             + 'partitions = "all"\n'))
    assert manifests(spec)[1]["spec"]["maxReplicaCount"] == 1


TOPIC_ONLY = 'source = "kafka://k1:9092/events"\ntopic = "kafka://k1:9092/scores"\n'
REFUSED = {
    "partitions all, shared by replicas": (
        TOPIC_ONLY + 'partitions = "all"\n', STORE,
        "[stream] partitions = 'all' gives this consumer its partitions itself, which 4 replicas cannot share",
        'set [stream] partitions = "group"'),
    "a partition list, shared by replicas": (
        TOPIC_ONLY + "partitions = [0, 1]\nmax_replicas = 2\n", STORE,
        "[stream] partitions = [0, 1] gives this consumer its partitions itself, which 2 replicas cannot share",
        "or max_replicas = 1"),
    "the local folder store": (
        TOPIC_ONLY, "", "[storage] url is the local folder ", "set [storage] url to the bucket the cluster reads"),
    "a password in the store's URL": (  # from the environment: a spec file holding one is refused when loaded
        TOPIC_ONLY, {"BATCHCAST__STORAGE__URL": "s3://acme/models?secret=hunter2"},
        "the storage URL holds a password, which the Deployment would carry in clear",
        "put BATCHCAST__STORAGE__URL in a Secret listed in [stream] secrets"),
    "a table in a DuckDB file": (
        'source = "kafka://k1:9092/events"\ntable = "scores_stream"\n', STORE,
        "[stream] table is delivered to the warehouse file ", "point [warehouse] url at a database the cluster"),
    "a password in the warehouse's URL": (
        'source = "kafka://k1:9092/events"\ntable = "scores_stream"\n',
        {"BATCHCAST__WAREHOUSE__URL": "postgresql://scorer:hunter2@db.internal/analytics"},
        "the warehouse URL holds a password, which the Deployment would carry in clear",
        "put BATCHCAST__WAREHOUSE__URL in a Secret listed in [stream] secrets"),
    "no probes' port": (
        TOPIC_ONLY + "port = 0\n", STORE, "[stream] port = 0 turns off the port the Deployment's probes ask",
        "remove port from [stream]"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_the_pods_could_not_run_is_refused_with_its_fix(tmp_path, monkeypatch, case):
    stream, before, message, fix = REFUSED[case]
    if isinstance(before, dict):  # the environment's URLs, over the store's
        for name, value in before.items():
            monkeypatch.setenv(name, value)
        before = STORE
    spec = load_spec(service(tmp_path, stream, before=before))
    with pytest.raises(SpecError) as refused:
        manifests(spec)
    assert refused.value.message.startswith(message) and fix in refused.value.fix
    assert "hunter2" not in str(refused.value)
    assert not (tmp_path / "k8s").exists()


def test_the_command_says_a_refusal_in_one_line_and_its_fix_and_writes_nothing(tmp_path):
    service(tmp_path, TOPIC_ONLY, before="")
    failed = bc("kubernetes", "render-streaming", "--out", str(tmp_path / "k8s"), cwd=tmp_path, ok=False)
    lines = failed.stderr.splitlines()
    assert failed.returncode == 1 and len(lines) == 2, failed.stderr
    assert lines[0].startswith("error: [storage] url is the local folder ") and lines[1].startswith("fix: ")
    assert not (tmp_path / "k8s").exists()


def test_a_spec_without_a_stream_table_is_told_to_add_one(tmp_path):
    write_python_service(tmp_path, 20, extra=f"\n{STORE}")
    failed = bc("kubernetes", "render-streaming", "--out", str(tmp_path / "k8s"), cwd=tmp_path, ok=False)
    assert "has no [stream] table" in failed.stderr and "fix: add [stream]" in failed.stderr


def test_the_image_of_a_stream_holds_its_brokers_client(tmp_path):
    from batchcast.isolation.images import dockerfile

    kafka = load_spec(service(tmp_path / "kafka", KAFKA))
    assert "'batchcast[serve,stream]'" in dockerfile(kafka)
    pubsub = load_spec(service(tmp_path / "pubsub", PUBSUB + 'dead_letter = "kafka://k1:9092/refused"\n'))
    assert "'batchcast[pubsub,serve,stream]'" in dockerfile(pubsub)


def test_the_images_entry_point_passes_sigterm_on_and_exits_by_it(tmp_path):
    """A container's PID 1 gets no signal it has no handler for: the entry point's shell is PID 1 in a pod, so it
    must hand the kubelet's SIGTERM (and SIGHUP: check the alias) to batchcast, and exit as batchcast did."""
    import os
    import signal
    import subprocess
    import sys

    from batchcast.isolation.images import ENTRYPOINT

    (tmp_path / "batchcast").write_text(f'''#!{sys.executable}
import os, signal, sys, time
def stop(signum, frame):  # as batchcast stream does: finish, then exit by the signal
    print("stopping", flush=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGHUP, lambda signum, frame: print("alias checked", flush=True))
print("args", *sys.argv[1:], flush=True)
time.sleep(60)
''')
    (tmp_path / "batchcast").chmod(0o755)
    def as_a_kubelet_starts_it():  # no signal ignored: a shell cannot trap one it was started ignoring (nohup's)
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)

    shell = subprocess.Popen([*ENTRYPOINT, "stream", "--inline"], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
                             preexec_fn=as_a_kubelet_starts_it)
    assert shell.stdout.readline() == "args stream --inline\n"
    shell.send_signal(signal.SIGHUP)
    assert shell.stdout.readline() == "alias checked\n"
    shell.send_signal(signal.SIGTERM)
    assert shell.wait(10) == 143 and shell.stdout.read() == "stopping\n"
