"""The example service end to end on the real backends, extras and credentials."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchcast.errors import SpecError
from batchcast.spec import load_spec
from tests.conftest import bc
from tests.store.test_remote import fresh_store


def count(url: str, table: str, day=None) -> int:
    from batchcast.warehouses import open_warehouse

    with open_warehouse(url) as wh:
        return wh.count(table, day)


@pytest.mark.slow  # the S3 and GCS emulators, PostgreSQL, the BigQuery emulator
@pytest.mark.parametrize("storage, warehouse", [("s3", "postgres"), ("gs", "bigquery")])
def test_example_service_on_remote_backends(tmp_path, request, storage, warehouse):
    request.getfixturevalue({"s3": "s3_endpoint", "gs": "gcs_endpoint"}[storage])
    if warehouse == "postgres":
        base = request.getfixturevalue("postgres_url")
        warehouse_url = f"{base}?schema=example"
    else:
        request.getfixturevalue("bigquery_endpoint")
        warehouse_url = "bigquery://test/example"
    store = fresh_store(storage)
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    # The spec stays as `init` wrote it; the deployment chooses its backends through the environment.
    env = {"BATCHCAST__STORAGE__URL": store.url, "BATCHCAST__WAREHOUSE__URL": warehouse_url}
    bc("run", "training", cwd=svc, env=env)
    bc("run", "application", "--date", "2026-01-01", cwd=svc, env=env)
    assert count(warehouse_url, "predictions") == 1000
    bc("run", "application", "--date", "2026-01-01", cwd=svc, env=env)
    assert count(warehouse_url, "predictions") == 1000
    runs = _runs(svc, env)  # listing reads the same store, chosen by the same environment
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    store.fs.invalidate_cache()  # the CLI wrote these from another process
    assert store.fs.exists(f"{store.root}/{runs[0]['run_id']}/output/model.joblib"), store.fs.find(store.root)
    assert not (svc / ".batchcast").exists()  # nothing went to the local defaults


def _runs(svc, env):
    import json

    return json.loads(bc("runs", "--json", cwd=svc, env=env).stdout)


# The user part, and a query parameter as libpq accepts it (issue 13, defect 2: that one used to pass).
@pytest.mark.parametrize("url", ["postgresql://u:hunter2@h/db", "postgresql://u@h/db?password=hunter2"])
def test_password_in_spec_is_refused(tmp_path, url):
    (tmp_path / "batchcast.toml").write_text(
        f'[service]\nname = "x"\nversion = "1"\n[warehouse]\nurl = "{url}"\n')
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "batchcast.toml", environ={})
    assert "holds a password" in str(err.value) and "hunter2" not in str(err.value)
    (tmp_path / "batchcast.toml").write_text('[service]\nname = "x"\nversion = "1"\n')
    secret = {"BATCHCAST__WAREHOUSE__URL": url}  # from the environment: allowed
    assert load_spec(tmp_path / "batchcast.toml", environ=secret).warehouse_url == secret["BATCHCAST__WAREHOUSE__URL"]


def test_password_from_environment_never_reaches_manifest_or_errors(tmp_path):
    from batchcast.errors import WarehouseUnavailable
    from batchcast.warehouses import open_warehouse

    with pytest.raises(WarehouseUnavailable) as err:
        open_warehouse("postgresql://u:hunter2@127.0.0.1:1/db").count("t")
    assert "hunter2" not in str(err.value) and "u:***@" in str(err.value)


@pytest.mark.parametrize("module, call, extra", [
    ("adbc_driver_postgresql", "from batchcast.warehouses import open_warehouse; open_warehouse('postgresql://h/db')",
     "postgres"),
    ("google.cloud.bigquery", "from batchcast.warehouses import open_warehouse; open_warehouse('bigquery://p/d')",
     "bigquery"),
    ("s3fs", "from batchcast.runs.store import ArtifactStore; ArtifactStore('s3://b/p')", "s3"),
    ("gcsfs", "from batchcast.runs.store import ArtifactStore; ArtifactStore('gs://b/p')", "gcs"),
])
def test_missing_extra_is_one_line_with_the_install(module, call, extra):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            f"from batchcast.errors import MissingExtra\n"
            f"try:\n    {call}\nexcept MissingExtra as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith(f"(fix: pip install 'batchcast[{extra}]')") and out.count("\n") == 1


def test_password_in_a_query_parameter_reaches_no_output_log_or_manifest(adopted):
    """From the environment it is allowed, and must be masked everywhere it would show (issue 13, defect 2)."""
    env = {"BATCHCAST__WAREHOUSE__URL": "postgresql://u@127.0.0.1:1/db?password=hunter2&connect_timeout=1"}
    outputs = [bc("validate", cwd=adopted, env=env),
               bc("run", "training", "--executor", "inline", cwd=adopted, env=env),
               bc("run", "application", "--executor", "inline", cwd=adopted, env=env, ok=False),
               bc("runs", "--json", cwd=adopted, env=env)]
    stored = [p.read_text() for p in (adopted / ".batchcast").rglob("*")
              if p.is_file() and p.suffix in (".json", ".txt")]
    assert len(stored) >= 4  # two manifests and two logs at least
    leaks = [text for text in [o.stdout + o.stderr for o in outputs] + stored if "hunter2" in text]
    assert not leaks, leaks[0][:500]
    assert "password=***" in "".join(stored)
