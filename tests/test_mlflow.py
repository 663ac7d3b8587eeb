"""MLflow both ways, against a real ``mlflow server`` (SQLite, served artifacts) on 127.0.0.1.

One way: a model logged and registered with MLflow's own API (in MLflow's own
environment, ``tests/mlflow_side.py``) is applied, served and streamed by
batchcast from ``models:/NAME@champion``, each in an environment built from the
model's requirements; its predictions equal ``mlflow.pyfunc.load_model(...).predict``,
compared in SQL. The other way: batchcast's training runs appear in the server
with their metrics and a registered version, and batchcast's alias moves move
the registered alias. The server is stopped last: training goes on, and says so once.
"""

from __future__ import annotations

import json
import textwrap
import uuid

import duckdb
import pytest

from tests.conftest import bc, bc_json, make_features, write_python_service
from tests.serving.servers import call, start, stop
from tests.streaming.common import Consumer, count, rows, until

pytestmark = pytest.mark.slow  # a tracking server, and model environments built from PyPI
ROWS = 2000
DAY = "2026-01-01"
OLD_SKLEARN = "1.5.2"


def _export(root) -> str:
    """The features as Parquet, for MLflow's side (which has no DuckDB)."""
    path = root / "rows.parquet"
    con = duckdb.connect(str(root / ".batchcast" / "warehouse.duckdb"))
    con.execute(f"COPY (SELECT * FROM features ORDER BY player_id) TO '{path}' (FORMAT parquet)")
    con.close()
    return str(path)


