"""The rendered DAGs in a real Apache Airflow 3, installed in its own venv (.venv-airflow) without batchcast."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from batchcast import Service
from batchcast.airflow.dags import render
from batchcast.airflow.graphs import render_config
from tests.airflow.test_render import ORIGINAL
from tests.conftest import AIRFLOW_PY, bc, query

pytestmark = pytest.mark.slow  # Apache Airflow (its own venv): db migrate, dag.test

HELPER = Path(__file__).with_name("in_airflow.py")


def in_airflow(env: dict, *args: str) -> dict:
    result = subprocess.run([str(AIRFLOW_PY), str(HELPER), *args], env={**env, "AIRFLOW__CORE__DAGS_FOLDER": args[1]},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_rendered_service_imports_cleanly(airflow_env, tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    dags = tmp_path / "dags"
    render([tmp_path / "svc" / "batchcast.toml"], dags)
    parsed = in_airflow(airflow_env, "parse", str(dags))
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == {"churn-1-training", "churn-1-application"}
    print(f"\nparse seconds per DAG file: {parsed['parse_seconds']} "
          f"(after Airflow's own imports, {parsed['operator_imports_seconds']} s once per process)")
    listed = subprocess.run([str(AIRFLOW_PY.parent / "airflow"), "dags", "list-import-errors", "--local"],
                            env={**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)},
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "No data found" in listed.stdout + listed.stderr, listed.stdout + listed.stderr


def starting(spec, day: str = "2026-01-01"):
    """Airflow runs no task for a date before its DAG's start_date, which defaults to the day of rendering."""
    spec.write_text(spec.read_text().replace('executor = "local"', f'executor = "local"\nstart_date = {day}'))


