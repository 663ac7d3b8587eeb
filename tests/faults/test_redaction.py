"""A password planted in every form a URL can carry it reaches no output, log, manifest or dashboard page."""

from __future__ import annotations

import pytest

from batchcast import Service
from batchcast.ui import grid_html, models_html, overview, run_page, service_html
from tests.conftest import bc, write_python_service

SECRET = "pl4nted-Pa55"
PG = "postgresql://u{user}@127.0.0.1:1/db?connect_timeout=1{query}"  # nothing listens on port 1: runs fail
FORMS = {  # from the environment, where a deployment keeps secrets: allowed, and masked everywhere
    "user-part": PG.format(user=f":{SECRET}", query=""),
    "password-parameter": PG.format(user="", query=f"&password={SECRET}"),
    "token-parameter": PG.format(user="", query=f"&sslpassword={SECRET}&token={SECRET}"),
    # Issue 26.5: a DuckDB setting DuckDB refuses was echoed with the whole URL, in the error, log and manifest.
    "duckdb-setting": f"duckdb:///.batchcast/warehouse.duckdb?s3_secret_access_key={SECRET}&nope=1",
}


@pytest.mark.parametrize("form", FORMS)
def test_a_secret_from_the_environment_is_masked_everywhere(form, tmp_path, monkeypatch):
    write_python_service(tmp_path, rows=300)
    monkeypatch.setenv("BATCHCAST__WAREHOUSE__URL", FORMS[form])
    outputs = [bc("validate", cwd=tmp_path), bc("run", "application", "--date", "2026-01-01", cwd=tmp_path, ok=False),
               bc("runs", "--json", cwd=tmp_path), bc("--verbose", "run", "training", cwd=tmp_path, ok=False)]
    service = Service(tmp_path / "batchcast.toml")
    runs = service.runs()
    assert runs, [o.stderr for o in outputs]
    outputs += [bc("show", runs[-1].run_id, "--json", cwd=tmp_path), bc("models", cwd=tmp_path)]
    pages = [overview([service]), service_html(service), grid_html(service), models_html(service)]
    pages += [run_page([service], m.run_id) for m in runs]
    stored = [p.read_text(errors="replace") for p in (tmp_path / ".batchcast").rglob("*") if p.is_file()
              and p.suffix in (".json", ".txt", ".log")]
    texts = [o.stdout + o.stderr for o in outputs] + pages + stored
    leaks = [text for text in texts if SECRET in text]
    assert not leaks, leaks[0][:800]
    assert any("***" in text for text in stored), "the URL is recorded, masked"


@pytest.mark.parametrize("url", [
    PG.format(user=f":{SECRET}", query=""),
    PG.format(user="", query=f"&password={SECRET}"),
])
def test_a_secret_written_in_the_spec_is_refused_without_being_shown(url, tmp_path):
    spec = write_python_service(tmp_path, rows=300)
    spec.write_text(spec.read_text() + f'\n[warehouse]\nurl = "{url}"\n')
    for argv in (("validate",), ("run", "training"), ("runs",), ("ui", "--port", "1")):
        out = bc(*argv, cwd=tmp_path, ok=False)
        assert SECRET not in out.stdout + out.stderr and "error: " in out.stderr
