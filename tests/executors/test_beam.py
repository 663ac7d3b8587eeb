"""executor = "beam": the application scored by Apache Beam writes exactly what an inline run writes.

Locally Beam's in-process runner runs one worker process per core; the
runners of a cluster (Dataflow, Flink, Spark) cannot run here, so what
batchcast gives them is checked as option tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from batchcast.executors.beam.executor import BeamExecutor
from batchcast.isolation.process import kill_tree
from batchcast.runs.store import ArtifactStore
from batchcast.spec import load_spec
from tests.conftest import BATCHCAST, bc, bc_json, query, write_python_service
from tests.services import free_port, wait_for_port

pytestmark = pytest.mark.slow  # Apache Beam in an environment of its own, a job service and its workers

DAY = "2026-01-02"


@pytest.fixture(scope="module")
def beam_python(tmp_path_factory) -> Path:
    """The python of the beam executor's environment (Beam 2.77 and batchcast, built once, cached)."""
    root = tmp_path_factory.mktemp("beam-env")
    write_python_service(root, rows=10)
    return BeamExecutor().environment(load_spec(root / "batchcast.toml")).path / "bin" / "python"


BUILD_OPTIONS = """
import json, sys
from apache_beam.options.pipeline_options import PipelineOptions
from batchcast.executors.beam.pipeline import checked
from batchcast.executors.beam.executor import BeamSettings, pipeline_options
options = PipelineOptions(**checked(pipeline_options(BeamSettings(**json.loads(sys.argv[1])), workers=2)))
print(json.dumps(options.get_all_options(drop_default=True, retain_unknown_options=True), default=str))
"""


