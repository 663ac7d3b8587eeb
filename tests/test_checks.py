"""Input checks through the CLI: a dropped column, a changed type or a shifted feature stops or flags the run."""

from __future__ import annotations

import re

import duckdb
import pytest

from batchcast import Service
from batchcast.ui import grid_html, overview, service_html
from tests.conftest import bc, bc_json, query, write_python_service

CHECKS = '\n[actions.application.checks]\non_breach = "{mode}"\n'


@pytest.fixture
def trained(tmp_path, webhook):
    """A trained Python-contract service whose application checks its input; alerts go to a webhook."""
    url, received = webhook
    spec = write_python_service(tmp_path, 3000, extra=CHECKS.format(mode="fail")
                                + f'\n[alerts]\nwebhook = "{url}"\n')
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", "2026-01-01", cwd=tmp_path)
    return spec, received


def change(spec, sql: str) -> None:
    with duckdb.connect(str(spec.parent / ".batchcast" / "warehouse.duckdb")) as con:
        con.execute(sql)


def rows(spec) -> list:
    return query(spec.parent / ".batchcast" / "warehouse.duckdb",
                 "SELECT _logical_date::VARCHAR, _run_id, count(*) FROM scores GROUP BY ALL ORDER BY ALL")


def test_input_like_training_passes_and_is_recorded_per_feature(trained):
    spec, alerts = trained
    [applied] = Service(spec).runs("application")
    assert applied.succeeded and applied.checks["breaches"] == [] and alerts == []
    assert set(applied.checks["features"]) == {f"f{i}" for i in range(1, 9)}
    assert all(f["psi"] < 0.05 and f["out_of_range"] == 0 for f in applied.checks["features"].values())
    assert applied.checks["predictions"]["psi"] < 0.05 and applied.checks["extra_columns"] == []


def test_an_extra_column_is_recorded_not_a_breach(trained):
    spec, alerts = trained
    change(spec, "ALTER TABLE features ADD COLUMN campaign VARCHAR DEFAULT 'winter'")
    bc("run", "application", "--date", "2026-01-03", cwd=spec.parent)
    applied = Service(spec).runs("application")[-1]
    assert applied.succeeded and applied.checks["extra_columns"] == ["campaign"]
    assert applied.checks["breaches"] == [] and alerts == []


@pytest.mark.parametrize(("sql", "says"), [
    ("UPDATE features SET f1 = f1 * 0.5", "feature f1 drifted: PSI"),
    ("UPDATE features SET f4 = f4 + 2", "feature f4: 1 of values outside the training range, over max_out_of_range"),
    ("ALTER TABLE features DROP COLUMN f3", "feature f3 is missing from the input"),
    ("ALTER TABLE features ALTER f2 TYPE VARCHAR", "feature f2 changed kind: string where training had number"),
    ("UPDATE features SET f5 = NULL WHERE f5 < 0.5", "feature f5: null fraction 0.5"),
])
def test_a_breach_fails_the_run_names_the_feature_and_leaves_the_table(trained, sql, says):
    spec, alerts = trained
    before = rows(spec)
    change(spec, sql)
    out = bc("run", "application", "--date", "2026-01-01", cwd=spec.parent, ok=False)
    assert out.returncode == 1 and rows(spec) == before
    [line] = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: input check failed: ") and says in line, line
    failed = Service(spec).runs("application")[-1]
    assert failed.status.value == "failed" and says in failed.checks["breaches"][0]
    [alert] = alerts
    assert "input checks breached (fail)" in alert["text"] and says in alert["text"]


def test_warn_publishes_and_records_and_alerts_the_finding(trained):
    spec, alerts = trained
    spec.write_text(spec.read_text().replace('on_breach = "fail"', 'on_breach = "warn"'))
    change(spec, "UPDATE features SET f1 = f1 * 0.5")
    said = bc("run", "application", "--date", "2026-01-02", cwd=spec.parent)
    warned = Service(spec).runs("application")[-1]
    assert warned.succeeded and warned.rows["written"] == 3000
    assert warned.checks["on_breach"] == "warn" and warned.checks["features"]["f1"]["psi"] > 0.2
    assert any(b.startswith("feature f1 drifted: PSI") for b in warned.checks["breaches"])
    [alert] = alerts
    assert "input checks breached (warn)" in alert["text"] and "f1" in alert["text"]

    # Not shown as a plain success anywhere (issue 28): the run's line, runs, show, their JSON, the dashboard.
    assert " succeeded, 1 warning in " in said.stdout and "warning: input checks breached (warn): feature f1" \
        in said.stderr
    [listed] = [r for r in bc_json("runs", cwd=spec.parent) if r["run_id"] == warned.run_id]
    assert listed["status"] == "succeeded" and listed["warnings"][0].startswith("input checks breached (warn)")
    assert "succeeded, 1 warning" in bc("runs", cwd=spec.parent).stdout
    assert bc_json("show", warned.run_id, cwd=spec.parent)["warnings"] == listed["warnings"]
    assert "succeeded, 1 warning" in bc("show", warned.run_id, cwd=spec.parent).stdout
    page = service_html(Service(spec))
    [row] = re.findall(rf'<tr class="run succeeded warned">(.*?{warned.run_id}.*?)</tr>', page, re.S)
    assert "succeeded, 1 warning" in row and "feature f1 drifted" in row
    from batchcast.ui.dashboard import run_page

    assert "succeeded, 1 warning" in run_page([Service(spec)], warned.run_id)
    chart = re.search(r'<figure class="drift">(.*?)</figure>', page, re.S).group(1)
    series = dict(re.findall(r'data-series="(f\d)" data-points="(\d+)"', chart))
    assert series == {f"f{i}": "2" for i in range(1, 9)}  # two checked dates per feature
    assert re.search(r"<title>f1 2026-01-02: (\d+\.\d+)</title>", chart)
    assert re.search(r'<line class="threshold"', chart) and "max_psi" in chart  # the limit, drawn and named
    grid = grid_html(Service(spec))
    cell = re.search(rf'<td class="cell succeeded warned"[^>]*>\s*<a href="/runs/{warned.run_id}"', grid)
    assert cell, "the grid's cell of a warned run is not plain green"
    overview_row = re.search(r'<tr class="service-row (\w+)"', overview([Service(spec)])).group(1)
    assert overview_row == "amber"


def test_a_missing_feature_stops_even_a_warn_with_the_check_s_message(trained):
    spec, alerts = trained
    spec.write_text(spec.read_text().replace('on_breach = "fail"', 'on_breach = "warn"'))
    before = rows(spec)
    change(spec, "ALTER TABLE features DROP COLUMN f3")
    out = bc("run", "application", "--date", "2026-01-01", cwd=spec.parent, ok=False)
    assert "error: input check failed: feature f3 is missing from the input" in out.stderr
    assert rows(spec) == before and len(alerts) == 1


def test_checks_need_the_python_contract(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    spec = tmp_path / "svc" / "batchcast.toml"
    spec.write_text(spec.read_text() + CHECKS.format(mode="fail"))
    out = bc("validate", cwd=tmp_path / "svc", ok=False)
    assert "[actions.application.checks]: input checks apply to an application of the Python contract" in out.stderr