def _sql(root, sql: str) -> list[tuple]:
    con = duckdb.connect(str(root / ".batchcast" / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def _agreeing(root, table: str, expected) -> int:
    """Rows of ``table`` whose label equals MLflow's prediction for the same player."""
    return _sql(root, f"SELECT count(*) FROM {table} s JOIN read_parquet('{expected}') e USING (player_id) "
                      "WHERE s.label = e.label")[0][0]


@pytest.fixture(scope="module")
def registered(tmp_path_factory, mlflow_tracking):
    """A service applying ``models:/NAME@champion``, registered by MLflow's API (version 1)."""
    root = tmp_path_factory.mktemp("mlflow-model")
    make_features(root / ".batchcast" / "warehouse.duckdb", ROWS)
    parquet = _export(root)
    name = f"churn-{uuid.uuid4().hex[:6]}"
    assert mlflow_tracking.python("register", "--rows", parquet, "--name", name).stdout.strip() == "1"
    (root / "batchcast.toml").write_text(textwrap.dedent(f'''
        [service]
        name = "churn"
        version = "1"

        [model]
        mlflow = "models:/{name}@champion"
        ids = ["player_id"]

        [mlflow]
        tracking_uri = "{mlflow_tracking.url}"

        [actions.application]
        input = {{ query = "SELECT * EXCLUDE (churned) FROM features" }}
        output = {{ table = "scores", schema = "player_id:STRING,label:BOOL" }}
        '''))
    return root, name, parquet


def _expected(server, model: str, parquet: str, out) -> str:
    server.python("predict", "--model", model, "--rows", parquet, "--out", str(out))
    return str(out)


def test_a_registered_model_is_applied_in_its_own_environment_as_mlflow_predicts_it(registered, mlflow_tracking):
    root, name, parquet = registered
    bc("run", "application", "--date", DAY, cwd=root)
    expected = _expected(mlflow_tracking, f"models:/{name}@champion", parquet, root / "v1.parquet")
    assert _sql(root, "SELECT count(*) FROM scores")[0][0] == ROWS
    assert _agreeing(root, "scores", expected) == ROWS
    runs = bc_json("runs", cwd=root)
    assert [r["action"] for r in runs] == ["training", "application"]  # imported once, first
    applied = bc_json("show", runs[-1]["run_id"], cwd=root)
    assert applied["inputs"]["model"]["registered_model"] == name and applied["inputs"]["model"]["version"] == "1"
    packages = applied["environment"]["packages"]  # the model's requirements.txt, MLflow as mlflow-skinny
    assert "mlflow-skinny" in packages and "mlflow" not in packages and "scikit-learn" in packages
    imported = bc_json("show", runs[0]["run_id"], cwd=root)
    assert any(path.startswith("output/mlflow/") for path in imported["files"])  # every file's sha256 recorded
    bc("run", "application", "--date", DAY, cwd=root)  # the alias has not moved: no second import
    assert [r["action"] for r in bc_json("runs", cwd=root)].count("training") == 1


def test_served_as_mlflow_predicts_and_swapped_when_the_registry_alias_moves(registered, mlflow_tracking):
    root, name, parquet = registered
    records = [{k: v for k, v in row.items() if k.startswith("f")}
               for row in rows(root, "SELECT * FROM features ORDER BY player_id LIMIT 200")]
    ids = [r[0] for r in _sql(root, "SELECT player_id FROM features ORDER BY player_id LIMIT 200")]
    first = _labels(root, "v1.parquet", ids)
    port, server = start(root, "--poll", "0.5")  # in an environment built from the model's requirements
    try:
        status, _, answer = call(port, "/invocations", {"dataframe_records": records})
        assert status == 200 and answer["predictions"] == first
        assert mlflow_tracking.python("register", "--rows", parquet, "--name", name, "--flip").stdout.strip() == "2"
        bc("run", "application", "--date", DAY, cwd=root)  # resolves champion again: imports version 2
        flipped = _expected(mlflow_tracking, f"models:/{name}@champion", parquet, root / "v2.parquet")
        assert _agreeing(root, "scores", flipped) == ROWS
        second = _labels(root, "v2.parquet", ids)
        assert second != first
        until(lambda: call(port, "/invocations", {"dataframe_records": records})[2]["predictions"] == second,
              30, "the server to swap to version 2")
    finally:
        stop(server)


def test_streamed_as_mlflow_predicts(registered, kafka_broker):
    root, _, _ = registered
    topic = f"events-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, 1)
    with (root / "batchcast.toml").open("a") as spec:
        spec.write(f'\n[stream]\nsource = "{kafka_broker.url(topic)}"\ntable = "streamed"\nport = 0\n')
    found = rows(root, "SELECT * EXCLUDE (churned, day) FROM features ORDER BY player_id LIMIT 300")
    kafka_broker.produce(topic, [json.dumps(row).encode() for row in found])
    with Consumer(root) as consumer:  # --inline: the loader is the one serve and the application use
        until(lambda: count(root, "streamed") == 300, 60, "300 streamed rows", consumer)
        consumer.stop()
    assert _agreeing(root, "streamed", root / "v2.parquet") == 300


def test_an_alias_that_names_nothing_fails_in_one_line_and_leaves_table_and_champion_as_they_were(registered):
    root, name, _ = registered
    before = _sql(root, "SELECT player_id, label FROM scores ORDER BY player_id")
    champion = bc_json("models", cwd=root)
    done = bc("run", "application", "--date", DAY, cwd=root, ok=False,
              env={"BATCHCAST__MODEL__MLFLOW": f"models:/{name}@nobody"})
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-2]
    assert error.startswith("error: ") and f"models:/{name}@nobody" in error and "alias" in error.lower(), done.stderr
    assert _sql(root, "SELECT player_id, label FROM scores ORDER BY player_id") == before
    assert bc_json("models", cwd=root) == champion


def test_a_model_pinning_an_older_scikit_learn_runs_with_that_version(tmp_path, mlflow_tracking):
    import sklearn

    assert sklearn.__version__ != OLD_SKLEARN  # batchcast's own
    make_features(tmp_path / ".batchcast" / "warehouse.duckdb", 100)
    mlflow_tracking.python("old", "--dest", str(tmp_path / "models" / "old"), "--sklearn", OLD_SKLEARN)
    (tmp_path / "batchcast.toml").write_text(textwrap.dedent('''
        [service]
        name = "versions"
        version = "1"

        [model]
        mlflow = "models/old"

        [actions.application]
        input = { query = "SELECT * FROM features" }
        output = { table = "versions", schema = "player_id:STRING,sklearn:STRING" }
        '''))
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    assert _sql(tmp_path, "SELECT DISTINCT sklearn FROM versions") == [(OLD_SKLEARN,)]
    packages = bc_json("show", bc_json("runs", cwd=tmp_path)[-1]["run_id"], cwd=tmp_path)["environment"]["packages"]
    assert packages["scikit-learn"] == OLD_SKLEARN


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_tracking):
    """A Python-contract service that saves MLflow's format and logs to the server, with a promotion gate."""
    root = tmp_path_factory.mktemp("mlflow-tracked")
    experiment = f"scores-{uuid.uuid4().hex[:6]}"
    spec = write_python_service(root, 3000, executor="local", extra=textwrap.dedent(f'''
        [mlflow]
        tracking_uri = "{mlflow_tracking.url}"
        experiment = "{experiment}"
        registered_model = "{experiment}"

        [actions.training.promote]
        metric = "accuracy"
        '''))
    spec.write_text(spec.read_text().replace('label = "churned"', 'label = "churned"\nsave_mlflow = true'))
    return root, experiment