def built_options(beam_python: Path, settings: dict) -> dict:
    """The options Beam itself parsed from what batchcast gives it: unknown keys are refused first."""
    result = subprocess.run([str(beam_python), "-c", BUILD_OPTIONS, json.dumps(settings)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_options_for_the_local_runner_use_every_core_in_processes(beam_python):
    built = built_options(beam_python, {})
    assert built["runner"] == "FnApiRunner"
    assert built["direct_running_mode"] == "multi_processing" and built["direct_num_workers"] == 2


@pytest.mark.parametrize("runner, options", [
    ("DataflowRunner", {"project": "acme", "region": "europe-west1", "temp_location": "gs://acme-tmp/beam",
                        "num_workers": 8, "max_num_workers": 32, "machine_type": "n2-highcpu-8",
                        "sdk_container_image": "europe-docker.pkg.dev/acme/models/churn:1",
                        "service_account_email": "scoring@acme.iam.gserviceaccount.com"}),
    ("FlinkRunner", {"flink_master": "flink.internal:8081", "parallelism": 16, "environment_type": "DOCKER",
                     "environment_config": "europe-docker.pkg.dev/acme/models/churn:1"}),
    ("SparkRunner", {"spark_master_url": "spark://spark.internal:7077", "environment_type": "DOCKER",
                     "environment_config": "europe-docker.pkg.dev/acme/models/churn:1"}),
])
def test_options_for_a_cluster_runner_are_what_beam_parses(beam_python, runner, options):
    """An option test: no cluster is reachable here, so this checks the PipelineOptions Beam builds, not a run."""
    built = built_options(beam_python, {"runner": runner, "options": options})
    assert built["runner"] == runner
    assert {key: built.get(key) for key in options} == options


def test_an_option_beam_does_not_know_is_refused_with_the_likely_one(beam_python):
    result = subprocess.run([str(beam_python), "-c", BUILD_OPTIONS,
                             json.dumps({"runner": "DataflowRunner", "options": {"num_worker": 8}})],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "options.num_worker" in result.stderr and "num_workers" in result.stderr, result.stderr[-2000:]


def beam_service(root, extra: str = "", train: bool = True, before: str = ""):
    write_python_service(root, rows=3000, extra=extra)
    text = (root / "batchcast.toml").read_text()
    (root / "batchcast.toml").write_text(text.replace(
        '[actions.application]\nexecutor = "inline"', f'[actions.application]\nexecutor = "beam"\n{before}'))
    if train:
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


# Added to a model's file: its predict raises on the rows of one shard only (the Spark tests use it too).
FAILING = '''

_fitted_predict = Model.predict


def _failing(self, X):
    if (X["f1"] > 0.999).any():
        raise ValueError("a value this model refuses")
    return _fitted_predict(self, X)


Model.predict = _failing
'''


def test_a_model_raising_on_one_shard_leaves_the_table_untouched(tmp_path):
    beam_service(tmp_path)
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    before = query(db, "SELECT count(*), max(_run_id) FROM scores")
    model = tmp_path / "repo" / "model.py"
    original = model.read_text()
    model.write_text(original + FAILING)
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    assert "shard " in result.stderr and "a value this model refuses" in result.stderr, result.stderr
    assert query(db, "SELECT count(*), max(_run_id) FROM scores") == before
    model.write_text(original)
    bc("run", "application", "--date", DAY, cwd=tmp_path)  # the rerun succeeds
    after = query(db, "SELECT count(*), max(_run_id) FROM scores")[0]
    assert after[0] == 3000 and after[1] != before[0][1]


def test_a_misspelt_option_fails_the_run_before_anything_runs(tmp_path):
    beam_service(tmp_path, extra="\n[actions.application.beam]\noptions = { direct_num_worker = 2 }\n")
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    assert "[actions.application.beam] options.direct_num_worker" in result.stderr, result.stderr
    assert "did you mean 'direct_num_workers'" in result.stderr
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb",
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]


# -- PostgreSQL: the query split by the warehouse's own hash -------------------------

def pg(url: str, sql: str, *, ingest=None):
    import adbc_driver_postgresql.dbapi as dbapi

    with dbapi.connect(url) as conn, conn.cursor() as cur:
        if ingest is not None:
            cur.execute("CREATE SCHEMA IF NOT EXISTS beam_pg")
            cur.adbc_ingest("features", ingest, mode="replace", db_schema_name="beam_pg")
        cur.execute(sql)
        rows = cur.fetchall() if cur.description else None
        conn.commit()
        return rows


def test_beam_writes_what_inline_writes_from_a_postgresql_query(tmp_path, postgres_url):
    beam_service(tmp_path, extra=f'\n[warehouse]\nurl = "{postgres_url}?schema=beam_pg"\n', train=False)
    with duckdb.connect(str(tmp_path / ".batchcast" / "warehouse.duckdb")) as con:
        features = con.sql("SELECT * FROM features").to_arrow_table()
    pg(postgres_url, "SELECT 1", ingest=features)
    spec = tmp_path / "batchcast.toml"
    columns = ", ".join(["player_id", "day"] + [f"f{i}" for i in range(1, 9)])
    spec.write_text(spec.read_text().replace("FROM features", "FROM beam_pg.features")
                    .replace("SELECT * EXCLUDE (churned)", f"SELECT {columns}"))
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", DAY, cwd=tmp_path)
    by_beam = bc_json("show", cwd=tmp_path)
    pg(postgres_url, "CREATE TABLE beam_pg.by_beam AS SELECT * FROM beam_pg.scores")
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    cols, a, b = "player_id, label", "beam_pg.by_beam", "beam_pg.scores"
    assert pg(postgres_url, "SELECT count(*), count(DISTINCT _run_id) FROM beam_pg.by_beam") == [(3000, 1)]
    assert pg(postgres_url, f"SELECT count(*) FROM ((SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}) "
                            f"UNION ALL (SELECT {cols} FROM {b} EXCEPT SELECT {cols} FROM {a})) d") == [(0,)]
    assert by_beam["inputs"]["runner"] == "DirectRunner"
    assert by_beam["inputs"]["shards"] == len(by_beam["outputs"]["shards"]) == 2 * (os.cpu_count() or 1)


# -- a runner's job service: PortableRunner, workers started by the service --------------
# Beam's own job service (local_job_service_main) runs each job in worker processes it starts
# itself (harness_subprocess_python): they get only the pickled pipeline and its options, as a
# cluster's workers do, and fetch the model from the S3 emulator and write their shards there.

WORKER = "beam:env:harness_subprocess_python:v1"


@contextmanager
def job_service(beam_python: Path, log: Path):
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(beam_python), "-m", "apache_beam.runners.portability.local_job_service_main",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc, timeout=60)
        yield f"localhost:{port}"
    finally:
        kill_tree(proc.pid)
        proc.wait()


def portable_service(root: Path, before: str = "") -> tuple[Path, str]:
    """A service on the S3 emulator whose application runs on PortableRunner; its beam python and store URL."""
    bucket = f"bc-{uuid.uuid4().hex[:12]}"
    store = ArtifactStore(f"s3://{bucket}/artifacts")
    store.fs.mkdir(bucket)
    beam_service(root, extra=f'\n[storage]\nurl = "{store.url}"\n', before=before)
    return BeamExecutor().environment(load_spec(root / "batchcast.toml")).path / "bin" / "python", store.url


def use_job_service(root: Path, endpoint: str, beam_python: Path) -> None:
    with open(root / "batchcast.toml", "a") as spec:
        spec.write(f'\n[actions.application.beam]\nrunner = "PortableRunner"\noptions = {{ job_endpoint = '
                   f'"{endpoint}", environment_type = "{WORKER}", environment_config = '
                   f'"{beam_python} -m apache_beam.runners.worker.sdk_worker_main" }}\n')


def test_a_job_services_workers_fetch_the_model_and_write_shards_to_the_store(tmp_path, s3_endpoint):
    beam_python, url = portable_service(tmp_path)
    with job_service(beam_python, tmp_path / "job-service.log") as endpoint:
        use_job_service(tmp_path, endpoint, beam_python)
        bc("run", "application", "--date", DAY, cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE by_beam AS SELECT * FROM scores")
    manifest = ArtifactStore(url).manifest(query(db, "SELECT max(_run_id) FROM by_beam")[0][0])
    bc("run", "application", "--date", DAY, "--executor", "inline", cwd=tmp_path)
    assert query(db, "SELECT count(*) FROM by_beam")[0][0] == 3000 and same_rows(db, "by_beam", "scores")
    assert manifest.inputs["runner"] == "PortableRunner" and manifest.inputs["job_id"]
    shards = sorted(f for f in manifest.files if f.startswith("output/shards/") and f.endswith(".parquet"))
    assert len(shards) == manifest.inputs["shards"] == len(manifest.outputs["shards"])
    assert sum(s["rows"] for s in manifest.outputs["shards"]) == 3000
    ArtifactStore(url).verify(manifest, files=True)  # every shard in the store matches its sha256


JOBS = """
import sys, grpc
from apache_beam.portability.api import beam_job_api_pb2 as api, beam_job_api_pb2_grpc as rpc
stub = rpc.JobServiceStub(grpc.insecure_channel(sys.argv[1]))
for job in stub.GetJobs(api.GetJobsRequest()).job_info:
    print(job.job_id, api.JobState.Enum.Name(job.state))
"""


def jobs(beam_python: Path, endpoint: str) -> dict[str, str]:
    """The job service's own account of its jobs: {job id: state}."""
    listed = subprocess.run([str(beam_python), "-c", JOBS, endpoint], capture_output=True, text=True, check=True)
    return dict(line.split() for line in listed.stdout.splitlines())


def slow_model(root: Path) -> None:
    model = root / "repo" / "model.py"
    model.write_text(model.read_text() + "\n\nimport time\nModel.predict = lambda self, X: time.sleep(600)\n")


def test_a_job_past_its_timeout_is_cancelled_on_the_runner_and_nothing_is_published(tmp_path, s3_endpoint):
    beam_python, url = portable_service(tmp_path, before="timeout = 20\n")
    slow_model(tmp_path)
    with job_service(beam_python, tmp_path / "job-service.log") as endpoint:
        use_job_service(tmp_path, endpoint, beam_python)
        result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
        run = bc_json("show", cwd=tmp_path)
        states = jobs(beam_python, endpoint)
    assert run["status"] == "timed out", result.stderr
    assert "was cancelled" in run["error"]["message"]
    assert states == {run["inputs"]["job_id"]: "CANCELLED"}
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb",
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]


def test_a_stopped_run_cancels_its_job_on_the_runner(tmp_path, s3_endpoint):
    """A scheduler's SIGTERM to `batchcast run` reaches the job: the executor forwards it and waits for the cancel."""
    beam_python, url = portable_service(tmp_path)
    slow_model(tmp_path)
    with job_service(beam_python, tmp_path / "job-service.log") as endpoint:
        use_job_service(tmp_path, endpoint, beam_python)
        run = subprocess.Popen([BATCHCAST, "run", "application", "--date", DAY], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while "RUNNING" not in jobs(beam_python, endpoint).values():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(1)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
        manifest = bc_json("show", cwd=tmp_path)
        states = jobs(beam_python, endpoint)
    assert run.returncode != 0 and manifest["status"] == "cancelled", stderr
    assert states == {manifest["inputs"]["job_id"]: "CANCELLED"}
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb",
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]


def test_a_clusters_runner_is_refused_what_only_this_machine_holds(tmp_path):
    beam_service(tmp_path, extra='\n[actions.application.beam]\nrunner = "DataflowRunner"\n'
                                 'options = { project = "acme", region = "europe-west1" }\n')
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    assert "runner = 'DataflowRunner': its workers cannot reach the artifact store" in result.stderr, result.stderr
    assert "set [storage] url to object storage" in result.stderr
    spec = tmp_path / "batchcast.toml"
    spec.write_text(spec.read_text().replace('input = { query = "SELECT * EXCLUDE (churned) FROM features" }',
                                             'input = { path = "data/*.parquet" }'))
    result = bc("run", "application", "--date", DAY, cwd=tmp_path, ok=False)
    assert "its workers cannot read the input path 'data/*.parquet' on this machine" in result.stderr, result.stderr
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb",
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'") == [(0,)]
