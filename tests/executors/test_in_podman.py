"""The cloud paths, proven by running what each platform would run: the image, from the exact body batchcast renders.

No cloud or cluster is reachable here; podman starts the containers they
would start (tests/executors/in_podman.py), against the GCS emulator for the
store, PostgreSQL for the warehouse and noida-db's Kafka for the stream. For
the executors, the fake APIs (which check the request bodies) start the
body's container in podman; for the Airflow DAGs, Airflow itself renders the
task (the VM's startup script, the KubernetesPodOperator's pod) and the test
runs what it rendered.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from batchcast import Service
from batchcast.airflow.dags import render
from batchcast.spec import load_spec
from batchcast.warehouses import open_warehouse
from tests.airflow.test_in_airflow import in_airflow
from tests.conftest import BASE_IMAGE, BATCHCAST, bc
from tests.executors.fake_compute import FakeCompute
from tests.executors.fake_kubernetes import FakeKubernetes
from tests.executors.fake_vertex import FakeVertex
from tests.executors.in_podman import kube_play, podman_run
from tests.executors.test_container import build_if_changed

pytestmark = pytest.mark.slow  # podman, the GCS emulator, PostgreSQL and Airflow

IMAGE = "europe-docker.pkg.dev/acme/models/churn:1"
CREDENTIALS = "cloud-credentials"  # the Secret a cluster would hold; here the emulator's address
PLATFORMS = '''
gce = {{ project = "acme", poll_interval = 0.2 }}
vertex = {{ project = "acme", poll_interval = 0.2 }}
kubernetes = {{ secrets = ["{secret}"], poll_interval = 1 }}
'''


@pytest.fixture(scope="module")
def cloud(podman, gcs_endpoint, postgres_url, tmp_path_factory):
    """The example service on the GCS emulator and PostgreSQL, its image built, one model trained in a container."""
    from tests.store.test_remote import fresh_store

    root = tmp_path_factory.mktemp("cloud")
    bc("init", "svc", "--name", "churn", cwd=root)
    svc = root / "svc"
    spec = svc / "batchcast.toml"
    text = spec.read_text().replace('executor = "local"\n', 'executor = "gce"\n' + PLATFORMS.format(
        secret=CREDENTIALS))
    spec.write_text(text.replace("[model]", f'''[storage]
url = "{fresh_store("gs").url}"

[warehouse]
url = "{postgres_url}?schema=cloud"

[image]
base = "{BASE_IMAGE}"
registry = "europe-docker.pkg.dev/acme"
project = "models"
extras = ["gcs", "postgres", "gce"]

[model]'''))
    assert load_spec(spec).image_tag == IMAGE
    build_if_changed(svc)
    bc("run", "training", "--date", "2026-03-01", "--executor", "container", cwd=svc)
    yield svc
    subprocess.run([*podman, "rmi", "--force", IMAGE], capture_output=True)  # under vfs, a gigabyte


def kpo_spec(svc: Path) -> Path:
    """The service's spec with the kubernetes executor, beside it: the same repository, rendered as pods."""
    spec = svc / "kpo.toml"
    spec.write_text((svc / "batchcast.toml").read_text().replace('executor = "gce"', 'executor = "kubernetes"'))
    return spec


def rows(svc: Path, day: str) -> int:
    with open_warehouse(load_spec(svc / "batchcast.toml").warehouse_url) as warehouse:
        return warehouse.count("predictions", dt.date.fromisoformat(day))


def committed(svc: Path, action: str, day: str):
    [manifest] = [m for m in Service(svc / "batchcast.toml").runs(action) if m.logical_date.isoformat() == day]
    return manifest


