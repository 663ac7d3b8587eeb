"""Freshness through the CLI: a period with no success fresh_within its tick alerts once and fails `check --fresh`."""

from __future__ import annotations

import datetime as dt

from tests.conftest import bc


def _service(tmp_path, hook: str):
    """The example service, its training due 5 minutes ago every day and fresh within 1 minute; inline runs."""
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    tick = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    spec = svc / "batchcast.toml"
    text = spec.read_text().replace('"0 3 * * 1"', f'"{tick.minute} {tick.hour} * * *"\nfresh_within = "1m"')
    text = text.replace('schedule = "0 6 * * *"', "").replace('executor = "local"', 'executor = "inline"')
    spec.write_text(text + f'\n[alerts]\nwebhook = "{hook}"\n')
    return svc, tick.date()


def test_a_period_the_scheduler_was_down_for_alerts_once_and_check_fresh_fails_until_it_succeeds(tmp_path, webhook):
    url, received = webhook
    svc, period = _service(tmp_path, url)
    stale = bc("check", "training", "--fresh", cwd=svc, ok=False)
    assert stale.returncode == 1
    assert f"training is stale: {period}" in stale.stdout and "last success: never" in stale.stdout

    bc("pause", "training", cwd=svc)  # the period stays without a run: the scheduler only watches
    for _ in range(2):  # a restart: the period is judged again, and not alerted again
        bc("scheduler", "--interval", "0.2", "--exit-when-idle", cwd=svc)
    [alert] = [a for a in received if "no success on time" in a["text"]]
    assert f"training {period}" in alert["text"] and "has no successful run" in alert["text"]

    bc("resume", "training", cwd=svc)
    bc("scheduler", "--interval", "0.2", "--exit-when-idle", cwd=svc)  # runs the period, then is idle
    fresh = bc("check", "training", "--fresh", cwd=svc)
    assert f"training is fresh: {period} succeeded" in fresh.stdout
    assert len([a for a in received if "no success on time" in a["text"]]) == 1


def test_check_fresh_names_a_missing_fresh_within_and_a_bad_duration(tmp_path):
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    missing = bc("check", "application", "--fresh", cwd=svc, ok=False)
    assert "[actions.application] has no fresh_within" in missing.stderr and "fix:" in missing.stderr
    spec = svc / "batchcast.toml"
    daily = 'schedule = "0 6 * * *"'
    spec.write_text(spec.read_text().replace(daily, f'{daily}\nfresh_within = "2 hours"'))
    bad = bc("validate", cwd=svc, ok=False)
    assert "[actions.application] fresh_within: '2 hours' is not a duration" in bad.stderr
    assert "give --date YYYY-MM-DD, or --fresh" in bc("check", "training", cwd=svc, ok=False).stderr