def _logged(server, experiment: str) -> dict:
    return json.loads(server.python("runs", "--experiment", experiment).stdout)


def test_training_runs_are_logged_registered_and_alias_moves_mirrored(trained, mlflow_tracking):
    root, experiment = trained
    first = bc_json("run", "training", cwd=root)
    logged = _logged(mlflow_tracking, experiment)
    assert len(logged["runs"]) == 1
    run = logged["runs"][0]
    assert run["metrics"]["accuracy"] == pytest.approx(first["metrics"]["accuracy"])
    assert run["params"] == {"C": "0.5"} and run["tags"]["batchcast.run_id"] == first["run_id"]
    assert {"manifest.json", "model"} <= set(run["artifacts"])
    assert [v["tags"]["batchcast.run_id"] for v in logged["versions"]] == [first["run_id"]]
    assert _alias(mlflow_tracking, experiment) == "1"  # the gate promoted it, before it was logged

    # The registered version is an MLflow model: MLflow's own loader predicts what batchcast applies.
    bc("run", "application", "--date", DAY, cwd=root)
    expected = _expected(mlflow_tracking, f"models:/{experiment}@champion", _export(root), root / "e.parquet")
    assert _agreeing(root, "scores", expected) == _sql(root, "SELECT count(*) FROM scores")[0][0] == 3000

    (root / "repo" / "configs" / "training.json").write_text(json.dumps({"params": {"C": 0.001}}))
    second = bc_json("run", "training", cwd=root)
    assert second["promotion"]["decision"] == "refused" and _alias(mlflow_tracking, experiment) == "1"
    bc("promote", second["run_id"], cwd=root)
    assert _alias(mlflow_tracking, experiment) == "2"
    bc("rollback", cwd=root)
    assert _alias(mlflow_tracking, experiment) == "1"

    evaluated = bc_json("run", "evaluation", "--date", DAY, cwd=root)
    logged = {r["tags"]["batchcast.run_id"]: r for r in _logged(mlflow_tracking, experiment)["runs"]}
    assert logged[evaluated["run_id"]]["metrics"]["accuracy"] == pytest.approx(evaluated["metrics"]["accuracy"])
    assert logged[evaluated["run_id"]]["tags"]["batchcast.model_run"] == first["run_id"]  # the champion it scored
    assert len(logged) == 3 and len(_logged(mlflow_tracking, experiment)["versions"]) == 2  # evaluations: no version


def test_a_stopped_tracking_server_never_fails_training_says_so_once_and_is_caught_up(trained, registered,
                                                                                      mlflow_tracking):
    root, experiment = trained
    before = len(_logged(mlflow_tracking, experiment)["runs"])
    applied = _sql(registered[0], "SELECT count(*), count(DISTINCT _run_id) FROM scores")
    mlflow_tracking.stop()
    try:
        said = [bc("run", "training", cwd=root) for _ in range(2)]
        # An application cannot resolve its model: it fails before any run exists (the scheduler retries it).
        unresolved = bc("run", "application", "--date", DAY, cwd=registered[0], ok=False)
    finally:
        mlflow_tracking.start()
    assert unresolved.returncode == 1 and "did not answer" in unresolved.stderr, unresolved.stderr
    assert _sql(registered[0], "SELECT count(*), count(DISTINCT _run_id) FROM scores") == applied
    assert all("succeeded" in done.stdout for done in said)
    text = "".join(done.stdout + done.stderr for done in said)
    assert text.count("could not log to MLflow") == 1, text
    assert len(_logged(mlflow_tracking, experiment)["runs"]) == before  # nothing sent while it was down
    bc("run", "training", cwd=root)
    assert len(_logged(mlflow_tracking, experiment)["runs"]) == before + 3
    assert not list((root / ".batchcast" / "mlflow-pending").glob("*.json"))


def _alias(server, name: str) -> str:
    return server.python("alias", "--name", name).stdout.strip()


def _labels(root, name: str, ids: list[str]) -> list[bool]:
    found = dict(_sql(root, f"SELECT player_id, label FROM read_parquet('{root / name}')"))
    return [found[i] for i in ids]
