"""executor = "spark": the application scored on a real Spark standalone cluster writes exactly what inline writes.

The cluster (a master and two workers, each its own JVM with its own Python
workers) is started from the pyspark of the spark executor's own environment,
with this machine's Java. The executors run the packed model environment.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from batchcast.executors.spark.executor import SparkExecutor
from batchcast.isolation.process import kill_tree
from batchcast.runs.store import ArtifactStore
from batchcast.spec import load_spec
from tests.conftest import BATCHCAST, bc, bc_json, query, write_python_service
from tests.executors.test_beam import FAILING, same_rows
from tests.services import Unavailable, spark_cluster, spark_connect

pytestmark = pytest.mark.slow  # pyspark in an environment of its own, a cluster of three JVMs

DAY = "2026-01-02"


def spark_service(root: Path, master: str, extra: str = "", requirements: str | None = None,
                  train: bool = True, before: str = "") -> Path:
    write_python_service(root, rows=3000, extra=extra)
    spec = root / "batchcast.toml"
    spec.write_text(spec.read_text().replace(
        '[actions.application]\nexecutor = "inline"', f'[actions.application]\nexecutor = "spark"\n{before}') +
        f'\n[actions.application.spark]\n{"remote" if master.startswith("sc://") else "master"} = "{master}"\n')
    if requirements is not None:
        (root / "repo" / "requirements.txt").write_text(requirements)
    if train:
        bc("run", "training", cwd=root)
    return spec


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_endpoint):
    """A master and two workers. Started after the S3 emulator: the workers hold its credentials in their
    environment, as a cluster's machines hold their own."""
    root = tmp_path_factory.mktemp("spark-env")
    spark_service(root, "local[1]", train=False)
    driver = SparkExecutor().environment(load_spec(root / "batchcast.toml")).path
    spark_home = next(driver.glob("lib/python3*/site-packages/pyspark"))
    try:
        with spark_cluster(spark_home, tmp_path_factory.mktemp("spark-cluster")) as running:
            yield running
    except Unavailable as exc:
        pytest.skip(f"Spark standalone cluster unavailable: {exc}")


@pytest.fixture(autouse=True)
def _disk(request):
    """After each test, the finished applications' folders go (640 MB of unpacked environment per executor)."""
    yield
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").forget_finished()


@pytest.fixture
def connect(cluster):
    """A Spark Connect server whose driver runs on the cluster, for one test: its application holds every
    core of the cluster while it runs, and no other application would get one."""
    try:
        with spark_connect(cluster) as url:
            yield url
    except Unavailable as exc:
        pytest.skip(f"Spark Connect server unavailable: {exc}")


def copied(db: Path, table: str) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM scores")


def test_spark_writes_what_inline_writes_from_a_query_and_a_glob_with_tasks_on_both_workers(tmp_path, cluster):
    spec = spark_service(tmp_path, cluster.url)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    by_query = bc_json("show", cwd=tmp_path)
    copied(db, "by_spark")
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    assert query(db, "SELECT count(*), count(DISTINCT _run_id) FROM by_spark") == [(3000, 1)]
    assert same_rows(db, "by_spark", "scores")
    spark = by_query["inputs"]["spark"]
    assert spark["master"] == cluster.url and spark["application_id"].startswith("app-")
    assert set(spark["tasks"]) == {"0", "1"} and sum(spark["tasks"].values()) == by_query["inputs"]["shards"] == 8
    executors = by_query["environment"]["executors"]
    assert executors["key"] == spark["environment"] and Path(executors["archive"]).name.startswith(executors["key"])
    assert "scikit-learn" in executors["packages"] and "pyspark" not in executors["packages"]
    assert "pyspark" in by_query["environment"]["packages"]  # the driver's environment has it, the executors' not
    finished = {app["id"]: app["state"] for app in cluster.state()["completedapps"]}
    assert finished[spark["application_id"]] == "FINISHED"

    (tmp_path / "data").mkdir()
    with duckdb.connect(str(db)) as con:
        for day in range(3):
            con.execute(f"COPY (SELECT * EXCLUDE (churned) FROM features WHERE day = DATE '2026-01-01' + {day}) "
                        f"TO '{tmp_path}/data/part-{day}.parquet' (FORMAT parquet)")
    spec.write_text(spec.read_text().replace('input = { query = "SELECT * EXCLUDE (churned) FROM features" }',
                                             'input = { path = "data/*.parquet" }'))
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    by_glob = bc_json("show", cwd=tmp_path)
    assert by_glob["inputs"]["shards"] == 3 and by_glob["rows"]["read"] == 3000
    copied(db, "by_spark")
    assert same_rows(db, "by_spark", "scores")  # the inline run's rows, from the query: the same 3,000

    spec.write_text(spec.read_text().replace(f'master = "{cluster.url}"', 'master = "local[2]"'))
    bc("run", "application", "--date", DAY, cwd=tmp_path)  # Spark inside the driver, the same rows
    local = bc_json("show", cwd=tmp_path)
    copied(db, "by_spark")
    assert same_rows(db, "by_spark", "scores") and local["inputs"]["spark"]["master"] == "local[2]"
    assert "archive" not in local["environment"]["executors"]  # local[N] runs the environment itself


