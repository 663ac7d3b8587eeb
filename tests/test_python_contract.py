"""The Python contract through the library: fit/predict classes, streamed application, evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from batchcast import RunStatus, Service
from batchcast.errors import RunNotFound
from batchcast.model.contract import as_input
from tests.conftest import bc, query, write_python_service


@pytest.fixture
def service(tmp_path):
    return Service(write_python_service(tmp_path, rows=30_000))


def db(service: Service):
    return service.spec.root / ".batchcast" / "warehouse.duckdb"


def test_train_apply_evaluate_inline(service):
    trained = service.run("training", "2026-01-01")
    assert trained.succeeded, trained.error
    assert trained.rows == {"read": 20_000}
    assert 0.7 < trained.metrics["accuracy"] <= 1.0
    assert "roc_auc" not in trained.metrics  # the plain class has no predict_proba
    stored = service.spec.root / ".batchcast/artifacts" / trained.run_id
    meta = json.loads((stored / "output/model_meta.json").read_text())
    assert meta["features"] == [f"f{i}" for i in range(1, 9)]
    assert meta["format"] == "joblib" and f"output/{meta['file']}" in trained.files

    applied = service.run("application", "2026-01-05")
    assert applied.succeeded, applied.error
    assert applied.model_run == trained.run_id
    assert applied.rows == {"read": 30_000, "written": 30_000}
    assert query(db(service), "SELECT count(*), count(DISTINCT player_id), sum(label::INT) > 0 FROM scores") == [
        (30_000, 30_000, True)]

    evaluated = service.run("evaluation", "2026-01-02")
    assert evaluated.succeeded, evaluated.error
    assert evaluated.rows["read"] == 10_000 and 0.7 < evaluated.metrics["accuracy"] <= 1.0


def test_model_raising_leaves_table_and_champion(service, monkeypatch):
    trained = service.run("training")
    service.promote(trained.run_id)
    service.run("application", "2026-01-05")
    before = query(db(service), "SELECT count(*), max(_run_id) FROM scores")
    monkeypatch.setenv("MODEL_FAIL", "1")
    failed = service.run("application", "2026-01-05")
    assert failed.status is RunStatus.FAILED
    assert failed.error["type"] == "ModelError"
    assert "predict() raised RuntimeError: model exploded on purpose" in failed.error["message"]
    assert query(db(service), "SELECT count(*), max(_run_id) FROM scores") == before
    assert service.store.alias("scores", "2", "champion") == trained.run_id
    log = (service.spec.root / ".batchcast/artifacts" / failed.run_id / "log.txt").read_text()
    assert "Traceback" in log and "model exploded on purpose" in log


def test_an_inline_run_prints_the_model_s_error_without_its_traceback(tmp_path):
    """Issue 26.14: the model's traceback belongs in the run's log (and after --verbose), not on the console."""
    write_python_service(tmp_path, rows=300)
    bc("run", "training", cwd=tmp_path)
    failed = bc("run", "application", "--date", "2026-01-05", cwd=tmp_path, env={"MODEL_FAIL": "1"}, ok=False)
    assert "model exploded on purpose" in failed.stderr and "fix: " in failed.stderr
    assert "Traceback" not in failed.stderr, failed.stderr
    [log] = (tmp_path / ".batchcast/artifacts/scores/2/application").glob("*/log.txt")
    assert "Traceback" in log.read_text()
    verbose = bc("--verbose", "run", "application", "--date", "2026-01-05", cwd=tmp_path, env={"MODEL_FAIL": "1"},
                 ok=False)
    assert "Traceback" in verbose.stderr


def test_tampered_model_is_refused_before_loading(service):
    trained = service.run("training")
    path = service.spec.root / ".batchcast/artifacts" / trained.run_id / "output" / "model_meta.json"
    path.write_text(path.read_text() + " ")
    failed = service.run("application", "2026-01-05")
    assert failed.error["type"] == "IntegrityError"
    assert "output/model_meta.json: sha256" in failed.error["message"]
    assert query(db(service), "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]


def test_missing_feature_and_empty_input_are_named(service):
    service.run("training")
    spec = service.spec.file
    spec.write_text(spec.read_text().replace("SELECT * EXCLUDE (churned) FROM features",
                                             "SELECT * EXCLUDE (churned, f3) FROM features"))
    failed = Service(spec).run("application", "2026-01-05")
    assert "feature column 'f3' is missing" in failed.error["message"]
    spec.write_text(spec.read_text().replace("EXCLUDE (churned, f3) FROM features",
                                             "EXCLUDE (churned) FROM features WHERE false"))
    failed = Service(spec).run("application", "2026-01-05")
    assert failed.error["type"] == "InputError" and "returned no rows" in failed.error["message"]


def test_allow_empty_publishes_an_empty_input_as_an_empty_date(service):
    service.run("training")
    assert service.run("application", "2026-01-05").succeeded
    spec = service.spec.file
    spec.write_text(spec.read_text().replace("SELECT * EXCLUDE (churned) FROM features",
                                             "SELECT * EXCLUDE (churned) FROM features WHERE false")
                    .replace('schema = "player_id:STRING,label:BOOL" }', 'schema = "player_id:STRING,label:BOOL", '
                                                                          'allow_empty = true }'))
    emptied = Service(spec).run("application", "2026-01-05")
    assert emptied.succeeded and emptied.rows == {"read": 0, "written": 0}
    assert query(db(service), "SELECT count(*) FROM scores WHERE _logical_date = DATE '2026-01-05'") == [(0,)]


def test_sklearn_estimator_works_as_is(tmp_path):
    spec = write_python_service(tmp_path, rows=5_000)
    spec.write_text(spec.read_text().replace('entrypoint = "model:Model"',
                                             'entrypoint = "sklearn.ensemble:RandomForestClassifier"'))
    (tmp_path / "repo/configs/training.json").write_text(json.dumps({"params": {"n_estimators": 5}}))
    service = Service(spec)
    trained = service.run("training")
    assert 0.5 < trained.metrics["roc_auc"] <= 1.0 and trained.metrics["log_loss"] > 0
    assert service.run("application", "2026-01-05").rows["written"] == 5_000


def test_parquet_input_templated_by_date(tmp_path):
    spec = write_python_service(tmp_path, rows=3_000)
    import duckdb

    data = tmp_path / "data"
    data.mkdir()
    con = duckdb.connect(str(tmp_path / ".batchcast/warehouse.duckdb"))
    con.execute(f"COPY (SELECT * EXCLUDE (churned) FROM features WHERE day = DATE '2026-01-02') "
                f"TO '{data}/day=2026-01-02.parquet'")
    con.close()
    spec.write_text(spec.read_text().replace(
        'input = { query = "SELECT * EXCLUDE (churned) FROM features" }',
        'input = { path = "data/day={{ ds }}.parquet" }'))
    service = Service(spec)
    service.run("training")
    assert service.run("application", "2026-01-02").rows == {"read": 1000, "written": 1000}
    missing = service.run("application", "2026-01-09")
    assert "no files match 'data/day=2026-01-09.parquet'" in missing.error["message"]


def test_local_executor_runs_in_an_isolated_venv(tmp_path):
    spec = write_python_service(tmp_path, rows=5_000, executor="local")
    (tmp_path / "repo" / "model.py").write_text(
        (tmp_path / "repo" / "model.py").read_text() +
        "\nimport sys\nINTERPRETER = sys.executable\n")
    service = Service(spec)
    trained = service.run("training")
    assert trained.succeeded, trained.error
    applied = service.run("application", "2026-01-05")
    assert applied.succeeded, applied.error and applied.rows["written"] == 5_000
    log = (tmp_path / ".batchcast/artifacts" / applied.run_id / "log.txt").read_text()
    assert "publishing 5000 rows" in log  # the stored log ends as the run commits, inside the publish
    assert applied.versions["pyarrow"]  # recorded by the worker inside the venv


def test_cli_runs_python_contract_and_unknown_model_ref(tmp_path):
    write_python_service(tmp_path, rows=2_000)
    bc("run", "training", cwd=tmp_path)
    result = bc("run", "application", "--model", "nope", cwd=tmp_path, ok=False)
    assert "'nope' names no alias and no single run of scores/2" in result.stderr
    with pytest.raises(RunNotFound):
        Service(tmp_path / "batchcast.toml").show("nope")


def test_two_services_in_one_process_use_their_own_model_module(tmp_path):
    first = Service(write_python_service(tmp_path / "a", rows=2_000))
    second_spec = write_python_service(tmp_path / "b", rows=2_000)
    model = tmp_path / "b" / "repo" / "model.py"
    model.write_text(model.read_text().replace("return self.inner.predict(X)", "return self.inner.predict(X) | True"))
    second = Service(second_spec)
    for service in (first, second):
        assert service.run("training").succeeded
        assert service.run("application", "2026-01-05").succeeded
    assert query(db(first), "SELECT bool_and(label) FROM scores") == [(False,)]
    assert query(db(second), "SELECT bool_and(label) FROM scores") == [(True,)]


def test_a_model_an_earlier_version_saved_with_skops_still_loads(tmp_path):
    """Champions trained before the switch to joblib are skops files; an upgrade must not strand them."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from batchcast.model import files

    X = np.random.default_rng(0).normal(size=(200, 3))
    fitted = LogisticRegression().fit(X, X[:, 0] > 0)
    folder = tmp_path / "output"
    folder.mkdir()
    (folder / "model.skops").write_bytes(sio.dumps(fitted))
    (folder / files.META).write_text(json.dumps({
        "entrypoint": "sklearn.linear_model:LogisticRegression", "features": ["a", "b", "c"], "label": "y",
        "input_format": "numpy", "rows": 200, "format": "skops", "file": "model.skops"}))
    loaded, meta = files.load(folder, tmp_path)
    assert meta["format"] == "skops"
    assert (loaded.predict(X) == fitted.predict(X)).all()


def test_float_features_reach_the_model_as_the_frame_to_pandas_builds():
    """Float columns take a faster road to pandas (one block); what the model gets must not change."""
    table = pa.table({"a": [1.5, None], "b": [2.0, 3.0], "c": pa.array([1, 2]), "d": ["x", "y"]})
    fast = as_input(table, ["b", "a"], "pandas")
    pd.testing.assert_frame_equal(fast, table.select(["b", "a"]).to_pandas(), check_column_type=False)
    assert list(fast.columns) == ["b", "a"] and np.isnan(fast["a"][1])
    mixed = as_input(table, ["a", "c", "d"], "pandas")  # not all floats: to_pandas, types as they are
    assert [str(t) for t in mixed.dtypes] == ["float64", "int64", str(table.select(["d"]).to_pandas()["d"].dtype)]
