import os
import shutil
import sys
from pathlib import Path

import pytest

from batchcast import RunStatus, Service
from batchcast.isolation import environments
from batchcast.isolation.environments import cache_dir, ensure_venv
from batchcast.spec import load_spec
from batchcast.testing.executors import ExecutorContract
from tests.conftest import write_python_service


class TestLocal(ExecutorContract):
    @pytest.fixture
    def executor(self):
        return "local"

    def check_interpreter(self, prefix):
        assert prefix != sys.prefix and prefix.startswith(str(cache_dir() / "venvs"))


@pytest.mark.slow  # builds uv virtualenvs
def test_venv_is_cached_by_requirements(adopted, churn_repo):
    spec = load_spec(adopted / "batchcast.toml")
    first = ensure_venv(spec, with_runtime=False)
    assert ensure_venv(spec, with_runtime=False) == first
    (churn_repo / "requirements.txt").write_text("numpy>=1.26\nscikit-learn>=1.4\njoblib>=1.3\n# changed\n")
    assert ensure_venv(load_spec(adopted / "batchcast.toml"), with_runtime=False) != first
    # The model's venv does not get batchcast's own libraries.
    assert not list(first.glob("lib/python3*/site-packages/duckdb"))


@pytest.mark.slow  # builds two uv virtualenvs, one for a fresh checkout every time
def test_an_environment_links_the_batchcast_that_asked_for_it(tmp_path, monkeypatch):
    """Another checkout (a deleted worktree) gets its own environment, not one linking to this one's source."""
    spec = load_spec(write_python_service(tmp_path, rows=10))
    here = ensure_venv(spec, with_runtime=True)
    assert (here / "batchcast-src" / "batchcast").resolve() == environments.SOURCE
    other = tmp_path / "other-checkout" / "batchcast"
    shutil.copytree(environments.SOURCE, other, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(environments, "SOURCE", other)
    elsewhere = ensure_venv(spec, with_runtime=True)
    assert elsewhere != here and (elsewhere / "batchcast-src" / "batchcast").resolve() == other


def test_unsatisfiable_requirements_are_a_failed_run_with_uv_message(adopted, churn_repo):
    (churn_repo / "requirements.txt").write_text("numpy==0.0.1-no-such-version\n")
    manifest = Service(adopted / "batchcast.toml").run("training", executor="local")
    assert manifest.status is RunStatus.FAILED
    assert manifest.error["message"].startswith(f"building the isolated environment failed: "
                                                f"{churn_repo / 'requirements.txt'} cannot be installed")


def test_python_contract_child_crash_is_committed_as_failed(tmp_path):
    spec = write_python_service(tmp_path, rows=2_000, executor="local")
    model = tmp_path / "repo" / "model.py"
    model.write_text(model.read_text().replace("        self.inner.fit(X, y)\n",
                                               "        import os; os._exit(9)\n"))
    manifest = Service(spec).run("training")
    assert manifest.status is RunStatus.FAILED
    assert "worker exited with code 9 before committing" in manifest.error["message"]
    assert "log.txt" in manifest.files


def test_python_contract_timeout_kills_the_child(tmp_path):
    spec = write_python_service(tmp_path, rows=2_000, executor="local")
    model = tmp_path / "repo" / "model.py"
    model.write_text(model.read_text().replace("        self.inner.fit(X, y)\n",
                                               "        import time; time.sleep(60)\n"))
    spec.write_text(spec.read_text().replace('[actions.training]\n', '[actions.training]\ntimeout = 5\n'))
    manifest = Service(spec).run("training")
    assert manifest.status is RunStatus.TIMED_OUT and manifest.duration_s < 30


def test_an_environment_gets_the_drivers_of_the_specs_urls(tmp_path):
    """A run in the environment reads, stores and publishes through them: without them it fails on import."""
    spec = write_python_service(tmp_path, rows=10)
    text = spec.read_text()
    assert environments.backend_packages(load_spec(spec)) == ()  # DuckDB and a folder: the key is unchanged
    spec.write_text(text + '\n[storage]\nurl = "s3://bucket/artifacts"\n[warehouse]\nurl = "postgresql://u@db/x"\n')
    assert set(environments.backend_packages(load_spec(spec))) == {"adbc-driver-postgresql", "s3fs"}
    spec.write_text(text.replace('input = { query = "SELECT * EXCLUDE (churned) FROM features" }',
                                 'input = { path = "gs://bucket/day/*.parquet" }')
                    + '\n[warehouse]\nurl = "bigquery://acme/scores"\n')
    assert set(environments.backend_packages(load_spec(spec))) == {"google-cloud-bigquery", "gcsfs"}


STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
OBLIGING = ("import signal, sys, time\n"
            "def done(*_):\n    print('stopped cleanly', flush=True); sys.exit(3)\n"
            "signal.signal(signal.SIGTERM, done); print('up', flush=True); time.sleep(60)")


@pytest.mark.parametrize("code, said", [(STUBBORN, "up"), (OBLIGING, "stopped cleanly")])
def test_a_timeout_with_grace_asks_first_and_then_kills(tmp_path, code, said):
    """The child gets SIGTERM and the grace to stop what it started elsewhere; one that ignores it is killed."""
    from batchcast.errors import RunTimeout
    from batchcast.isolation import process

    log = tmp_path / "child.log"
    with pytest.raises(RunTimeout):
        process.run([sys.executable, "-c", code], cwd=tmp_path, env={}, log_path=log, timeout=2, grace=2)
    assert log.read_text().strip().splitlines()[-1] == said
    assert not [p for p in process.descendants(os.getpid()) if _cmdline(p).endswith("time.sleep(60)")]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
    except OSError:
        return ""