VERSION_MODEL = '''
import numpy as np


class Model:
    """Reports the scikit-learn its predict imports: the executors' own."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        return self

    def predict(self, X):
        import sklearn

        return np.array([sklearn.__version__] * len(X))
'''


def test_the_executors_run_the_models_pinned_library_and_a_failing_shard_publishes_nothing(tmp_path, cluster):
    spark_service(tmp_path, cluster.url, requirements="scikit-learn==1.5.2\n", train=False)
    spec = tmp_path / "batchcast.toml"
    spec.write_text(spec.read_text().replace('schema = "player_id:STRING,label:BOOL"',
                                             'schema = "player_id:STRING,label:STRING"'))
    model = tmp_path / "repo" / "model.py"
    model.write_text(VERSION_MODEL + FAILING)
    bc("run", "training", cwd=tmp_path)
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    failed = bc_json("show", cwd=tmp_path)
    assert failed["status"] == "failed" and "the Spark job failed: shard " in failed["error"]["message"], result.stderr
    assert "a value this model refuses" in failed["error"]["message"]
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]

    model.write_text(VERSION_MODEL)
    bc("run", "application", "--date", DAY, cwd=tmp_path)  # the rerun succeeds
    assert query(db, "SELECT label, count(*) FROM scores GROUP BY 1") == [("1.5.2", 3000)]
    assert bc_json("show", cwd=tmp_path)["environment"]["executors"]["packages"]["scikit-learn"] == "1.5.2"


def test_a_spark_connect_session_scores_in_the_packed_environment(tmp_path, cluster, connect):
    """The pack goes as a session artifact: the server's executors run the model's scikit-learn, not theirs."""
    spark_service(tmp_path, connect, requirements="scikit-learn==1.5.2\n", train=False)
    spec = tmp_path / "batchcast.toml"
    spec.write_text(spec.read_text().replace('schema = "player_id:STRING,label:BOOL"',
                                             'schema = "player_id:STRING,label:STRING"'))
    (tmp_path / "repo" / "model.py").write_text(VERSION_MODEL)
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT label, count(*) FROM scores GROUP BY 1") == [("1.5.2", 3000)]
    run = bc_json("show", cwd=tmp_path)
    assert run["inputs"]["spark"]["master"] == connect and run["inputs"]["shards"] == 8
    assert run["environment"]["executors"]["archive"] and "grpcio" in run["environment"]["packages"]


def slow_model(root: Path) -> Path:
    """The model's predict sleeps 10 minutes; the file it returns appears once a task is in predict."""
    started = root / "predicting"  # the executors share this machine: a task in predict says so here
    model = root / "repo" / "model.py"
    model.write_text(model.read_text() + f"\n\nimport pathlib, time\nModel.predict = lambda self, X: "
                     f"(pathlib.Path('{started}').touch(), time.sleep(600))\n")
    return started


def test_a_job_past_its_deadline_is_cancelled_and_the_run_is_timed_out(tmp_path, cluster):
    spark_service(tmp_path, cluster.url, before="timeout = 60\n")  # the job's deadline: 15 s before that
    started = slow_model(tmp_path)
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    run = bc_json("show", cwd=tmp_path)
    assert started.exists() and run["status"] == "timed out", result.stderr
    # The job's own deadline (15 s before the timeout) cancels it; if the cancel is still under way at the timeout,
    # the executor's SIGTERM says so instead. Either way the job is cancelled and the run timed out.
    assert run["error"]["message"] in {"the run reached its timeout; its Spark job was cancelled"} or (
        run["error"]["message"].startswith("the Spark job was still running after"))
    assert cluster.state()["activeapps"] == []
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb",
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]


