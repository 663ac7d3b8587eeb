"""The container executor with real podman (runc, vfs) and images built by `batchcast build` from a local base."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from batchcast import Service
from batchcast.isolation.images import ENTRYPOINT, engine_command, engine_run
from batchcast.spec import ServiceSpec, load_spec
from batchcast.testing.executors import ExecutorContract
from tests.conftest import BASE_IMAGE, BATCHCAST, bc, query

pytestmark = pytest.mark.slow  # podman: image builds and containers

SLOW_SENTINEL = "SLOW"  # a file in the artifact store that makes the example's application sleep
ADOPTED_PROJECT = "adopted"  # the adopted repository's images get a tag of their own, beside the example's


def with_image(spec: Path, project: str | None = None) -> None:
    table = f'\n[image]\nbase = "{BASE_IMAGE}"\n' + (f'project = "{project}"\n' if project else "")
    spec.write_text(spec.read_text() + table)


_BUILT: dict[str, tuple[str, str]] = {}  # image tag -> (digest of the code and spec it holds, its image id)


def build_if_changed(service: Path) -> None:
    """`batchcast build` the service unless its tag already holds this code and spec.

    Under vfs a build costs a gigabyte and a minute, so tests that run the same
    repository share one image; the image a rebuild replaces is removed, or it
    would hold its gigabyte until the session ends.
    """
    spec = load_spec(service / "batchcast.toml")
    engine = engine_command("podman")
    key, before = _content(spec), _image_id(engine, spec.image_tag)
    if _BUILT.get(spec.image_tag) == (key, before):
        return
    bc("build", cwd=service)
    _BUILT[spec.image_tag] = key, _image_id(engine, spec.image_tag)
    if before and before != _BUILT[spec.image_tag][1]:
        engine_run(engine, "rmi", before, check=False)


def _content(spec: ServiceSpec) -> str:
    """A digest of what `batchcast build` copies into the image: the spec and the model repository."""
    digest = hashlib.sha256(spec.file.read_bytes())
    for path in sorted(spec.model_path.rglob("*")):
        relative = path.relative_to(spec.model_path)
        if path.is_file() and not set(relative.parts) & set(spec.image.exclude):
            digest.update(f"{relative}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def _image_id(engine: list[str], tag: str) -> str:
    return engine_run(engine, "image", "inspect", "--format", "{{.Id}}", tag, check=False)


@pytest.fixture(scope="module")
def example(podman, tmp_path_factory):
    """The example service, its application made to sleep while a sentinel file exists, built once."""
    root = tmp_path_factory.mktemp("container")
    bc("init", "svc", "--name", "churn", cwd=root)
    svc = root / "svc"
    task = svc / "prediction" / "task.py"
    task.write_text(task.read_text().replace("    def application(self) -> None:\n", (
        "    def application(self) -> None:\n"
        "        import os, pathlib, time\n"
        "        while pathlib.Path(os.environ.get('BATCHCAST__STORAGE__URL', '/nonexistent'), "
        f"'{SLOW_SENTINEL}').exists():\n"
        "            time.sleep(0.2)\n")))
    with_image(svc / "batchcast.toml")
    out = bc("build", cwd=svc)
    assert "built localhost/batchcast/churn:1" in out.stdout
    assert "image build: STEP 1/" in out.stderr and "FROM" in out.stderr  # a long build tells its steps
    return svc


def test_build_writes_a_dockerfile_and_tags_the_image(example, podman):
    dockerfile = (example / ".batchcast" / "Dockerfile").read_text()
    assert dockerfile.startswith("# Written by batchcast build") and f"FROM {BASE_IMAGE}" in dockerfile
    assert "--no-index" in dockerfile and "model.joblib" not in dockerfile
    assert f"ENTRYPOINT {json.dumps(ENTRYPOINT)}" in dockerfile
    def layers(image: str) -> int:
        return int(subprocess.run([*podman, "image", "inspect", "--format", "{{len .RootFS.Layers}}", image],
                                  capture_output=True, text=True, check=True).stdout)

    # Dependencies and code, two layers over the base: under vfs every layer is a whole copy.
    assert layers("localhost/batchcast/churn:1") == layers(BASE_IMAGE) + 2


def test_training_and_application_in_containers_deliver_what_local_does(example, podman):
    bc("run", "training", "--executor", "container", cwd=example)
    out = bc("run", "application", "--executor", "container", "--date", "2026-01-01", cwd=example)
    assert '"written": 1000' in out.stdout
    service = Service(example / "batchcast.toml")
    [training] = service.runs("training")
    [application] = service.runs("application")
    digest, image_id = subprocess.run([*podman, "image", "inspect", "--format", "{{.Digest}} {{.Id}}",
                                       "localhost/batchcast/churn:1"], capture_output=True, text=True,
                                      check=True).stdout.split()
    for manifest in (training, application):
        assert manifest.executor == "container" and manifest.image["ref"] == "localhost/batchcast/churn:1"
        assert digest.startswith("sha256:") and (manifest.image["digest"], manifest.image["id"]) == (digest, image_id)
        assert manifest.versions["python"].startswith("3.11")  # the image's Debian Python, not the host's
    assert application.model_run == training.run_id and "log.txt" in application.files
    db = example / ".batchcast" / "warehouse.duckdb"
    sql = "SELECT player_id, label, _model_run FROM predictions WHERE _logical_date = '2026-01-01' ORDER BY player_id"
    in_container = query(db, sql)
    bc("run", "application", "--executor", "local", "--date", "2026-01-01", "--model", training.run_id, cwd=example)
    assert len(in_container) == 1000 and query(db, sql) == in_container  # the local run replaced the date's rows


@contextmanager
def slow_application(example: Path, podman: list[str]):
    """A trained model and an application that sleeps while inside; checks the table and the engine after."""
    service = Service(example / "batchcast.toml")
    if not service.runs("training"):
        bc("run", "training", "--executor", "inline", cwd=example)
    db = example / ".batchcast" / "warehouse.duckdb"
    per_run = "SELECT _run_id, count(*) FROM predictions GROUP BY 1 ORDER BY 1"
    before = query(db, per_run)
    sentinel = Path(service.spec.storage_url) / SLOW_SENTINEL
    sentinel.touch()
    try:
        yield service
    finally:
        sentinel.unlink()
    assert query(db, per_run) == before  # the table is untouched
    assert subprocess.run([*podman, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                          check=True).stdout.strip() == ""  # nothing left behind


def test_a_killed_container_fails_the_run_and_leaves_the_table(example, podman):
    with slow_application(example, podman) as service:
        run = subprocess.Popen([BATCHCAST, "run", "application", "--executor", "container", "--date", "2026-01-01"],
                               cwd=example, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        subprocess.run([*podman, "kill", _running_container(podman)], check=True, capture_output=True)
        run.communicate(timeout=120)
    assert run.returncode == 1
    failed = service.runs("application")[-1]
    assert failed.status.value == "failed" and "exited with code 137" in failed.error["message"]
    assert "killed by SIGKILL" in failed.error["message"] and "log.txt" in failed.files
    bc("run", "application", "--executor", "container", "--date", "2026-01-01", cwd=example)
    assert service.runs("application")[-1].succeeded


def test_a_container_past_its_timeout_is_killed_and_recorded_timed_out(example, podman):
    with slow_application(example, podman) as service:
        out = bc("run", "application", "--executor", "container", "--date", "2026-01-03", cwd=example, ok=False,
                 env={"BATCHCAST__ACTIONS__APPLICATION__TIMEOUT": "5"})
    timed_out = service.runs("application")[-1]
    assert timed_out.status.value == "timed out" and timed_out.error["type"] == "RunTimeout", out.stderr


def test_an_adopted_command_contract_repository_runs_in_containers(adopted, podman):
    with_image(adopted / "batchcast.toml", ADOPTED_PROJECT)
    build_if_changed(adopted)  # the contract's first test below runs this image again
    bc("run", "training", "--executor", "container", cwd=adopted)
    bc("run", "application", "--executor", "container", "--date", "2026-01-01", cwd=adopted)
    rows = json.loads(bc("runs", "--json", cwd=adopted).stdout)
    assert [(r["action"], r["status"]) for r in rows] == [("training", "succeeded"), ("application", "succeeded")]
    assert rows[1]["rows"]["written"] > 0


class TestContainerContract(ExecutorContract):
    """The executor contract, each test running the image `batchcast build` makes of the repository it left."""

    @pytest.fixture
    def executor(self, adopted, podman):
        with_image(adopted / "batchcast.toml", ADOPTED_PROJECT)
        return "container"

    def build(self, adopted):
        build_if_changed(adopted)  # the code is in the image: a patched repository is a new image

    def check_interpreter(self, prefix):
        assert prefix == "/opt/batchcast"  # the image's virtualenv (containers.DOCKERFILE), not this interpreter


def test_a_missing_image_says_to_build_it(tmp_path, podman):
    bc("init", "svc", "--name", "nobuild", cwd=tmp_path)
    out = bc("run", "training", "--executor", "container", cwd=tmp_path / "svc", ok=False)
    assert "localhost/batchcast/nobuild:1" in out.stderr and "batchcast build" in out.stderr


def _running_container(podman, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = subprocess.run([*podman, "ps", "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()
        if names:
            return names[0]
        time.sleep(0.2)
    raise AssertionError("no container started")
