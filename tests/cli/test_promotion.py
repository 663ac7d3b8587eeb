"""The promotion gate and rollback, through the CLI: only better models become champion."""

from __future__ import annotations

import json
import re

import pytest

from batchcast import Manifest, Service
from batchcast.ui import models_html
from tests.conftest import bc, bc_json

GATE = '''
[actions.training.promote]
metric = "accuracy"
at_least = 0.5
'''


@pytest.fixture
def gated(tmp_path, webhook):
    """The example service whose training reports the accuracy written in its ACCURACY file; alerts to a webhook."""
    url, received = webhook
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    task = svc / "prediction" / "task.py"
    task.write_text(task.read_text().replace(
        '        joblib.dump(model, self.output / "model.joblib")\n',
        '        joblib.dump(model, self.output / "model.joblib")\n'
        '        accuracy = float(Path("ACCURACY").read_text())\n'))
    spec = svc / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[actions.application]", GATE + "\n[actions.application]")
                    + f'\n[alerts]\nwebhook = "{url}"\n')
    return svc, received


def train(svc, accuracy: float):
    (svc / "ACCURACY").write_text(str(accuracy))
    bc("run", "training", "--executor", "inline", cwd=svc)
    return Service(svc / "batchcast.toml").runs("training")[-1]


def champion(svc) -> str:
    return Service(svc / "batchcast.toml").store.alias("churn", "1", "champion")