def test_a_stopped_run_cancels_its_job_and_ends_its_application(tmp_path, cluster):
    """A scheduler's SIGTERM to `batchcast run`: the job group is cancelled, the application stops."""
    spark_service(tmp_path, cluster.url)
    started = slow_model(tmp_path)
    run = subprocess.Popen([BATCHCAST, "run", "application", "--date", DAY], cwd=tmp_path, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not started.exists():  # (no communicate() here: a run that hangs would hang the test)
            assert run.poll() is None and time.monotonic() < deadline, "no task reached predict in 240 s"
            time.sleep(0.5)
        assert [app["cores"] for app in cluster.state()["activeapps"]] == [2]  # both executors at work
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
    finally:
        kill_tree(run.pid)  # a failed wait must not leave a run holding the cluster's cores for the next test
    manifest = bc_json("show", cwd=tmp_path)
    assert run.returncode != 0 and manifest["status"] == "cancelled", stderr
    assert cluster.state()["activeapps"] == []
    ended = {app["id"]: app["state"] for app in cluster.state()["completedapps"]}
    assert ended[manifest["inputs"]["spark"]["application_id"]] in {"FINISHED", "KILLED"}
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb",
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]


def test_with_the_store_on_s3_the_executors_fetch_the_model_and_write_the_shards_there(tmp_path, cluster):
    bucket = f"bc-{uuid.uuid4().hex[:12]}"
    store = ArtifactStore(f"s3://{bucket}/artifacts")
    store.fs.mkdir(bucket)
    spark_service(tmp_path, cluster.url, extra=f'\n[storage]\nurl = "{store.url}"\n')
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    copied(db, "by_spark")
    manifest = ArtifactStore(store.url).manifest(query(db, "SELECT max(_run_id) FROM by_spark")[0][0])
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    assert query(db, "SELECT count(*) FROM by_spark")[0][0] == 3000 and same_rows(db, "by_spark", "scores")
    assert manifest.inputs["spark"]["model"] == "store"
    shards = sorted(f for f in manifest.files if f.startswith("output/shards/") and f.endswith(".parquet"))
    assert len(shards) == manifest.inputs["shards"] == len(manifest.outputs["shards"])
    ArtifactStore(store.url).verify(manifest, files=True)  # every shard in the store matches its sha256


def test_a_property_spark_does_not_know_is_refused_before_any_application_starts(tmp_path, cluster):
    spark_service(tmp_path, cluster.url, extra='\n[actions.application.spark.conf]\n"spark.executor.memry" = "1g"\n')
    before = len(cluster.state()["completedapps"]) + len(cluster.state()["activeapps"])
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    assert ("[actions.application.spark] conf.spark.executor.memry: Spark has no such property" in result.stderr
            and "did you mean 'spark.executor.memory'?" in result.stderr), result.stderr
    assert len(cluster.state()["completedapps"]) + len(cluster.state()["activeapps"]) == before


@pytest.mark.parametrize("table, words", [
    ('master = "spark//host:7077"', "is not a Spark master URL"),
    ('master = "spark://127.0.0.1:7077"\nconf = { "executor.memory" = "2g" }', "are named spark.*"),
    ('master = "spark://127.0.0.1:7077"\nconf = { "spark.master" = "local" }', "set by batchcast from master"),
    ('remote = "grpc://127.0.0.1:15002"', "is not a Spark Connect URL"),
    ('remote = "sc://spark.internal:443/;use_ssl=true;token=abc123"', "SPARK_CONNECT_AUTHENTICATE_TOKEN"),
    ('master = "local[2]"\nremote = "sc://127.0.0.1:15002"', "both master and remote are set"),
])
def test_settings_spark_cannot_take_are_refused_by_validate(tmp_path, table, words):
    write_python_service(tmp_path, rows=10, extra=f"\n[actions.application.spark]\n{table}\n")
    result = bc("validate", cwd=tmp_path, ok=False)
    assert words in result.stderr and "abc123" not in result.stderr, result.stderr
