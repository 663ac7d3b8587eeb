"""Periods finer than a day (issue 28, part 1): an hourly service through the CLI, the scheduler and the table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchcast.errors import SpecError
from batchcast.scheduling import periods
from tests.conftest import bc, bc_json, query
from tests.scheduling.test_scheduler import TODAY, ledger, scheduled, scheduler

YESTERDAY = TODAY - dt.timedelta(days=1)
HOURLY = 'schedule = "0 * * * *"'


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def test_a_schedule_that_ticks_more_than_once_a_day_has_a_period_per_tick():
    assert [periods.subdaily(s) for s in ("0 6 * * *", "0 3 * * 1", "30 2 1 * *", None)] == [False] * 4
    assert all(periods.subdaily(s) for s in ("0 * * * *", "*/15 * * * *", "0 6,18 * * *", "* * * * *"))
    h13 = at(dt.date(2026, 1, 1), 13)
    assert periods.parse("2026-01-01T13:00", "0 * * * *") == h13
    assert periods.parse("2026-01-01T14:00+01:00", "0 * * * *") == h13
    assert periods.parse("2026-01-01T14:00", "0 * * * *", "Europe/Paris") == h13
    assert periods.key(h13) == "2026-01-01T13:00:00Z" and periods.from_key("2026-01-01T13:00:00Z") == h13
    assert periods.interval(h13, "*/15 * * * *") == (h13, h13 + dt.timedelta(minutes=15))
    paris = periods.interval(dt.date(2026, 7, 1), "0 6 * * *", "Europe/Paris")
    assert paris == (dt.datetime(2026, 6, 30, 22, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, 22, tzinfo=dt.UTC))
    assert periods.parse("2026-01-01", "0 6 * * *") == dt.date(2026, 1, 1)


@pytest.mark.parametrize("text, schedule, words", [
    ("2026-01-01", "0 * * * *", ["ticks more than once a day", "--date 2026-01-01T13:00"]),
    ("2026-01-01T13:05", "0 * * * *", ["is not a tick", "2026-01-01T13:00:00Z"]),
    ("2026-01-01T13:00", "0 6 * * *", ["is for a day, not a time", "--date 2026-01-01"]),
    ("13:00", "0 * * * *", ["ticks more than once a day"]),
])
def test_a_period_that_does_not_fit_the_schedule_is_refused_with_the_fix(text, schedule, words):
    with pytest.raises(SpecError) as refused:
        periods.parse(text, schedule)
    for word in words:
        assert word in str(refused.value)


def slices(root: Path) -> list[tuple[str, int]]:
    return query(root / ".batchcast" / "warehouse.duckdb", "SELECT strftime(_interval_start AT TIME ZONE 'UTC', "
                 "'%Y-%m-%dT%H:%M'), count(*) FROM scores GROUP BY 1 ORDER BY 1")


@pytest.mark.slow  # 24 scheduled runs, each its own process: about 75 s
def test_an_hourly_service_runs_24_periods_a_day_and_a_rerun_replaces_one_hour(tmp_path):
    # Ticks at half an hour from now: no tick falls due while the scheduler works through the queue, whatever the
    # clock (a run at 03:59 once saw 04:00 come due and, rightly, run it).
    minute = (dt.datetime.now(dt.UTC).minute + 30) % 60
    spec = scheduled(tmp_path, f'schedule = "{minute} * * * *"\ncatchup = "none"', rows=120)
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    queued = bc_json("--spec", str(spec), "backfill", "application", "--from", str(YESTERDAY), "--to", str(YESTERDAY),
                     cwd=tmp_path)
    assert queued["queued"] == 24
    scheduler(spec, "--parallelism", "1")  # runs the 24 queued; today's ticks came before it started: skipped
    hours = [f"{YESTERDAY}T{h:02d}:{minute:02d}" for h in range(24)]
    assert slices(tmp_path) == [(h, 120) for h in hours]
    done = [(p, s) for p, s, _ in ledger(spec, "application") if s == "succeeded"]
    assert done == [(periods.key(at(YESTERDAY, h, minute)), "succeeded") for h in range(24)]

    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    by_hour = ("SELECT strftime(_interval_start AT TIME ZONE 'UTC', '%H'), min(_run_id) FROM scores "
               "GROUP BY 1 ORDER BY 1")
    before = dict(query(db, by_hour))
    thirteen = f"{YESTERDAY}T13:{minute:02d}"
    rerun = bc_json("--spec", str(spec), "run", "application", "--date", thirteen, cwd=tmp_path)
    assert rerun["logical_date"] == periods.key(at(YESTERDAY, 13, minute))
    assert (rerun["interval_start"], rerun["interval_end"]) == (periods.key(at(YESTERDAY, 13, minute)),
                                                                periods.key(at(YESTERDAY, 14, minute)))
    after = dict(query(db, by_hour))
    assert after["13"] == rerun["run_id"] and {h: r for h, r in after.items() if h != "13"} == {
        h: r for h, r in before.items() if h != "13"}
    assert slices(tmp_path) == [(h, 120) for h in hours]  # 13:00 replaced, not added to
    checked = bc("--spec", str(spec), "check", "application", "--date", thirteen, cwd=tmp_path)
    assert checked.stdout.strip() == f"{rerun['run_id']} succeeded"
    refused = bc("--spec", str(spec), "run", "application", "--date", str(YESTERDAY), cwd=tmp_path, ok=False)
    assert "ticks more than once a day" in refused.stderr and slices(tmp_path) == [(h, 120) for h in hours]


def test_catchup_and_backfill_over_hours(tmp_path):
    spec = scheduled(tmp_path, f'{HOURLY}\nstart_date = {TODAY}', rows=60)
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    scheduler(spec)  # catchup = latest: the newest hour runs, the earlier ones of today are skipped
    states = ledger(spec, "application")
    newest = states[-1][0]
    assert newest in {periods.key(hour), periods.key(hour + dt.timedelta(hours=1))}  # the hour may turn meanwhile
    assert states[-1][1] == "succeeded" and {s for _, s, _ in states[:-1]} <= {"skipped"}
    assert len(states) == int(newest[11:13]) + 1  # every tick of today since midnight, once

    filled = bc_json("--spec", str(spec), "backfill", "application", "--from", f"{YESTERDAY}T10:00",
                     "--to", f"{YESTERDAY}T12:00", "--now", cwd=tmp_path)
    assert [r["logical_date"] for r in filled["ran"]] == [periods.key(at(YESTERDAY, h)) for h in (10, 11, 12)]
    assert [(h, n) for h, n in slices(tmp_path) if h.startswith(str(YESTERDAY))] == [
        (f"{YESTERDAY}T{h}:00", 60) for h in (10, 11, 12)]
    listed = bc("--spec", str(spec), "runs", "--status", "succeeded", cwd=tmp_path).stdout
    assert f"{YESTERDAY}T11:00:00Z" in listed


def test_templates_get_the_interval(tmp_path):
    spec = scheduled(tmp_path, HOURLY, rows=30)
    spec.write_text(spec.read_text().replace(
        'input = { query = "SELECT * EXCLUDE (churned) FROM features" }',
        "input = { query = \"SELECT * EXCLUDE (churned) FROM features WHERE TIMESTAMPTZ '{{ interval_start }}' "
        "+ INTERVAL 1 HOUR = TIMESTAMPTZ '{{ interval_end }}' AND '{{ ds }}' = '2026-01-01' AND '{{ ts }}' "
        "= '2026-01-01T13:00:00+00:00'\" }"))
    bc("--spec", str(spec), "run", "training", cwd=tmp_path)
    bc("--spec", str(spec), "run", "application", "--date", "2026-01-01T13:00Z", cwd=tmp_path)
    assert slices(tmp_path) == [("2026-01-01T13:00", 30)]


def test_a_daily_service_written_before_periods_keeps_working_and_its_table_moves_to_hourly(tmp_path):
    """Its store, ledger and table were written by batchcast at 0e39b00, before sub-daily periods: a training
    run, and applications for 2026-01-01 and 2026-01-02 (40 rows each), from the spec below."""
    import tarfile

    from tests.conftest import write_python_service

    with tarfile.open(Path(__file__).parents[1] / "fixtures" / "daily-service-0e39b00.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    spec = write_python_service(tmp_path, 40)
    daily = '[actions.application]\nschedule = "0 6 * * *"\n'
    spec.write_text(spec.read_text().replace("[actions.application]\n", daily))
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    by_day = "SELECT _logical_date::VARCHAR, count(*) FROM scores GROUP BY 1 ORDER BY 1"
    listed = bc_json("--spec", str(spec), "runs", cwd=tmp_path)
    assert [(r["action"], r["logical_date"], r["status"]) for r in listed] == [
        ("training", "2026-01-01", "succeeded"), ("application", "2026-01-01", "succeeded"),
        ("application", "2026-01-02", "succeeded")]
    bc("--spec", str(spec), "run", "application", "--date", "2026-01-03", cwd=tmp_path)  # the old model, verified
    bc("--spec", str(spec), "run", "application", "--date", "2026-01-01", cwd=tmp_path)  # replaces its day
    assert query(db, by_day) == [("2026-01-01", 40), ("2026-01-02", 40), ("2026-01-03", 40)]
    assert "_interval_start" not in {c for c, in query(db, "SELECT column_name FROM information_schema.columns "
                                                           "WHERE table_name = 'scores'")}
    bc("--spec", str(spec), "check", "application", "--date", "2026-01-02", cwd=tmp_path)

    spec.write_text(spec.read_text().replace('schedule = "0 6 * * *"', HOURLY))
    refused = bc("--spec", str(spec), "run", "application", "--date", "2026-01-04T05:00", cwd=tmp_path, ok=False)
    assert 'ALTER TABLE "scores" ADD COLUMN _interval_start TIMESTAMPTZ' in refused.stderr
    assert query(db, by_day) == [("2026-01-01", 40), ("2026-01-02", 40), ("2026-01-03", 40)]  # untouched
    import duckdb

    con = duckdb.connect(str(db))
    con.execute('ALTER TABLE "scores" ADD COLUMN _interval_start TIMESTAMPTZ')
    con.close()
    bc("--spec", str(spec), "run", "application", "--date", "2026-01-04T05:00", cwd=tmp_path)
    assert query(db, by_day) == [("2026-01-01", 40), ("2026-01-02", 40), ("2026-01-03", 40), ("2026-01-04", 40)]
    assert slices(tmp_path) == [("2026-01-04T05:00", 40), (None, 120)]  # the daily rows keep NULL


def test_an_hourly_action_is_fresh_when_its_newest_hour_past_fresh_within_succeeded():
    from batchcast.scheduling import freshness
    from batchcast.spec import ActionSpec

    action = ActionSpec(kind="application", schedule="0 * * * *", fresh_within="20m")
    now = at(dt.date(2026, 1, 1), 13).replace(minute=30)
    stale = freshness.judge("application", action, [], now)
    assert (stale.period, stale.due_at, stale.fresh) == (at(dt.date(2026, 1, 1), 13), at(dt.date(2026, 1, 1), 13),
                                                         False)
    assert "2026-01-01T13:00:00Z (due 2026-01-01 13:00 UTC, expected by 13:20 UTC)" in stale.describe(now)
    ran = [{"status": "succeeded", "logical_date": "2026-01-01T13:00:00Z", "run_id": "r"}]
    assert freshness.judge("application", action, ran, now).fresh
    assert freshness.judge("application", action, ran, now.replace(minute=10)).period == at(dt.date(2026, 1, 1), 12)
