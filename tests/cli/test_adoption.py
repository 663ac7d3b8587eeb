"""A real repository adopted unchanged: pins that cannot install, overrides, interpreters, visible builds."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import bc, bc_json


def tree_digest(repo) -> str:
    digest = hashlib.sha256()
    for path in sorted(repo.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(repo)}\0".encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow  # builds uv virtualenvs in a cache of its own
def test_a_pin_that_cannot_install_is_a_failed_run_and_overrides_fix_it(adopted, churn_repo, tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHCAST_CACHE_DIR", str(tmp_path / "cache"))  # this test's builds are its own
    requirements = churn_repo / "requirements.txt"
    requirements.write_text(requirements.read_text() + "pandas==0.24.2\n")  # as a 2019 repository pins it
    untouched = tree_digest(churn_repo)

    out = bc("run", "training", cwd=adopted, ok=False)
    assert out.returncode == 1
    error = next(line for line in out.stderr.splitlines() if line.startswith("error: "))
    fix = next(line for line in out.stderr.splitlines() if line.startswith("fix: "))
    assert str(requirements) in error and "pandas==0.24.2" in error and "we can conclude" in error
    assert 'overrides = ["pandas>=VERSION"]' in fix
    [failed] = bc_json("runs", cwd=adopted)
    assert failed["status"] == "failed" and "cannot be installed" in failed["error"]
    assert "pandas" in bc("show", failed["run_id"], "--log", cwd=adopted).stdout  # uv's whole output

    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[model]\n", '[model]\noverrides = ["pandas>=2.2"]\n'))
    trained = bc("run", "training", cwd=adopted)
    assert "building its environment" in trained.stdout and "building the isolated environment" in trained.stderr
    for day in ("2026-01-01", "2026-01-02"):
        bc("run", "application", "--date", day, cwd=adopted)
    runs = bc_json("runs", cwd=adopted)
    assert [r["status"] for r in runs] == ["failed", "succeeded", "succeeded", "succeeded"]
    manifest = bc_json("show", runs[1]["run_id"], cwd=adopted)
    environment = manifest["environment"]
    assert environment["overrides"] == ["pandas>=2.2"] and environment["build_s"] > 0
    assert int(environment["packages"]["pandas"].split(".")[0]) >= 2 and "scikit-learn" in environment["packages"]
    assert bc_json("show", runs[2]["run_id"], cwd=adopted)["environment"]["build_s"] == 0  # cached
    assert tree_digest(churn_repo) == untouched


def test_adopt_writes_overrides_and_schedules(churn_repo, tmp_path):
    service = tmp_path / "svc"
    service.mkdir()
    bc("adopt", str(churn_repo), "--name", "churn", "--table", "predictions", "--schema", "player_id:STRING,label:BOOL",
       "--override", "pandas>=2.2", "--override", "numpy<3", "--schedule-training", "0 3 * * 1",
       "--schedule-application", "0 6 * * *", cwd=service)
    text = (service / "batchcast.toml").read_text()
    assert 'overrides = ["pandas>=2.2", "numpy<3"]' in text
    upcoming = bc_json("schedule", cwd=service)
    assert {u["action"]: u["schedule"] for u in upcoming} == {"training": "0 3 * * 1", "application": "0 6 * * *"}


def test_an_interpreter_that_is_not_there_is_one_line_naming_those_found(adopted):
    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[model]\n", '[model]\npython = "3.99"\n'))
    out = bc("run", "training", cwd=adopted, ok=False)
    error = next(line for line in out.stderr.splitlines() if line.startswith("error: "))
    assert "[model] python = '3.99': no such interpreter on this machine (found: " in error
    assert "pyenv" not in error.split("(found:")[0] and "Traceback" not in out.stderr
    assert json.loads(bc("runs", "--json", cwd=adopted).stdout)[0]["status"] == "failed"


def test_a_bad_override_is_a_spec_error(adopted):
    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[model]\n", '[model]\noverrides = ["pandas >> 2"]\n'))
    out = bc("validate", cwd=adopted, ok=False)
    assert "[model] overrides: 'pandas >> 2' is not a requirement specifier" in out.stderr


def test_an_unscheduled_spec_says_so_and_render_fails(adopted, tmp_path):
    out = bc("schedule", cwd=adopted)
    assert out.stdout.startswith("no scheduled action in ") and "schedule = " in out.stdout
    out = bc("airflow", "render", "--out", str(tmp_path / "dags"), cwd=adopted, ok=False)
    assert "no scheduled action in" in out.stderr and "--schedule-application" in out.stderr
    assert not list((tmp_path / "dags").glob("*.py"))


def test_a_misspelled_action_table_gets_did_you_mean(adopted):
    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[actions.application]", "[actions.aplication]"))
    out = bc("validate", cwd=adopted, ok=False)
    assert "[actions.aplication] is not an action name" in out.stderr and "environment" not in out.stderr
    assert "fix: did you mean [actions.application]?" in out.stderr


def test_a_bad_executor_option_names_the_option(adopted):
    out = bc("run", "training", "--executor", "lokal", cwd=adopted, ok=False)
    assert out.stderr.startswith("error: --executor lokal: unknown executor\nfix: use one of inline, local")
