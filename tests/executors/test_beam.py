"""executor = "beam": the application scored by Apache Beam writes exactly what an inline run writes.

Locally Beam's in-process runner runs one worker process per core; the
runners of a cluster (Dataflow, Flink, Spark) cannot run here, so what
batchcast gives them is checked as option tests.
"""

from __future__ import annotations

import duckdb
import pytest

from batchcast.executors.beam import BeamSettings, pipeline_options
from tests.conftest import bc, query, write_python_service

DAY = "2026-01-02"


def test_options_for_the_local_runner_use_every_core_in_processes():
    options = pipeline_options(BeamSettings(), workers=2)
    assert options == {"runner": "FnApiRunner", "direct_running_mode": "multi_processing", "direct_num_workers": 2}


@pytest.mark.parametrize("runner, options", [
    ("DataflowRunner", {"project": "acme", "region": "europe-west1", "temp_location": "gs://acme-tmp/beam",
                        "num_workers": 8, "machine_type": "n2-highcpu-8",
                        "sdk_container_image": "europe-docker.pkg.dev/acme/models/churn:1"}),
    ("FlinkRunner", {"flink_master": "flink.internal:8081", "parallelism": 16, "environment_type": "DOCKER"}),
    ("SparkRunner", {"spark_master_url": "spark://spark.internal:7077", "environment_type": "DOCKER"}),
])
def test_options_for_a_cluster_runner_are_passed_as_given(runner, options):
    """An option test: no cluster is reachable here, so this checks what batchcast hands Beam, not a run."""
    built = pipeline_options(BeamSettings(runner=runner, options=options))
    assert built == {"runner": runner, **options}


def beam_service(root, extra: str = ""):
    write_python_service(root, rows=3000, extra=extra)
    text = (root / "batchcast.toml").read_text()
    (root / "batchcast.toml").write_text(text.replace(
        '[actions.application]\nexecutor = "inline"', '[actions.application]\nexecutor = "beam"'))
    bc("run", "training", cwd=root)


def same_rows(db, table_a: str, table_b: str) -> bool:
    cols = "player_id, label"
    return query(db, f"SELECT count(*) FROM ((SELECT {cols} FROM {table_a} EXCEPT SELECT {cols} FROM {table_b}) "
                     f"UNION ALL (SELECT {cols} FROM {table_b} EXCEPT SELECT {cols} FROM {table_a}))")[0][0] == 0


def test_beam_writes_what_inline_writes_from_a_duckdb_query(tmp_path):
    beam_service(tmp_path)
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE by_beam AS SELECT * FROM scores")
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    assert query(db, "SELECT count(*) FROM by_beam")[0][0] == 3000
    assert same_rows(db, "by_beam", "scores")
    shards = query(db, "SELECT count(DISTINCT _run_id) FROM by_beam")[0][0]
    assert shards == 1  # one run, one transaction


def test_beam_writes_what_inline_writes_from_a_parquet_glob(tmp_path):
    beam_service(tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    (tmp_path / "data").mkdir()
    with duckdb.connect(str(db)) as con:
        for day in range(3):
            con.execute(f"COPY (SELECT * EXCLUDE (churned) FROM features WHERE day = DATE '2026-01-01' + {day}) "
                        f"TO '{tmp_path}/data/part-{day}.parquet' (FORMAT parquet)")
    spec = tmp_path / "batchcast.toml"
    spec.write_text(spec.read_text().replace('input = { query = "SELECT * EXCLUDE (churned) FROM features" }',
                                             'input = { path = "data/*.parquet" }'))
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE by_beam AS SELECT * FROM scores")
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    assert query(db, "SELECT count(*) FROM by_beam")[0][0] == 3000
    assert same_rows(db, "by_beam", "scores")


def test_a_model_raising_on_one_shard_leaves_the_table_untouched(tmp_path):
    beam_service(tmp_path)
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    before = query(db, "SELECT count(*), max(_run_id) FROM scores")
    model = tmp_path / "repo" / "model.py"
    original = model.read_text()
    model.write_text(original + '''

_fitted_predict = Model.predict


def _failing(self, X):
    if (X["f1"] > 0.999).any():
        raise ValueError("a value this model refuses")
    return _fitted_predict(self, X)


Model.predict = _failing
''')
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    assert "shard " in result.stderr and "a value this model refuses" in result.stderr, result.stderr
    assert query(db, "SELECT count(*), max(_run_id) FROM scores") == before
    model.write_text(original)
    bc("run", "application", "--date", DAY, cwd=tmp_path)  # the rerun succeeds
    after = query(db, "SELECT count(*), max(_run_id) FROM scores")[0]
    assert after[0] == 3000 and after[1] != before[0][1]
