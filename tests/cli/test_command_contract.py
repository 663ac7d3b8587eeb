"""The command contract end to end through the CLI, as a new user meets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import bc, bc_json, query

EXECUTORS = ["local", "inline"]


def warehouse(service: Path) -> Path:
    return service / ".batchcast" / "warehouse.duckdb"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_adopt_train_apply_idempotent(adopted, churn_repo, executor):
    untouched = sorted(p.relative_to(churn_repo) for p in churn_repo.rglob("*"))
    bc("run", "training", "--executor", executor, cwd=adopted)
    bc("run", "application", "--date", "2026-01-01", "--executor", executor, cwd=adopted)
    db = warehouse(adopted)
    columns = query(db, "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'predictions' ORDER BY ordinal_position")
    assert columns == [("player_id", "VARCHAR"), ("label", "BOOLEAN"), ("_logical_date", "DATE"),
                       ("_run_id", "VARCHAR"), ("_model_run", "VARCHAR"),
                       ("_predicted_at", "TIMESTAMP WITH TIME ZONE")]
    assert query(db, "SELECT count(*), count(DISTINCT player_id) FROM predictions") == [(1000, 1000)]

    bc("run", "application", "--date", "2026-01-01", "--executor", executor, cwd=adopted)
    assert query(db, "SELECT count(*) FROM predictions") == [(1000,)]
    bc("run", "application", "--date", "2026-01-02", "--executor", executor, cwd=adopted)
    assert query(db, "SELECT _logical_date::VARCHAR, count(*) FROM predictions GROUP BY 1 ORDER BY 1") == [
        ("2026-01-01", 1000), ("2026-01-02", 1000)]
    assert sorted(p.relative_to(churn_repo) for p in churn_repo.rglob("*")) == untouched

    runs = bc_json("runs", cwd=adopted)
    assert [(r["action"], r["status"], r["logical_date"]) for r in runs][1:] == [
        ("application", "succeeded", "2026-01-01"), ("application", "succeeded", "2026-01-01"),
        ("application", "succeeded", "2026-01-02")]
    for r in runs:
        assert {"run_id", "action", "status", "logical_date", "started_at", "ended_at", "rows"} <= set(r)
    assert runs[-1]["rows"] == {"written": 1000}
    assert runs[-1]["model_run"] == runs[0]["run_id"]

    manifest = bc_json("show", runs[0]["run_id"], cwd=adopted)
    assert manifest["status"] == "succeeded" and manifest["executor"] == executor
    assert {"output/model.joblib", "output/metrics.json", "log.txt"} <= set(manifest["files"])
    assert 0.5 < manifest["metrics"]["accuracy"] <= 1.0
    artifacts = adopted / ".batchcast" / "artifacts" / runs[0]["run_id"]
    assert (artifacts / "manifest.json").exists() and (artifacts / "output" / "model.joblib").exists()
    assert "trained on 4000 rows" in (artifacts / "log.txt").read_text()


def test_model_environment_variables(adopted, churn_repo):
    # A model that records what batchcast gave it.
    task = churn_repo / "prediction" / "task.py"
    task.write_text(task.read_text().replace(
        "    def training(self) -> None:\n",
        "    def training(self) -> None:\n"
        "        keys = ['NAME', 'VERSION', 'ACTION', 'RUN_ID', 'LOGICAL_DATE', 'OUTPUT_DIR', 'MODEL_DIR']\n"
        "        (self.output / 'env.json').write_text(json.dumps({k: os.environ[k] for k in keys}))\n"))
    bc("run", "training", "--date", "2026-02-03", "--executor", "inline", cwd=adopted)
    run = bc_json("runs", cwd=adopted)[0]
    env = json.loads((adopted / ".batchcast/artifacts" / run["run_id"] / "output/env.json").read_text())
    assert env["NAME"] == "churn" and env["VERSION"] == "1" and env["ACTION"] == "training"
    assert env["RUN_ID"] == run["run_id"] and env["LOGICAL_DATE"] == "2026-02-03"
    assert env["OUTPUT_DIR"] == env["MODEL_DIR"] and env["OUTPUT_DIR"].endswith("/repo/output")
    assert not env["OUTPUT_DIR"].startswith(str(churn_repo))  # a per-run copy, never the repo itself


def test_tampered_model_fails_before_loading(adopted):
    bc("run", "training", "--executor", "inline", cwd=adopted)
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted)
    training = bc_json("runs", cwd=adopted)[0]["run_id"]
    model = adopted / ".batchcast/artifacts" / training / "output/model.joblib"
    data = bytearray(model.read_bytes())
    data[100] ^= 0x01
    model.write_bytes(bytes(data))

    result = bc("run", "application", "--date", "2026-01-02", "--executor", "inline", cwd=adopted, ok=False)
    assert f"{training}/output/model.joblib: sha256" in result.stderr
    assert "differs from the manifest" in result.stderr
    assert query(warehouse(adopted), "SELECT _logical_date::VARCHAR, count(*) FROM predictions GROUP BY 1") == [
        ("2026-01-01", 1000)]
    failed = bc_json("runs", cwd=adopted)[-1]
    assert failed["status"] == "failed" and "model.joblib" in failed["error"]
    log = (adopted / ".batchcast/artifacts" / failed["run_id"] / "log.txt").read_text()
    assert "running python -m prediction.main" not in log  # the model never started


def test_failing_command_leaves_table_and_champion(adopted, churn_repo):
    bc("run", "training", "--executor", "inline", cwd=adopted)
    champion = bc_json("runs", cwd=adopted)[0]["run_id"]
    bc("promote", champion, cwd=adopted)
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted)
    before = query(warehouse(adopted), "SELECT * FROM predictions ORDER BY player_id")

    task = churn_repo / "prediction" / "task.py"
    task.write_text(task.read_text().replace("labels = model.predict(X)", "raise ValueError('bad feature 7')"))
    result = bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted, ok=False)
    assert "exited with code 1" in result.stderr and "ValueError: bad feature 7" in result.stderr
    assert query(warehouse(adopted), "SELECT * FROM predictions ORDER BY player_id") == before
    models = bc_json("models", cwd=adopted)
    assert models[0]["run_id"] == champion and models[0]["aliases"] == ["champion"]
    failed = bc_json("show", bc_json("runs", cwd=adopted)[-1]["run_id"], cwd=adopted)
    assert failed["status"] == "failed" and failed["error"]["type"] == "ModelError"


def test_schema_mismatch_in_predictions_file_names_column(adopted, churn_repo):
    bc("run", "training", "--executor", "inline", cwd=adopted)
    task = churn_repo / "prediction" / "task.py"
    task.write_text(task.read_text().replace('"true" if label else "false"', '"maybe"'))
    result = bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted, ok=False)
    assert "predictions.csv" in result.stderr and "column 'label'" in result.stderr
    assert query(warehouse(adopted), "SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_name = 'predictions'") == [(0,)]


def test_promote_selects_the_model_applied(adopted):
    bc("run", "training", "--executor", "inline", cwd=adopted)
    bc("run", "training", "--executor", "inline", cwd=adopted)
    first, second = (r["run_id"] for r in bc_json("runs", cwd=adopted))
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted)
    assert bc_json("runs", cwd=adopted)[-1]["model_run"] == second  # latest by default
    bc("promote", first, cwd=adopted)
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted)
    assert bc_json("runs", cwd=adopted)[-1]["model_run"] == first  # the champion wins
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", "--model", second, cwd=adopted)
    assert bc_json("runs", cwd=adopted)[-1]["model_run"] == second
    assert query(warehouse(adopted), "SELECT DISTINCT _model_run FROM predictions") == [(second,)]


def test_application_without_a_model_is_refused(adopted):
    result = bc("run", "application", "--executor", "inline", cwd=adopted, ok=False)
    assert "no successful training run of churn/1" in result.stderr
    assert "batchcast run training" in result.stderr
    assert bc_json("runs", cwd=adopted) == []


def test_timeout_kills_the_process_tree(adopted, churn_repo, tmp_path):
    marker = tmp_path / "survived"
    task = churn_repo / "prediction" / "task.py"
    task.write_text(task.read_text().replace(
        "    def training(self) -> None:\n",
        "    def training(self) -> None:\n"
        "        import subprocess, time\n"
        f"        subprocess.Popen(['sh', '-c', 'sleep 3; touch {marker}'])\n"
        "        time.sleep(60)\n"))
    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[actions.training]\n", "[actions.training]\ntimeout = 1\n"))
    result = bc("run", "training", "--executor", "inline", cwd=adopted, ok=False)
    assert "timed out" in result.stdout and "timeout of 1 s" in result.stderr
    import time

    time.sleep(3.5)
    assert not marker.exists()
    assert bc_json("runs", cwd=adopted)[0]["status"] == "timed out"


def test_empty_predictions_keep_the_dates_rows_unless_allowed(adopted, churn_repo):
    """A header-only predictions file used to publish 0 rows, deleting the date (issue 13, defect 1)."""
    bc("run", "training", "--executor", "inline", cwd=adopted)
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted)
    task = churn_repo / "prediction" / "task.py"
    task.write_text(task.read_text().replace("zip(ids, labels))", "zip(ids, labels) if os.environ.get('KEEP'))"))
    db = warehouse(adopted)
    before = query(db, "SELECT _run_id, count(*) FROM predictions GROUP BY 1")

    out = bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted, ok=False)
    assert out.returncode == 1
    assert "predictions.csv holds no rows for 2026-01-01" in out.stderr and "allow_empty = true" in out.stderr
    assert query(db, "SELECT _run_id, count(*) FROM predictions GROUP BY 1") == before
    assert bc_json("runs", cwd=adopted)[-1]["status"] == "failed"

    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace('schema = "player_id:STRING,label:BOOL"\n',
                                             'schema = "player_id:STRING,label:BOOL"\nallow_empty = true\n'))
    assert "allow_empty = true" in spec.read_text()
    bc("run", "application", "--date", "2026-01-01", "--executor", "inline", cwd=adopted)
    assert query(db, "SELECT count(*) FROM predictions") == [(0,)]


@pytest.mark.parametrize("metrics", ["[0.9, 0.8]", '"accurate"', "NaN"])
def test_metrics_that_are_not_an_object_are_ignored_with_a_warning(tmp_path, metrics):
    """Issue 26.11: a metrics.json holding a list was a traceback (a bare NaN is read as the float nan)."""
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    task = svc / "prediction" / "task.py"
    task.write_text(task.read_text().replace('json.dumps({"accuracy": accuracy})', repr(metrics)))
    out = bc("run", "training", "--executor", "inline", cwd=svc)
    assert "metrics.json holds a" in out.stderr and "metrics ignored" in out.stderr, out.stderr
    assert bc_json("models", cwd=svc)[0]["metrics"] == {}
