"""Rendering, checked without Airflow: the files, the original JSON configs and their errors."""

from __future__ import annotations

import json

import pytest

from batchcast.airflow.dags import render
from batchcast.airflow.graphs import render_config
from batchcast.errors import SpecError
from batchcast.spec import load_spec
from tests.conftest import bc

ORIGINAL = {
    "graph": {"dag_id": "example-prediction-service-training", "schedule_interval": "0 0 1 * *",
              "start_date": "2019-07-01"},
    "tasks": [{"name": "start", "code": "make -C /opt/example training-start"},
              {"name": "wait", "code": "make -C /opt/example training-wait"},
              {"name": "check", "code": "make -C /opt/example training-check"}],
    "dependencies": [["wait", "start"], ["check", "wait"]],
}


def test_render_writes_one_dag_per_scheduled_action(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    files = render([spec], tmp_path / "dags", batchcast_bin="/opt/bc/bin/batchcast")
    assert sorted(f.name for f in files) == ["churn_1_application.py", "churn_1_training.py"]
    text = (tmp_path / "dags" / "churn_1_training.py").read_text()
    assert "import batchcast" not in text and "from batchcast" not in text
    assert f"/opt/bc/bin/batchcast --spec {spec} run training --date {{{{ ds }}}}" in text
    assert "schedule='0 3 * * 1'" in text
    compile(text, "dag.py", "exec")


def test_render_never_writes_credentials_from_the_environment(tmp_path, monkeypatch):
    bc("init", "svc", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    spec.write_text(spec.read_text().replace('executor = "local"', 'executor = "kubernetes"\n'
                                             'kubernetes = { image = "reg/churn:1", secrets = ["churn-db"] }'))
    monkeypatch.setenv("BATCHCAST__WAREHOUSE__URL", "postgresql://u:hunter2@db/x")
    for f in render([spec], tmp_path / "dags"):
        assert "hunter2" not in f.read_text()
        assert "secret_ref=k8s.V1SecretEnvSource(name=n)) for n in ['churn-db']" in f.read_text()


def test_original_config_renders(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "training.json").write_text(json.dumps(ORIGINAL))
    [dag] = render_config(tmp_path / "cfg", tmp_path / "dags")
    text = dag.read_text()
    assert "'dag_id': 'example-prediction-service-training'" in text and "'schedule': '0 0 1 * *'" in text
    assert "dt.datetime(2019, 7, 1" in text and "with DAG(**GRAPH) as dag:" in text
    assert "tasks['start'] >> tasks['wait']" in text and "tasks['wait'] >> tasks['check']" in text


@pytest.mark.parametrize("change, message", [
    (lambda c: c["dependencies"].append(["start", "check"]), "cycle: start -> check -> wait -> start"),
    (lambda c: c["dependencies"].append(["wait", "stop"]), "unknown task 'stop'"),
    (lambda c: c["graph"].update(schedule_interval="monthly-ish"), "'monthly-ish' is not a cron"),
    (lambda c: c["graph"].pop("dag_id"), "not a graph config"),
])
def test_original_config_errors_are_one_clear_line(tmp_path, change, message):
    config = json.loads(json.dumps(ORIGINAL))
    change(config)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "g.json").write_text(json.dumps(config))
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        render_config(tmp_path / "cfg", tmp_path / "dags")
    assert not (tmp_path / "dags" / "example_prediction_service_training.py").exists()


REAL = {  # shaped like the original repository's own configs/graph JSON
    "graph": {"dag_id": "churn-training", "schedule_interval": "0 0 1 * *", "start_date": "2019-07-01",
              "catchup": False, "description": "monthly retraining", "tags": ["churn"],
              "default_args": {"owner": "data-science", "depends_on_past": True, "retries": 2, "retry_delay": 120}},
    "tasks": [{"name": "training-start", "code": "make -C '${ROOT}' training-start"},
              {"name": "training-wait", "code": "cd ${ROOT} && make training-wait"}],
    "dependencies": [["training-wait", "training-start"]],
}


def test_original_config_is_carried_over_whole(tmp_path):
    configs = tmp_path / "repo" / "configs" / "airflow"
    configs.mkdir(parents=True)
    (configs / "training.json").write_text(json.dumps(REAL))
    [dag] = render_config(configs, tmp_path / "dags")
    text = dag.read_text()
    assert "'default_args': {'owner': 'data-science', 'depends_on_past': True, 'retries': 2" in text
    assert "'description': 'monthly retraining'" in text and "'catchup': False" in text
    assert f"make -C '{tmp_path / 'repo'}' training-start" in text and "${ROOT}" not in text
    compile(text, "dag.py", "exec")
    [dag] = render_config(configs, tmp_path / "dags", root=tmp_path / "elsewhere")
    assert f"cd {tmp_path / 'elsewhere'} && make" in dag.read_text()


@pytest.mark.parametrize("key, says", [("concurrency", "graph.concurrency: Airflow 3 no longer accepts it"),
                                       ("colour", "graph.colour: not an argument of Airflow 3's DAG")])
def test_original_config_keys_airflow_3_refuses_are_named(tmp_path, key, says):
    config = json.loads(json.dumps(REAL))
    config["graph"][key] = 4
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "g.json").write_text(json.dumps(config))
    with pytest.raises(SpecError, match=says):
        render_config(tmp_path / "cfg", tmp_path / "dags")