def test_the_gce_dag_vm_startup_script_runs_the_image(cloud, podman, gcs_endpoint, airflow_env, tmp_path):
    """The script Airflow renders into the VM's metadata, run by bash with `docker` mapped to podman."""
    dags = tmp_path / "dags"
    render([cloud / "batchcast.toml"], dags)
    shims, calls = tmp_path / "shims", tmp_path / "calls"
    shims.mkdir()
    # Container-Optimized OS's commands: docker runs the image (here podman, on the host network, with the
    # emulator's address where the VM would have its service account), the rest are recorded.
    (shims / "docker").write_text(f'''#!/bin/sh
echo "docker $*" >> {calls}
[ "$1" = run ] || exit 64
shift
exec {shlex.join(podman)} run --network=host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \\
  --env STORAGE_EMULATOR_HOST "$@"
''')
    for command in ("docker-credential-gcr", "shutdown"):
        (shims / command).write_text(f'#!/bin/sh\necho "{command} $*" >> {calls}\n')
    for shim in shims.iterdir():
        shim.chmod(0o755)
    day = "2026-03-02"
    for action in ("training", "application"):
        body = in_airflow(airflow_env, "field", str(dags), f"churn-1-{action}", f"{action}_start", "body", day)
        script = {i["key"]: i["value"] for i in body["body"]["metadata"]["items"]}["startup-script"]
        ran = subprocess.run(["bash", "-c", script], env={"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(tmp_path),
                                                          "STORAGE_EMULATOR_HOST": gcs_endpoint},
                             capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr[-3000:]
        env = {**airflow_env, "STORAGE_EMULATOR_HOST": gcs_endpoint}
        checked = in_airflow(env, "call", str(dags), f"churn-1-{action}", f"{action}_check", day)
        assert checked.get("ok", "").startswith(f"churn/1/{action}/"), checked
    made = calls.read_text().splitlines()
    assert made[0] == "docker-credential-gcr configure-docker --registries=europe-docker.pkg.dev"
    assert made[1].startswith("docker run --rm -e BATCHCAST__STORAGE__URL=gs://")
    assert made[1].endswith(f"{IMAGE} run training --date {day} --executor inline") and made[2] == "shutdown -h now"
    assert committed(cloud, "application", day).model_run == committed(cloud, "training", day).run_id
    assert rows(cloud, day) == 1000


def test_the_kubernetes_job_runs_in_podman_kube_play(cloud, podman, gcs_endpoint, tmp_path, monkeypatch):
    spec = cloud / "batchcast.toml"
    with FakeKubernetes(spec, BATCHCAST, tmp_path) as fake:
        fake.start = kube_play(podman, tmp_path, {CREDENTIALS: {"STORAGE_EMULATOR_HOST": gcs_endpoint}})
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig))
        manifest = Service(spec).run("application", "2026-03-03", executor="kubernetes")
    assert manifest.succeeded and manifest.executor == "kubernetes", manifest.error
    [job] = fake.created
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert rows(cloud, "2026-03-03") == 1000


def test_the_kubernetes_pod_operator_pods_run_in_podman_kube_play(cloud, podman, gcs_endpoint, airflow_env,
                                                                  tmp_path):
    """The pods Airflow's KubernetesPodOperator would create for the date: the run, then the manifest check."""
    dags = tmp_path / "dags"
    render([kpo_spec(cloud)], dags)
    day = "2026-03-04"
    pods = in_airflow(airflow_env, "pod", str(dags), "churn-1-application", day)
    start = kube_play(podman, tmp_path, {CREDENTIALS: {"STORAGE_EMULATOR_HOST": gcs_endpoint}})
    for task in ("application", "application_check"):
        container = pods[task]["spec"]["containers"][0]
        assert container["image"] == IMAGE and day in container["args"]
        code, log = start(pods[task]["spec"], pods[task]["metadata"]["name"]).finish()
        assert code == 0, log[-3000:]
    assert committed(cloud, "application", day).succeeded and rows(cloud, day) == 1000


def test_the_vertex_custom_job_container_runs_in_podman(cloud, podman, gcs_endpoint, monkeypatch):
    spec = cloud / "batchcast.toml"
    with FakeVertex(spec, BATCHCAST) as fake:
        fake.start = podman_run(podman, {"STORAGE_EMULATOR_HOST": gcs_endpoint})
        monkeypatch.setenv("BATCHCAST_VERTEX_ENDPOINT", fake.endpoint)
        manifest = Service(spec).run("application", "2026-03-05", executor="vertex")
    assert manifest.succeeded and manifest.executor == "vertex", manifest.error
    assert rows(cloud, "2026-03-05") == 1000