def test_training_then_application_run_in_airflow(airflow_env, tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    starting(tmp_path / "svc" / "batchcast.toml")
    dags = tmp_path / "dags"
    render([tmp_path / "svc" / "batchcast.toml"], dags)
    assert in_airflow(airflow_env, "test", str(dags), "churn-1-training", "2026-01-01")["state"] == "success"
    assert in_airflow(airflow_env, "test", str(dags), "churn-1-application", "2026-01-01")["state"] == "success"
    db = tmp_path / "svc" / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT _logical_date::VARCHAR, count(*) FROM predictions GROUP BY 1") == [("2026-01-01", 1000)]


def test_an_hourly_dag_runs_two_intervals_into_two_slices(airflow_env, tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    starting(spec)
    spec.write_text(spec.read_text().replace('schedule = "0 6 * * *"', 'schedule = "0 * * * *"\nretries = 0'))
    bc("run", "training", "--date", "2026-01-01", cwd=spec.parent)
    dags = tmp_path / "dags"
    render([spec], dags)
    assert "run application --date {{ ts }}" in (dags / "churn_1_application.py").read_text()
    for hour in ("13", "14"):
        ran = in_airflow(airflow_env, "test", str(dags), "churn-1-application", f"2026-01-01T{hour}:00:00")
        assert ran["state"] == "success"
    db = spec.parent / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT strftime(_interval_start AT TIME ZONE 'UTC', '%H:%M'), _logical_date::VARCHAR, "
                     "count(*) FROM predictions GROUP BY ALL ORDER BY 1") == [("13:00", "2026-01-01", 1000),
                                                                             ("14:00", "2026-01-01", 1000)]


def test_a_freshness_dag_fails_while_the_period_has_no_success_and_passes_after(airflow_env, tmp_path):
    import datetime as dt

    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    tick = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    spec.write_text(spec.read_text().replace('"0 3 * * 1"', f'"{tick.minute} {tick.hour} * * *"\nfresh_within = "1m"'))
    dags = tmp_path / "dags"
    render([spec], dags)
    assert (dags / "churn_1_training_fresh.py").is_file()
    today = dt.date.today().isoformat()
    assert in_airflow(airflow_env, "test", str(dags), "churn-1-training-fresh", today)["state"] == "failed"
    bc("run", "training", "--date", tick.date().isoformat(), cwd=spec.parent)
    assert in_airflow(airflow_env, "test", str(dags), "churn-1-training-fresh", today)["state"] == "success"


def test_a_wait_for_sensor_fails_past_its_timeout_and_lets_the_run_start_when_the_data_arrives(airflow_env, tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    starting(spec)
    spec.write_text(spec.read_text() + '\n[actions.application.wait_for]\npath = "landing/{{ ds }}/_SUCCESS"\n'
                    'poll = "2s"\ntimeout = "6s"\n')
    bc("run", "training", "--date", "2026-01-01", cwd=spec.parent)
    dags = tmp_path / "dags"
    render([spec], dags)
    parsed = in_airflow(airflow_env, "parse", str(dags))["dags"]["churn-1-application"]
    assert parsed["upstream"] == {"arrived": [], "application": ["arrived"]}
    assert parsed["modes"]["arrived"] == "reschedule"
    assert in_airflow(airflow_env, "test", str(dags), "churn-1-application", "2026-01-01")["state"] == "failed"
    db = spec.parent / ".batchcast" / "warehouse.duckdb"
    assert not any(m.kind == "application" for m in Service(spec).runs())  # the run never started

    spec.write_text(spec.read_text().replace('timeout = "6s"', 'timeout = "5m"'))
    render([spec], dags)
    helper = [str(AIRFLOW_PY), str(HELPER), "test", str(dags), "churn-1-application", "2026-01-01"]
    test = subprocess.Popen(helper, env={**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # the sensor has poked and been rescheduled by now (Airflow starts in about 5 s)
        assert test.poll() is None and not any(m.kind == "application" for m in Service(spec).runs())
        marker = spec.parent / "landing" / "2026-01-01" / "_SUCCESS"
        marker.parent.mkdir(parents=True)
        marker.touch()
        out, err = test.communicate(timeout=240)
    finally:
        test.kill()
    assert json.loads(out.strip().splitlines()[-1])["state"] == "success", err[-3000:]
    assert query(db, "SELECT _logical_date::VARCHAR, count(*) FROM predictions GROUP BY 1") == [("2026-01-01", 1000)]


def test_kubernetes_pod_has_image_env_resources_and_no_secret(airflow_env, tmp_path, monkeypatch):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    spec.write_text(spec.read_text().replace('executor = "local"', '''executor = "kubernetes"
kubernetes = { image = "registry.example/churn:1", secrets = ["churn-credentials"], \
node_selector = { pool = "models" }, resources = { requests = { cpu = "1", memory = "2Gi" }, \
limits = { memory = "4Gi" } }, service_account = "churn-runner" }'''))
    spec.write_text(spec.read_text().replace("[model]", '[storage]\nurl = "gs://models/artifacts"\n\n[model]'))
    monkeypatch.setenv("BATCHCAST__WAREHOUSE__URL", "postgresql://svc:s3cr3t-value@db/warehouse")
    dags = tmp_path / "dags"
    files = render([spec], dags)
    pods = in_airflow(airflow_env, "pod", str(dags), "churn-1-training")
    run = pods["training"]["spec"]
    container = run["containers"][0]
    assert container["image"] == "registry.example/churn:1"
    assert container["command"] == ["batchcast"] and container["args"][:2] == ["run", "training"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["NAME"] == "churn" and env["ACTION"] == "training" and env["LOGICAL_DATE"] == "{{ ds }}"
    assert env["BATCHCAST__STORAGE__URL"] == "gs://models/artifacts"
    assert container["env_from"][0]["secret_ref"]["name"] == "churn-credentials"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert run["node_selector"] == {"pool": "models"} and run["service_account_name"] == "churn-runner"
    assert pods["training_check"]["spec"]["containers"][0]["args"][:2] == ["check", "training"]
    for text in [json.dumps(pods), *(f.read_text() for f in files)]:
        assert "s3cr3t-value" not in text


def test_original_json_config_runs_in_airflow_order(airflow_env, tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "training.json").write_text(json.dumps(ORIGINAL))
    dags = tmp_path / "dags"
    render_config(tmp_path / "cfg", dags)
    parsed = in_airflow(airflow_env, "parse", str(dags))
    assert parsed["import_errors"] == {}
    dag = parsed["dags"]["example-prediction-service-training"]
    assert dag["tasks"] == ["start", "wait", "check"]
    assert dag["upstream"] == {"start": [], "wait": ["start"], "check": ["wait"]}
    assert dag["schedule"] == "0 0 1 * *" and dag["start_date"] == "2019-07-01"


def test_original_json_config_keeps_default_args_catchup_and_root_in_airflow(airflow_env, tmp_path):
    from tests.airflow.test_render import REAL

    configs = tmp_path / "repo" / "configs"
    configs.mkdir(parents=True)
    (configs / "training.json").write_text(json.dumps(REAL))
    bc("airflow", "render", "--from-config", str(configs), "--out", str(tmp_path / "dags"), cwd=tmp_path)
    parsed = in_airflow(airflow_env, "parse", str(tmp_path / "dags"))
    assert parsed["import_errors"] == {}
    dag = parsed["dags"]["churn-training"]
    assert dag["catchup"] is False and dag["description"] == "monthly retraining" and dag["tags"] == ["churn"]
    for args in dag["task_args"].values():
        assert (args["owner"], args["depends_on_past"], args["retries"], args["retry_delay_s"]) == (
            "data-science", True, 2, 120.0)
    assert dag["task_args"]["training-start"]["bash_command"] == f"make -C '{tmp_path / 'repo'}' training-start"


def test_failed_task_alerts_through_the_webhook_variable(airflow_env, tmp_path, churn_repo, webhook):
    url, received = webhook
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    task = svc / "prediction" / "task.py"
    task.write_text(task.read_text().replace("    def training(self) -> None:\n",
                                             "    def training(self) -> None:\n        raise SystemExit(4)\n"))
    spec = svc / "batchcast.toml"
    spec.write_text(spec.read_text().replace(
        '[actions.application]', '[actions.training.airflow]\nalert_webhook_variable = "churn_alerts"\n\n'
                                 '[actions.application]'))
    starting(spec)
    dags = tmp_path / "dags"
    render([spec], dags)
    assert "127.0.0.1" not in (dags / "churn_1_training.py").read_text()
    env = {**airflow_env, "AIRFLOW_VAR_CHURN_ALERTS": url}
    state = in_airflow(env, "test", str(dags), "churn-1-training", "2026-01-01")["state"]
    assert state == "failed"
    assert len(received) == 1 and "churn-1-training failed for 2026-01-01" in received[0]["text"]


def test_gce_chain_waits_without_a_slot_and_checks_the_manifest(airflow_env, gcs_endpoint, tmp_path):
    from tests.store.test_remote import fresh_store

    store = fresh_store("gs")
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    spec = svc / "batchcast.toml"
    spec.write_text(spec.read_text().replace(
        'executor = "local"', 'executor = "gce"\ngce = { project = "my-project", machine_type = "e2-small" }', 1)
        .replace("[model]", f'[storage]\nurl = "{store.url}"\n\n'
                            '[image]\nregistry = "europe-docker.pkg.dev/p"\nproject = "r"\n\n[model]'))
    dags = tmp_path / "dags"
    render([spec], dags)
    dag = in_airflow(airflow_env, "parse", str(dags))["dags"]["churn-1-training"]
    assert dag["tasks"] == ["training_start", "training_wait", "training_check", "training_delete"]
    assert dag["modes"]["training_wait"] == "reschedule"
    text = (dags / "churn_1_training.py").read_text()
    assert "europe-docker.pkg.dev/p/r/churn:1 run training --date {{ ds }}" in text
    assert "zones/europe-west1-b/machineTypes/e2-small" in text

    env = {**airflow_env, "STORAGE_EMULATOR_HOST": gcs_endpoint}
    missing = in_airflow(env, "call", str(dags), "churn-1-training", "training_check", "2026-01-01")
    assert "no committed run for 2026-01-01" in missing["error"]
    # The VM's run, played here by the local executor writing to the same store.
    bc("run", "training", "--date", "2026-01-01", "--executor", "inline", cwd=svc,
       env={"BATCHCAST__STORAGE__URL": store.url})
    found = in_airflow(env, "call", str(dags), "churn-1-training", "training_check", "2026-01-01")
    assert found.get("ok", "").startswith("churn/1/training/"), found


def test_a_beam_application_runs_in_airflow_like_any_run(airflow_env, tmp_path):
    """The BashOperator runs `batchcast run application`, which scores on Beam because the spec says so."""
    from tests.conftest import write_python_service

    spec = write_python_service(tmp_path, rows=3000)
    spec.write_text(spec.read_text().replace(
        '[actions.application]\nexecutor = "inline"',
        '[actions.application]\nexecutor = "beam"\nschedule = "@daily"\nstart_date = 2026-01-01'))
    bc("run", "training", cwd=tmp_path)
    dags = tmp_path / "dags"
    [dag] = render([spec], dags)
    assert "batchcast" in dag.read_text() and "run application" in dag.read_text()
    assert in_airflow(airflow_env, "test", str(dags), "scores-2-application", "2026-01-02")["state"] == "success"
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT count(*) FROM scores WHERE _logical_date = DATE '2026-01-02'") == [(3000,)]
    run = json.loads(bc("show", "--json", cwd=tmp_path).stdout)
    assert run["action"] == "application" and run["inputs"]["runner"] == "DirectRunner", run
    assert len(run["outputs"]["shards"]) == run["inputs"]["shards"]
