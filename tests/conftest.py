"""Shared fixtures: example model repositories and a way to run the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from tests.services import (
    Unavailable,
    bigquery_emulator,
    gcs_emulator,
    mlflow_server,
    moto_s3,
    noida_kafka,
    postgres,
    pubsub_emulator as start_pubsub_emulator,
    tansu_kafka,
)

# gcsfs probes for hierarchical namespaces on every call, which the GCS emulator
# answers only after a 60 s timeout (ENVIRONMENT.md); must precede importing gcsfs.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
# pytest-xdist's workers start with COLUMNS=80 and LINES=24 where the controller had neither; uv wraps its
# messages at COLUMNS, and a test that reads uv's conclusion from one line then saw half of it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
# pyspark's wheel, built once by `make test` (Makefile, PYSPARK_WHEEL): without it uv builds pyspark's source
# distribution again for every new Spark driver environment, 1.4 GB of its cache each time.
WHEELS = Path.home() / ".cache" / "batchcast" / "wheels"
if not os.environ.get("UV_FIND_LINKS") and any(WHEELS.glob("pyspark-*.whl")):
    os.environ["UV_FIND_LINKS"] = str(WHEELS)
# The contract suites live in the package; pytest rewrites their asserts only if told before they are imported.
pytest.register_assert_rewrite("batchcast.testing")

pytest_plugins = ["tests.require_all"]

BATCHCAST = str(Path(sys.executable).parent / "batchcast")


def bc(*args: str, cwd: Path, env: dict | None = None, ok: bool | None = True) -> subprocess.CompletedProcess:
    """Run the installed ``batchcast`` command; check its exit code unless ``ok`` is None."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([BATCHCAST, *args], cwd=cwd, env=full_env, capture_output=True, text=True)
    if ok is not None and (result.returncode == 0) != ok:
        raise AssertionError(f"batchcast {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def bc_json(*args: str, cwd: Path):
    return json.loads(bc(*args, "--json", cwd=cwd).stdout)


def query(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        table = con.sql(sql).to_arrow_table()  # Arrow: no pytz needed for TIMESTAMPTZ
        return [tuple(row.values()) for row in table.to_pylist()]
    finally:
        con.close()


# The fixtures that start a real server, an engine or Airflow: a test that asks for one is slow (pyproject.toml's
# marker), so that `make test-fast`, which installs none of them, never reaches one.
SERVICE_FIXTURES = {"postgres_url", "s3_endpoint", "gcs_endpoint", "bigquery_endpoint", "podman", "airflow_env",
                    "kafka_broker", "tansu_broker", "pubsub_emulator"}


# Under pytest-xdist (`make test` passes --dist loadfile) a worker runs whole modules, so a module-scoped fixture
# (a trained service) is built once; and every podman test runs on one worker, since each session empties the
# tests' store of what another worker's test built or runs, and a test checks that no container is left.
PODMAN_MODULES = {"tests/executors/test_container.py", "tests/executors/test_in_podman.py"}


def pytest_collection_modifyitems(config, items):
    unmarked = [f"{item.nodeid} ({', '.join(sorted(SERVICE_FIXTURES & set(item.fixturenames)))})" for item in items
                if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow")]
    if unmarked:
        raise pytest.UsageError("these tests start a real service: mark them slow (pytest.mark.slow):\n  "
                                + "\n  ".join(unmarked))
    elsewhere = sorted({item.nodeid.split("::")[0] for item in items if "podman" in getattr(item, "fixturenames", ())}
                       - PODMAN_MODULES)
    if elsewhere:
        raise pytest.UsageError(f"add {', '.join(elsewhere)} to PODMAN_MODULES in tests/conftest.py: "
                                "podman tests must share one pytest-xdist worker")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the podman modules as one unit (xdist's loadgroup ignores marks under pytest 9.2)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class PodmanTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return "podman" if module in PODMAN_MODULES else module

    return PodmanTogether(config, log)


@pytest.fixture(autouse=True)
def _today_is_today(request):
    """A module's TODAY (and YESTERDAY) is the date when each test starts, not when the module was imported.

    The scheduler's dates are the day it runs, and the suite takes half an
    hour: one imported at 23:50 UTC disagreed with every run after midnight.
    """
    if hasattr(request.module, "TODAY"):
        import datetime as dt

        request.module.TODAY = dt.datetime.now(dt.UTC).date()
        if hasattr(request.module, "YESTERDAY"):
            request.module.YESTERDAY = request.module.TODAY - dt.timedelta(days=1)


@pytest.fixture
def churn_repo(tmp_path: Path) -> Path:
    """An existing command-contract repository (the init template without a spec)."""
    from batchcast.testing.executors import example_repository

    return example_repository(tmp_path / "churn-model")


@pytest.fixture
def adopted(churn_repo: Path, tmp_path: Path) -> Path:
    """A service folder beside the repository, with the spec `batchcast adopt` writes (tests/cli test the command)."""
    from batchcast.testing.executors import adopt_example

    return adopt_example(churn_repo, tmp_path / "service")


PY_MODEL = '''
import os
import numpy as np
from sklearn.linear_model import LogisticRegression


class Model:
    """A plain class with fit and predict, as the Python contract asks."""

    def __init__(self, C=1.0):
        self.inner = LogisticRegression(C=C)

    def fit(self, X, y):
        self.inner.fit(X, y)
        return self

    def predict(self, X):
        if os.environ.get("MODEL_FAIL"):
            raise RuntimeError("model exploded on purpose")
        return self.inner.predict(X)
'''


def write_python_service(root: Path, rows: int, executor: str = "inline", extra: str = "") -> Path:
    """A Python-contract service: model.py, a DuckDB table of features, a spec."""
    repo = root / "repo"
    (repo / "configs").mkdir(parents=True, exist_ok=True)
    (repo / "model.py").write_text(PY_MODEL)
    (repo / "requirements.txt").write_text("scikit-learn>=1.4\n")
    (repo / "configs" / "training.json").write_text(json.dumps({"params": {"C": 0.5}}))
    make_features(root / ".batchcast" / "warehouse.duckdb", rows)
    spec = root / "batchcast.toml"
    spec.write_text(textwrap.dedent(f'''
        [service]
        name = "scores"
        version = "2"

        [model]
        path = "repo"
        entrypoint = "model:Model"
        label = "churned"
        ids = ["player_id", "day"]

        [actions.training]
        config = "configs/training.json"
        executor = "{executor}"
        input = {{ query = "SELECT * FROM features LIMIT 20000" }}

        [actions.application]
        executor = "{executor}"
        input = {{ query = "SELECT * EXCLUDE (churned) FROM features" }}
        output = {{ table = "scores", schema = "player_id:STRING,label:BOOL" }}

        [actions.evaluation]
        executor = "{executor}"
        input = {{ query = "SELECT * FROM features WHERE day = DATE '{{{{ ds }}}}'" }}
        ''') + extra)
    return spec


def make_features(db: Path, rows: int) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db))
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""
        CREATE OR REPLACE TABLE features AS
        SELECT *, (f1 + f2 + 0.3 * random() > 1.15) AS churned FROM (
            SELECT 'p' || i AS player_id, DATE '2026-01-01' + (i % 3)::INT AS day,
                   random() AS f1, random() AS f2, random() AS f3, random() AS f4,
                   random() AS f5, random() AS f6, random() AS f7, random() AS f8
            FROM range({rows}) t(i))""")
    con.close()



# -- real services, one per test session, stopped at its end -------------------
# Endpoints reach batchcast the way they would in production: through the environment.

@contextmanager
def _environment(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@contextmanager
def _service(what: str, server):
    try:
        with server as endpoint:
            yield endpoint
    except Unavailable as exc:
        pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def postgres_url():
    with _service("PostgreSQL", postgres()) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    with _service("S3 emulator (moto)", moto_s3(tmp_path_factory.mktemp("s3"))) as endpoint:
        with _environment(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                          AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"):
            yield endpoint


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory):
    with _service("GCS emulator", gcs_emulator(tmp_path_factory.mktemp("gcs"))) as endpoint:
        with _environment(STORAGE_EMULATOR_HOST=endpoint):
            yield endpoint


@pytest.fixture(scope="session")
def bigquery_endpoint(tmp_path_factory):
    with _service("BigQuery emulator", bigquery_emulator(tmp_path_factory.mktemp("bq"))) as endpoint:
        with _environment(BATCHCAST_BIGQUERY_ENDPOINT=endpoint):
            yield endpoint


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """noida-db's Kafka service (persistent, transactions work): a tests.services.NoidaBroker."""
    with _service("Kafka broker (noida-db)", noida_kafka(tmp_path_factory.mktemp("noida") / "data")) as broker:
        yield broker


@pytest.fixture(scope="session")
def tansu_broker():
    """Tansu in memory (at-least-once only: no real transactions): a tests.services.KafkaBroker."""
    with _service("Kafka broker (Tansu)", tansu_kafka()) as broker:
        yield broker


@pytest.fixture(scope="session")
def pubsub_emulator():
    """Google's Pub/Sub emulator, with PUBSUB_EMULATOR_HOST set for the session: a tests.services.PubSubEmulator."""
    with _service("Pub/Sub emulator", start_pubsub_emulator()) as emulator:
        with _environment(PUBSUB_EMULATOR_HOST=emulator.host):
            yield emulator


@pytest.fixture(scope="session")
def mlflow_tracking(tmp_path_factory):
    """A real ``mlflow server`` (SQLite, served artifacts): a tests.services.MlflowServer."""
    with _service("MLflow tracking server", mlflow_server(tmp_path_factory.mktemp("mlflow"))) as server:
        yield server


def _container_driver() -> str:
    """The kernel's overlay where it has one, else vfs (a whole copy of the image per layer and container)."""
    try:
        return "overlay" if "overlay" in Path("/proc/filesystems").read_text().split() else "vfs"
    except OSError:
        return "vfs"


# Podman with runc (ENVIRONMENT.md) in a store of the tests' own, and the base image
# `make container-base` imports there; the Makefile passes the same arguments.
_DRIVER = _container_driver()
CONTAINER_ARGS = os.environ.get("BATCHCAST_TEST_CONTAINER_ARGS") or (
    f"--root {Path.home()}/.cache/batchcast/containers-{_DRIVER} "
    f"--runroot {os.environ.get('XDG_RUNTIME_DIR', '/run')}/batchcast-containers-{_DRIVER} "
    f"--storage-driver {_DRIVER} --events-backend none --runtime runc")
BASE_IMAGE = "localhost/batchcast-base:bookworm"
CONTAINER_DISK_GIB = 8  # the peak measured under vfs was 7.1 GiB: two images and a running container


@pytest.fixture(scope="session")
def podman():
    """The podman command line the container executor uses; skips (loudly) without podman or the base image.

    The tests' own store (``--root``) is emptied of everything but the base image before and
    after the session: an image costs about a gigabyte (under vfs, each of its layers does), and
    a full disk fails the next run's build. A store given without ``--root`` is someone's default
    one, and is left as it is.
    """
    import shutil

    if not shutil.which("podman"):
        pytest.skip("podman is not installed: run 'make container-base' (apt-get install podman runc)")
    argv = ["podman", *CONTAINER_ARGS.split()]
    if subprocess.run([*argv, "image", "exists", BASE_IMAGE]).returncode != 0:
        pytest.skip(f"the base image {BASE_IMAGE} is missing: run 'make container-base'")
    own_store = "--root" in argv
    if own_store:
        _keep_only_base(argv)
    free = shutil.disk_usage(_store_root(argv)).free / 2**30
    if free < CONTAINER_DISK_GIB:
        pytest.skip(f"the container tests need about {CONTAINER_DISK_GIB} GiB free for podman's store "
                    f"{_store_root(argv)}, and {free:.1f} GiB is: free some disk")
    try:
        with _environment(BATCHCAST_CONTAINER_ARGS=CONTAINER_ARGS, BATCHCAST_CONTAINER_ENGINE="podman"):
            yield argv
    finally:
        if own_store:
            _keep_only_base(argv)


def _store_root(argv: list[str]) -> str:
    return argv[argv.index("--root") + 1] if "--root" in argv else "/var/lib/containers"


def _keep_only_base(argv: list[str]) -> None:
    def podman(*args: str) -> str:
        return subprocess.run([*argv, *args], capture_output=True, text=True, check=True).stdout

    podman("pod", "rm", "--all", "--force")  # what a failed `kube play` test left
    podman("rm", "--all", "--force")
    base = podman("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).strip()
    others = set(podman("images", "--all", "--no-trunc", "--format", "{{.ID}}").split()) - {base, f"sha256:{base}"}
    if others:
        podman("rmi", "--force", *others)


# Apache Airflow 3 in its own virtualenv (`make airflow`), without batchcast: the DAG files must stand alone.
AIRFLOW_PY = Path(__file__).resolve().parents[1] / ".venv-airflow" / "bin" / "python"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
users: [{name: none, user: {token: none}}]
"""


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory):
    if not AIRFLOW_PY.exists():
        pytest.skip(f"Airflow unavailable: {AIRFLOW_PY} is missing; run 'make airflow'")
    home = tmp_path_factory.mktemp("airflow")
    (home / "kubeconfig").write_text(KUBECONFIG)  # lets pods be built; nothing connects to it
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "KUBECONFIG": str(home / "kubeconfig")}
    subprocess.run([str(AIRFLOW_PY.parent / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    return env


@pytest.fixture
def webhook():
    """A Slack-compatible webhook on 127.0.0.1: (its URL, the JSON bodies it received), stopped after the test."""
    import http.server
    import threading

    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()
