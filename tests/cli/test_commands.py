"""The CLI's own promises: help everywhere, init and adopt, JSON listings, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchcast.cli import main
from tests.conftest import BATCHCAST, bc, bc_json, write_python_service


def test_every_command_has_help():
    for name, command in main.commands.items():
        assert command.help and len(command.help) > 10, name
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_init_writes_a_complete_service(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    for rel in ("batchcast.toml", "configs/training.json", "configs/application.json", "requirements.txt",
                "prediction/__init__.py", "prediction/main.py", "prediction/model.py", "prediction/task.py",
                "prediction/data.py"):
        assert (svc / rel).is_file(), rel
    assert "service churn/1, actions training, application" in bc("validate", cwd=svc).stdout
    assert "already exists" in bc("init", "svc", cwd=tmp_path, ok=False).stderr


@pytest.mark.parametrize("folder", ["svc", "."])
def test_init_with_a_refused_name_leaves_nothing_behind(tmp_path, folder):
    """Issue 26.18: init --name ../../evil was refused, but the template's files stayed."""
    refused = bc("init", folder, "--name", "../../evil", cwd=tmp_path, ok=False)
    assert refused.returncode == 1 and "'../../evil' is not a valid name" in refused.stderr
    assert str(tmp_path / folder / "batchcast.toml").replace("/./", "/") in refused.stderr.replace("/./", "/")
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_init_s_hint_is_a_command_that_runs_outside_the_venv(tmp_path):
    """Issue 26 (first run): make demo's hint 'next: cd demo && batchcast run training' was 'command not found'."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if Path(p).resolve() != Path(BATCHCAST).resolve().parent)
    hint = bc("init", "svc", "--name", "churn", cwd=tmp_path, env={"PATH": path}).stdout.split("next: ")[1].strip()
    assert hint == f"cd svc && {Path(BATCHCAST).resolve()} run training"
    spec = tmp_path / "svc" / "batchcast.toml"
    spec.write_text(spec.read_text().replace('executor = "local"', 'executor = "inline"'))
    ran = subprocess.run(hint, shell=True, cwd=tmp_path, env={**os.environ, "PATH": path}, capture_output=True,
                         text=True)
    assert ran.returncode == 0 and "succeeded" in ran.stdout, ran.stderr


def test_init_service_runs_end_to_end_inline(tmp_path):
    bc("init", "svc", cwd=tmp_path)
    svc = tmp_path / "svc"
    bc("run", "training", "--executor", "inline", cwd=svc)
    out = bc("run", "application", "--date", "2026-03-01", "--executor", "inline", cwd=svc).stdout
    assert "succeeded" in out and '"written": 1000' in out
    preview = bc_json("preview", "--limit", "3", cwd=svc)
    assert len(preview) == 3 and set(preview[0]) >= {"player_id", "label", "_run_id"}
    model = bc_json("models", cwd=svc)[0]["run_id"]
    assert bc("promote", model, cwd=svc).stdout.strip() == f"champion -> {model}"
    assert bc_json("models", cwd=svc)[0]["aliases"] == ["champion"]
    assert bc_json("show", "champion", cwd=svc)["run_id"] == model


@pytest.mark.parametrize("schema, table, words", [
    ("player_id:STRING,label:BOOLE", "predictions", "unknown type 'BOOLE'"),
    ("player_id:STRING,label:BOOL", "bad-table", "'bad-table' is not a valid table name"),
])
def test_adopt_rejects_bad_options_and_writes_nothing(churn_repo, tmp_path, schema, table, words):
    out = tmp_path / "svc"
    out.mkdir()
    result = bc("adopt", str(churn_repo), "--name", "churn", "--table", table, "--schema", schema, cwd=out, ok=False)
    assert words in result.stderr and "fix:" in result.stderr
    assert list(out.iterdir()) == []


def test_adopt_refuses_to_overwrite(adopted, churn_repo):
    result = bc("adopt", str(churn_repo), "--name", "x", "--table", "t", "--schema", "a:STRING", cwd=adopted, ok=False)
    assert "already exists" in result.stderr and "--force" in result.stderr


def test_unknown_action_and_bad_date(adopted):
    assert "no action 'scoring' (declared: training, application)" in bc("run", "scoring", cwd=adopted,
                                                                          ok=False).stderr
    assert "logical date '2026-13-01' is not YYYY-MM-DD" in bc("run", "training", "--date", "2026-13-01",
                                                               cwd=adopted, ok=False).stderr
    assert not (adopted / ".batchcast" / "artifacts").exists() or bc_json("runs", cwd=adopted) == []


def test_verbose_shows_traceback(adopted):
    result = bc("--verbose", "run", "scoring", cwd=adopted, ok=False)
    assert "Traceback" in result.stderr and "error: " in result.stderr


def test_runs_prints_a_page_and_says_how_to_see_the_rest(tmp_path):
    import datetime as dt

    from batchcast import Service

    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(60)]
    Service(svc / "batchcast.toml").ledger.queue("churn", "1", "application", days)

    def dates(out: str) -> list[str]:
        return [d.isoformat() for d in days if d.isoformat() in out]

    paged = bc("runs", cwd=svc).stdout
    assert dates(paged) == [d.isoformat() for d in days[-50:]]  # the newest page, oldest first as ever
    assert "10 earlier rows not shown; --limit N shows the newest N, --limit 0 all of them" in paged
    assert dates(bc("runs", "--limit", "3", cwd=svc).stdout) == [d.isoformat() for d in days[-3:]]
    everything = bc("runs", "--limit", "0", cwd=svc).stdout
    assert len(dates(everything)) == 60 and "not shown" not in everything
    assert len(bc_json("runs", cwd=svc)) == 60  # machines get every row unless they ask for fewer
    assert [r["logical_date"] for r in bc_json("runs", "--limit", "2", cwd=svc)] == [d.isoformat() for d in days[-2:]]
    assert "Invalid value for '--limit'" in bc("runs", "--limit", "-1", cwd=svc, ok=False).stderr


def test_every_command_that_prints_a_result_prints_json_too(tmp_path):
    """Issue 28: --json was missing on init, adopt, pause, resume and the renders."""
    assert bc_json("init", "svc", "--name", "churn", cwd=tmp_path)["spec"] == "svc/batchcast.toml"
    svc = tmp_path / "svc"
    adopted = bc_json("adopt", str(svc), "--name", "again", "--table", "t", "--schema", "a:STRING", cwd=tmp_path)
    assert adopted["spec"] == "batchcast.toml" and (tmp_path / "batchcast.toml").is_file()
    assert bc_json("pause", "training", cwd=svc) == {"action": "training", "paused": True}
    assert bc_json("resume", "training", cwd=svc) == {"action": "training", "paused": False}
    written = bc_json("airflow", "render", "--out", str(tmp_path / "dags"), cwd=svc)["written"]
    assert sorted(written) == sorted(str(p) for p in (tmp_path / "dags").glob("*.py")) and len(written) == 2
    for command in main.commands.values():  # each command that prints a result takes --json
        names = {o for p in command.params for o in getattr(p, "opts", [])}
        assert "--json" in names or command.name in ("serve", "stream", "scheduler", "ui", "airflow", "kubernetes"), \
            command.name


def test_331_skipped_dates_are_one_line_and_runs_filters_by_status_and_date(tmp_path):
    """Issue 28: a backfill then a scheduler start left 331 skipped dates, one line each, in `runs`."""
    import datetime as dt

    from batchcast import Service

    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    ledger = Service(svc / "batchcast.toml").ledger
    skipped = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(331)]
    ledger.add("churn", "1", "application", skipped, "skipped")
    queued = [dt.date(2026, 11, 28) + dt.timedelta(days=k) for k in range(3)]
    ledger.queue("churn", "1", "application", queued)

    table = bc("runs", cwd=svc).stdout
    assert len(table.splitlines()) < 20, table
    assert "331 application dates skipped by catchup=latest, 2026-01-01..2026-11-27" in table.replace("\n", " ")
    assert all(d.isoformat() in table for d in queued)
    assert len(bc_json("runs", cwd=svc)) == 334  # a program gets every date
    assert {r["status"] for r in bc_json("runs", "--status", "queued", cwd=svc)} == {"queued"}
    assert len(bc_json("runs", "--status", "skipped", "--status", "queued", cwd=svc)) == 334
    since = bc_json("runs", "--since", "2026-11-27", cwd=svc)
    assert [r["logical_date"] for r in since] == ["2026-11-27", *(d.isoformat() for d in queued)]
    assert bc_json("runs", "--status", "failed", cwd=svc) == []
    assert "'2026-13-01' does not match" in bc("runs", "--since", "2026-13-01", cwd=svc, ok=False).stderr


def test_run_check_promote_validate_and_backfill_print_json_and_their_failures_too(tmp_path):
    """Issue 28: --json was missing on run, backfill, check, promote and validate."""
    write_python_service(tmp_path, 200)
    assert bc_json("validate", cwd=tmp_path) == {"ok": True, "spec": str(tmp_path / "batchcast.toml"),
                                                 "service": "scores", "version": "2",
                                                 "actions": ["training", "application", "evaluation"]}
    trained = bc_json("run", "training", cwd=tmp_path)
    assert trained["status"] == "succeeded" and trained["kind"] == "training" and trained["metrics"]
    assert bc_json("promote", trained["run_id"], cwd=tmp_path) == {"alias": "champion", "run_id": trained["run_id"],
                                                                  "metrics": trained["metrics"]}
    applied = bc_json("run", "application", "--date", "2026-01-05", cwd=tmp_path)
    assert applied["model_run"] == trained["run_id"] and applied["rows"]["written"] > 0
    assert bc_json("check", "application", "--date", "2026-01-05", cwd=tmp_path)["run_id"] == applied["run_id"]

    missing = bc("check", "application", "--date", "2026-01-06", "--json", cwd=tmp_path, ok=False)
    assert missing.returncode == 1 and "error: no committed application run" in missing.stderr
    assert json.loads(missing.stdout)["error"].startswith("no committed application run of scores/2 for 2026-01-06")
    broken = {"BATCHCAST__ACTIONS__APPLICATION__INPUT__QUERY": "SELECT player_id, day FROM features"}
    failed = bc("run", "application", "--date", "2026-01-07", "--json", cwd=tmp_path, env=broken, ok=False)
    document = json.loads(failed.stdout)
    assert failed.returncode == 1 and document["status"] == "failed" and "missing" in document["error"]["message"]

    daily = {"BATCHCAST__ACTIONS__APPLICATION__SCHEDULE": "0 6 * * *"}
    filled = bc("backfill", "application", "--from", "2026-01-01", "--to", "2026-01-02", "--now", "--json",
                cwd=tmp_path, env=daily)
    document = json.loads(filled.stdout)  # the progress lines went to stderr
    assert document["queued"] == 2 and [r["logical_date"] for r in document["ran"]] == ["2026-01-01", "2026-01-02"]
    assert {r["status"] for r in document["ran"]} == {"succeeded"} and "[2/2] 2026-01-02" in filled.stderr