def test_only_better_candidates_become_champion_and_rollback_restores_the_previous(gated):
    svc, alerts = gated
    first = train(svc, 0.8)
    assert first.promotion["decision"] == "promoted" and champion(svc) == first.run_id

    worse = train(svc, 0.7)
    assert worse.succeeded and worse.promotion["decision"] == "refused" and champion(svc) == first.run_id
    assert (worse.promotion["candidate"], worse.promotion["champion"]) == (0.7, 0.8)
    assert "accuracy 0.7 is not better than champion" in worse.promotion["reason"]
    assert "0.8" in worse.promotion["reason"] and "stored at training" in worse.promotion["basis"]
    [alert] = alerts
    assert "not promoted" in alert["text"] and "0.7" in alert["text"] and "0.8" in alert["text"]
    [listed] = [r for r in bc_json("runs", cwd=svc) if r["run_id"] == worse.run_id]  # not a plain success
    assert listed["warnings"] == [f"not promoted to champion: {worse.promotion['reason']}"]

    under = train(svc, 0.4)
    assert under.promotion["decision"] == "refused" and "under the floor at_least 0.5" in under.promotion["reason"]

    better = train(svc, 0.9)
    assert better.promotion["decision"] == "promoted" and champion(svc) == better.run_id
    assert len(alerts) == 2  # one per refused candidate

    out = bc("rollback", cwd=svc)
    assert out.stdout.strip() == f"champion -> {first.run_id}" and champion(svc) == first.run_id
    bc("run", "application", "--date", "2026-01-05", "--executor", "inline", cwd=svc)
    applied = Service(svc / "batchcast.toml").runs("application")[-1]
    assert applied.succeeded and applied.model_run == first.run_id

    history = bc("models", cwd=svc).stdout
    assert "champion history:" in history and "promotion gate: accuracy 0.9 beats" in history
    assert f"batchcast rollback from {better.run_id}" in history

    page = models_html(Service(svc / "batchcast.toml"))
    decisions = re.search(r'<table class="decisions">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r'<tr class="(promoted|refused)">.*?/runs/([^"]+)".*?<td>(0\.\d+)</td>', decisions, re.S)
    assert rows == [("promoted", better.run_id, "0.9"), ("refused", under.run_id, "0.4"),
                    ("refused", worse.run_id, "0.7"), ("promoted", first.run_id, "0.8")]
    assert f"batchcast rollback from {better.run_id}" in page


def test_a_manual_promote_overrides_the_gate_and_is_recorded(gated):
    svc, _ = gated
    first = train(svc, 0.8)
    worse = train(svc, 0.6)
    bc("promote", worse.run_id, cwd=svc)
    assert champion(svc) == worse.run_id
    moves = Service(svc / "batchcast.toml").alias_history()["champion"]
    assert [(m["run_id"], m["by"].split(":")[0]) for m in moves] == [
        (first.run_id, "promotion gate"), (worse.run_id, "batchcast promote")]


def test_a_metric_the_run_did_not_record_refuses_and_rollback_without_history_says_how(gated):
    svc, _ = gated
    spec = svc / "batchcast.toml"
    spec.write_text(spec.read_text().replace('metric = "accuracy"', 'metric = "auc"'))
    refused = train(svc, 0.8)
    assert refused.promotion["decision"] == "refused"
    assert refused.promotion["reason"] == "the run recorded no metric 'auc' (it has: accuracy)"
    out = bc("rollback", cwd=svc, ok=False)
    assert "alias 'champion' of churn/1 has no previous target" in out.stderr
    assert "batchcast promote RUN --alias champion" in out.stderr


def test_a_gate_on_an_application_is_refused_with_where_it_belongs(gated):
    svc, _ = gated
    spec = svc / "batchcast.toml"
    spec.write_text(spec.read_text() + '\n[actions.application.promote]\nmetric = "accuracy"\n')
    before = spec.read_text()
    out = bc("validate", cwd=svc, ok=False)
    assert "[actions.application.promote]: only a training action has a promotion gate" in out.stderr
    assert "[actions.training.promote]" in out.stderr and spec.read_text() == before


def test_compare_on_scores_candidate_and_champion_on_the_same_rows(tmp_path):
    from tests.conftest import write_python_service

    spec = write_python_service(tmp_path, 3000, extra='\n[actions.training.promote]\nmetric = "accuracy"\n'
                                                      'compare_on = "evaluation"\n')
    root = spec.parent
    bc("run", "training", "--date", "2026-01-02", cwd=root)
    config = root / "repo" / "configs" / "training.json"
    config.write_text(json.dumps({"params": {"C": 0.01}}))  # a different model, scored on the same rows
    bc("run", "training", "--date", "2026-01-02", cwd=root)
    first, second = Service(spec).runs("training")
    assert "stored at training" in first.promotion["basis"]  # there was no champion to score
    judged = second.promotion
    assert judged["basis"].startswith("both scored on [actions.evaluation] input for 2026-01-02")
    assert judged["basis"].endswith("(1000 rows)") and judged["champion_run"] == first.run_id
    for run, value in ((second, judged["candidate"]), (first, judged["champion"])):
        bc("run", "evaluation", "--date", "2026-01-02", "--model", run.run_id, cwd=root)
        assert Service(spec).runs("evaluation")[-1].metrics["accuracy"] == value
    expected = first.run_id if judged["decision"] == "refused" else second.run_id
    assert Service(spec).store.alias("scores", "2", "champion") == expected


def test_compare_on_names_an_evaluation_action_and_needs_the_python_contract(gated, tmp_path):
    svc, _ = gated
    spec = svc / "batchcast.toml"
    spec.write_text(spec.read_text().replace('at_least = 0.5', 'at_least = 0.5\ncompare_on = "evaluation"'))
    out = bc("validate", cwd=svc, ok=False)
    assert "compare_on = 'evaluation': scoring both models on the same rows needs the Python contract" in out.stderr
    from tests.conftest import write_python_service

    py = write_python_service(tmp_path / "py", 100, extra='\n[actions.training.promote]\nmetric = "accuracy"\n'
                                                          'compare_on = "application"\n')
    out = bc("validate", cwd=py.parent, ok=False)
    assert "compare_on = 'application' is not an evaluation action of this spec" in out.stderr


def test_a_nan_metric_is_kept_refused_by_the_gate_and_every_listing_still_reads(gated):
    """Issue 26.1: a NaN metric was stored as null, which no reader could read back: runs, models, show failed."""
    svc, _ = gated
    first = train(svc, 0.8)
    nan = train(svc, float("nan"))
    assert nan.succeeded and nan.promotion["decision"] == "refused" and champion(svc) == first.run_id
    assert "not a finite number" in nan.promotion["reason"]
    stored = json.loads(next((svc / ".batchcast" / "artifacts").rglob(f"{nan.run_ts}/manifest.json")).read_text())
    assert stored["metrics"]["accuracy"] == "NaN"  # JSON has no NaN: kept as the string, read back as the float
    again = Service(svc / "batchcast.toml").store.manifest(nan.run_id)
    assert again.intact and again.metrics["accuracy"] != again.metrics["accuracy"]
    models = json.loads(bc("models", "--json", cwd=svc).stdout)
    assert [m["metrics"]["accuracy"] for m in models] == ["NaN", 0.8]
    assert nan.run_id in bc("runs", cwd=svc).stdout and "accuracy=nan" in bc("models", cwd=svc).stdout
    assert bc("show", nan.run_id, "--json", cwd=svc).returncode == 0


def test_a_null_metric_as_batchcast_0_1_stored_a_nan_reads_back(gated):
    svc, _ = gated
    run = train(svc, 0.8)
    path = next((svc / ".batchcast" / "artifacts").rglob(f"{run.run_ts}/manifest.json"))
    doc = json.loads(path.read_text())
    doc["metrics"]["accuracy"] = None
    path.write_text(json.dumps({**doc, "seal": None} | {"seal": Manifest.seal_of(doc)}))
    assert Service(svc / "batchcast.toml").store.manifest(run.run_id).intact
    assert "accuracy=null" in bc("models", cwd=svc).stdout


def test_a_listing_leaves_out_an_unreadable_manifest_and_says_so(gated):
    """Issue 26.1: one manifest that is not a manifest (here a number as its status) breaks no listing."""
    svc, _ = gated
    first, second = train(svc, 0.8), train(svc, 0.9)
    path = next((svc / ".batchcast" / "artifacts").rglob(f"{first.run_ts}/manifest.json"))
    path.write_text(path.read_text().replace('"status": "succeeded"', '"status": 17'))
    listed = bc("runs", cwd=svc)
    assert second.run_id in listed.stdout and first.run_id not in listed.stdout
    assert f"{first.run_ts}/manifest.json: not a readable manifest (status:" in listed.stderr
    shown = bc("show", first.run_id, cwd=svc, ok=False)
    assert shown.returncode == 1 and "not a readable manifest" in shown.stderr and "fix:" in shown.stderr


@pytest.mark.parametrize("alias", ["../../../../tmp/x", "", "champion\n", "*", "a/b"])
def test_an_alias_that_is_not_a_name_is_refused_before_it_touches_the_store(gated, tmp_path, alias):
    """Issue 26.8: promote --alias wrote outside the store, --model read from outside it, '*' globbed."""
    svc, _ = gated
    run = train(svc, 0.8)
    # The whole tree around the service: '../../../../tmp/x' from the alias folder lands in .batchcast/tmp.
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    promoted = bc("promote", run.run_id, "--alias", alias, cwd=svc, ok=False)
    assert promoted.returncode == 1 and f"alias {alias!r} is not a valid alias name" in promoted.stderr
    assert "fix:" in promoted.stderr and "Traceback" not in promoted.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("ref", ["../../../x", "churn/1/../..", "churn/1/training/*"])
def test_a_model_reference_outside_the_store_is_refused(gated, ref):
    svc, _ = gated
    train(svc, 0.8)
    applied = bc("run", "application", "--executor", "inline", "--model", ref, cwd=svc, ok=False)
    assert applied.returncode == 1 and "fix:" in applied.stderr and "Traceback" not in applied.stderr
    assert "names no alias" in applied.stderr or "is not a run id" in applied.stderr