def test_the_gce_executor_vm_container_runs_in_podman_and_deletes_its_vm(cloud, podman, gcs_endpoint, monkeypatch):
    spec = cloud / "batchcast.toml"
    with FakeCompute(spec, BATCHCAST) as fake:
        # The VM's service account reaches the store and the Compute Engine API; here, the stand-ins.
        fake.start = podman_run(podman, {"STORAGE_EMULATOR_HOST": gcs_endpoint,
                                         "BATCHCAST_COMPUTE_ENDPOINT": fake.endpoint})
        monkeypatch.setenv("BATCHCAST_COMPUTE_ENDPOINT", fake.endpoint)
        manifest = Service(spec).run("application", "2026-03-06", executor="gce")
    assert manifest.succeeded and manifest.executor == "gce", manifest.error
    assert fake.deletes == [fake.inserted[0]["name"]]  # by the container, when its run ended
    assert rows(cloud, "2026-03-06") == 1000


def test_every_place_that_starts_the_image_has_its_arguments_honoured(cloud, podman, airflow_env, tmp_path):
    """Each launch, through the image's real entry point, with a `batchcast` that records the argv it gets."""
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    (recorder / "batchcast").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (recorder / "batchcast").chmod(0o755)
    launches = _launches(cloud, airflow_env, tmp_path, "2026-03-07")
    for where, (container, expected) in launches.items():
        probe = {**container, "env": [*(container.get("env") or []),
                                      {"name": "PATH", "value": "/recorder:/opt/batchcast/bin:/usr/bin:/bin"}]}
        argv = [*podman, "run", "--rm", "--network=none", "--volume", f"{recorder}:/recorder:ro",
                "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
        if probe.get("command"):
            argv += ["--entrypoint", json.dumps(probe["command"])]
        argv += [opt for e in probe["env"] for opt in ("--env", f"{e['name']}={e.get('value', '')}")]
        got = subprocess.run([*argv, probe["image"], *(probe.get("args") or [])], capture_output=True, text=True)
        assert got.returncode == 0, f"{where}: {got.stderr[-1000:]}"
        assert got.stdout.splitlines()[:4] == expected, f"{where} runs batchcast {got.stdout.split()}"


def _launches(svc: Path, airflow_env: dict, tmp: Path, day: str) -> dict[str, tuple[dict, list[str]]]:
    """Every container batchcast asks a platform to start, as (container, the argv batchcast must receive)."""
    import yaml
    from kubernetes.client import ApiClient

    from batchcast.executors import gce, kubernetes, vertex
    from batchcast.isolation.images import run_env
    from batchcast.runs.manifest import RunRequest

    spec = load_spec(svc / "batchcast.toml")
    request = RunRequest(name=spec.service.name, version=spec.service.version, spec_path=str(spec.file),
                         action="application", logical_date=dt.date.fromisoformat(day),
                         run_ts="20260307T000000Z", executor="probe", log_path=str(tmp / "log.txt"))
    expected = ["run", "application", "--date", day]
    job = ApiClient().sanitize_for_serialization(kubernetes.build_job(spec, request))
    custom_job = vertex.build_job(spec, request)
    custom = type(custom_job).to_dict(custom_job)
    pool = custom["job_spec"]["worker_pool_specs"][0]["container_spec"]
    instance = gce.build_instance(spec, request)
    declaration = yaml.safe_load(next(i.value for i in instance.metadata.items
                                      if i.key == "gce-container-declaration"))
    found = {
        "kubernetes Job": (job["spec"]["template"]["spec"]["containers"][0], expected),
        "vertex CustomJob": ({"image": pool["image_uri"], "command": pool["command"], "args": pool["args"],
                              "env": pool["env"]}, expected),
        "gce VM container declaration": (declaration["spec"]["containers"][0], expected),
        "container executor": ({"image": spec.image_tag, "env": [
            {"name": k, "value": v} for k, v in run_env(spec, request, "container").items()]}, expected),
    }
    dags = tmp / "launch-dags"
    render([kpo_spec(svc)], dags / "kpo")
    render([svc / "batchcast.toml"], dags / "gce")
    pods = in_airflow(airflow_env, "pod", str(dags / "kpo"), "churn-1-application", day)
    found["KubernetesPodOperator run"] = (pods["application"]["spec"]["containers"][0], expected)
    found["KubernetesPodOperator check"] = (pods["application_check"]["spec"]["containers"][0],
                                            ["check", "application", "--date", day])
    body = in_airflow(airflow_env, "field", str(dags / "gce"), "churn-1-application", "application_start", "body",
                      day)["body"]
    script = {i["key"]: i["value"] for i in body["metadata"]["items"]}["startup-script"]
    found["gce DAG startup script"] = (_docker_run(script), expected)
    return found


def _docker_run(script: str) -> dict:
    """The container of the script's `docker run` line: its -e options, image and arguments."""
    [line] = [line for line in script.splitlines() if line.startswith("docker run ")]
    words = shlex.split(line)[2:]
    env, i = [], 0
    while words[i].startswith("-"):
        if words[i] == "-e":
            name, _, value = words[i + 1].partition("=")
            env.append({"name": name, "value": value})
            i += 2
        else:
            i += 1
    return {"image": words[i], "args": words[i + 1:], "env": env}


def test_the_serving_deployment_runs_in_podman_kube_play(cloud, podman, gcs_endpoint, tmp_path):
    """The Deployment's pod, played by podman from the YAML `render-serving` wrote, answers with the model."""
    import yaml
    from kubernetes.client import ApiClient

    from tests.serving.servers import call, free_port

    port = free_port()
    out = tmp_path / "k8s"
    spec = cloud / "serve.toml"  # the same service, its store's credentials in the Secret a cluster would hold
    spec.write_text((cloud / "batchcast.toml").read_text().replace(
        "[serve]\n", f'[serve]\nsecrets = ["{CREDENTIALS}"]\n'))
    bc("--spec", str(spec), "kubernetes", "render-serving", "--out", str(out), "--port", str(port), cwd=cloud)
    documents = {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}
    assert sorted(documents) == ["churn-1-serve-deployment.yaml", "churn-1-serve-horizontalpodautoscaler.yaml",
                                 "churn-1-serve-service.yaml"]

    class Raw:  # what ApiClient.deserialize reads: a response whose data is the JSON text
        def __init__(self, document):
            self.data = json.dumps(document)

    typed = {name: ApiClient().deserialize(Raw(doc), kind) for (name, doc), kind in zip(
        documents.items(), ["V1Deployment", "V2HorizontalPodAutoscaler", "V1Service"], strict=True)}
    deployment = typed["churn-1-serve-deployment.yaml"]
    container = deployment.spec.template.spec.containers[0]
    assert container.image == IMAGE and container.readiness_probe.http_get.path == "/v2/health/ready"
    assert container.liveness_probe.http_get.path == "/v2/health/live"
    assert container.resources.requests == {"cpu": "500m", "memory": "512Mi"}
    assert [source.secret_ref.name for source in container.env_from] == [CREDENTIALS]
    autoscaler = typed["churn-1-serve-horizontalpodautoscaler.yaml"]
    assert autoscaler.spec.scale_target_ref.name == deployment.metadata.name
    assert autoscaler.spec.metrics[0].resource.target.average_utilization == 70
    assert typed["churn-1-serve-service.yaml"].spec.selector == deployment.spec.selector.match_labels

    pod = documents["churn-1-serve-deployment.yaml"]["spec"]["template"]["spec"]
    started = kube_play(podman, tmp_path, {CREDENTIALS: {"STORAGE_EMULATOR_HOST": gcs_endpoint}})(pod, "churn-serve")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if call(port, "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            logs = subprocess.run([*podman, "logs", started.container], capture_output=True, text=True)
            pytest.fail(f"the served pod never became ready:\n{(logs.stdout + logs.stderr)[-3000:]}")
        status, headers, answer = call(port, "/invocations", {"dataframe_records": [
            {"sessions": 3.0, "days_since_last": 30.0, "spend": 1.0, "level": 2.0},
            {"sessions": 40.0, "days_since_last": 0.5, "spend": 90.0, "level": 50.0}]})
        assert status == 200, answer
        assert answer["predictions"] == [True, False]
        assert headers["x-batchcast-model-run"] == Service(cloud / "batchcast.toml").model_for().run_id
    finally:
        started.stop()


STREAMED = 300  # events


@pytest.fixture(scope="module")
def streaming(podman, gcs_endpoint, kafka_broker, tmp_path_factory):
    """A service streaming Kafka to Kafka (noida-db), trained into the GCS emulator, its image built.

    Its own image, not the cloud fixture's: the image holds the spec, and the stream's is another service's.
    """
    import uuid

    from tests.serving.servers import free_port
    from tests.store.test_remote import fresh_store
    from tests.streaming.common import stream_service

    root = tmp_path_factory.mktemp("streaming")
    unique = uuid.uuid4().hex[:8]  # the broker is the session's: other modules' topics and groups are on it
    topics = {"events": f"podman-events-{unique}", "scores": f"podman-scores-{unique}"}
    for topic in topics.values():
        kafka_broker.create_topic(topic, 3)
    topics["group"] = f"podman-{unique}"
    spec = stream_service(root, STREAMED, f'''
        source = "{kafka_broker.url(topics["events"])}"
        topic = "{kafka_broker.url(topics["scores"])}"
        group = "{topics["group"]}"
        port = {free_port()}
        secrets = ["{CREDENTIALS}"]
        ''', train=False)
    head, stream = spec.read_text().split("\n[stream]\n")
    spec.write_text(f'''{head}
[storage]
url = "{fresh_store("gs").url}"

[image]
base = "{BASE_IMAGE}"
extras = ["gcs"]

[stream]
{stream}''')
    bc("run", "training", cwd=root)
    bc("run", "application", cwd=root)  # the batch predictions the stream's must equal
    build_if_changed(root)
    yield root, topics
    subprocess.run([*podman, "rmi", "--force", load_spec(spec).image_tag], capture_output=True)


def test_the_streaming_deployment_scores_kafka_events_in_podman_kube_play(streaming, podman, gcs_endpoint,
                                                                          kafka_broker, tmp_path):
    """The pod `render-streaming` wrote, played by podman on the host network: every event scored once, then
    SIGTERM ends it as the kubelet would, after its batch, by the signal."""
    import urllib.error
    import urllib.request

    import yaml

    from tests.streaming.common import events, rows, until

    root, topics = streaming
    spec = load_spec(root / "batchcast.toml")
    out = tmp_path / "k8s"
    bc("kubernetes", "render-streaming", "--out", str(out), cwd=root)
    assert sorted(p.name for p in out.iterdir()) == ["scores-2-stream-deployment.yaml",
                                                     "scores-2-stream-scaledobject.yaml"]
    deployment = yaml.safe_load((out / "scores-2-stream-deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    port = spec.stream.port
    assert pod["containers"][0]["image"] == spec.image_tag
    assert pod["containers"][0]["args"] == ["stream", "--inline", "--host", "0.0.0.0", "--port", str(port)]

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    # A Deployment's pods restart what exits (restartPolicy Always), but the kubelet's SIGTERM comes with the pod's
    # deletion, which podman's kill does not stand for: the played pod is not restarted after it.
    played = {**pod, "restartPolicy": "Never"}
    started = kube_play(podman, tmp_path, {CREDENTIALS: {"STORAGE_EMULATOR_HOST": gcs_endpoint}})(played,
                                                                                                 "scores-stream")
    try:
        try:
            until(lambda: get("/health/ready")[0] == 200, 180, "the streaming pod's readiness")
        except AssertionError:
            logs = subprocess.run([*podman, "logs", started.container], capture_output=True, text=True)
            pytest.fail(f"the streaming pod never became ready:\n{(logs.stdout + logs.stderr)[-3000:]}")
        values, keys = events(root)
        kafka_broker.produce(topics["events"], values, keys)

        def scored():
            found = kafka_broker.read(topics["scores"], read_committed=True, timeout=5)
            return found if len(found) >= STREAMED else None

        records = [json.loads(r.value) for r in until(scored, 120, f"{STREAMED} scores on the output topic")]
        metrics = get("/metrics")[1]
    except BaseException:
        started.stop()
        raise
    started.signal("TERM")
    code, log = started.finish(timeout=pod["terminationGracePeriodSeconds"])  # else the kubelet would kill it
    assert code == 143, f"exited {code}, not by SIGTERM:\n{log[-3000:]}"
    assert f'"stopped: {STREAMED} messages consumed"' in log, log[-3000:]

    assert len(records) == STREAMED  # each event once, for a read_committed reader
    batch = {r["player_id"]: r["label"] for r in rows(root, "SELECT player_id, label FROM scores")}
    assert {r["player_id"]: r["label"] for r in records} == batch
    assert {r["_model_run"] for r in records} == {Service(root / "batchcast.toml").model_for().run_id}
    assert f"batchcast_stream_messages_total {STREAMED:.1f}" in metrics
    # What KEDA's trigger reads: the group's committed offsets, at the end of every partition (no lag).
    committed = kafka_broker.committed(topics["group"], topics["events"])
    assert sum(committed.values()) == STREAMED, committed