def test_kubernetes_executor_without_a_cluster_says_how_to_configure_one(tmp_path):
    bc("init", "svc", cwd=tmp_path)
    svc = tmp_path / "svc"
    result = bc("run", "training", "--executor", "kubernetes", cwd=svc, ok=False,
                env={"KUBECONFIG": str(tmp_path / "no-such-kubeconfig")})
    assert "no Kubernetes cluster configured" in result.stderr and "fix: set KUBECONFIG" in result.stderr
    assert bc("runs", "--json", cwd=svc).stdout.strip() == "[]"  # nothing was run


def test_check_reads_the_manifest(tmp_path):
    bc("init", "svc", cwd=tmp_path)
    svc = tmp_path / "svc"
    assert "no committed training run" in bc("check", "training", "--date", "2026-01-01", cwd=svc, ok=False).stderr
    bc("run", "training", "--date", "2026-01-01", "--executor", "inline", cwd=svc)
    assert "succeeded" in bc("check", "training", "--date", "2026-01-01", cwd=svc).stdout


def test_pod_and_vm_keys_left_in_the_airflow_table_say_where_they_moved(tmp_path):
    bc("init", "svc", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    before = spec.read_text()
    spec.write_text(before.replace('executor = "local"', 'executor = "kubernetes"\n'
                                   'airflow = { image = "reg/churn:1", zone = "europe-west4-a", pool = "models" }', 1))
    out = bc("airflow", "render", "--out", str(tmp_path / "dags"), cwd=tmp_path / "svc", ok=False)
    assert "[actions.training] airflow: image, zone moved out of the airflow table" in out.stderr, out.stderr
    assert "put zone in the action's [gce] table" in out.stderr
    assert "put image in the action's [kubernetes] table" in out.stderr
    assert not (tmp_path / "dags").exists()


def test_a_gce_dag_needs_the_vm_project(tmp_path):
    bc("init", "svc", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    spec.write_text(spec.read_text().replace('executor = "local"', 'executor = "gce"', 1)
                    .replace("[model]", '[storage]\nurl = "gs://models/artifacts"\n\n[model]'))
    with pytest.raises(SpecError, match=r"\[actions.training.gce\] project: not set"):
        render([spec], tmp_path / "dags")


def test_a_spark_application_renders_as_every_run_does(tmp_path):
    """The spec says where it scores; the DAG runs `batchcast run` either way and needs no change."""
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    local = render([spec], tmp_path / "local", batchcast_bin="bc")[1].read_text()
    text = spec.read_text()
    head, application = text.split("[actions.application]\n", 1)
    application = application.replace('executor = "local"', 'executor = "spark"', 1)
    spec.write_text(f"{head}[actions.application]\n{application}"
                    '\n[actions.application.spark]\nmaster = "spark://spark-master.internal:7077"\n')
    assert load_spec(spec).action("application").executor == "spark"
    rendered = render([spec], tmp_path / "spark", batchcast_bin="bc")
    assert rendered[1].name == "churn_1_application.py"
    assert rendered[1].read_text() == local and f"bc --spec {spec} run application --date {{{{ ds }}}}" in local
