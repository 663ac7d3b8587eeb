"""The scheduler's rules as plain data in and out: no processes, no ledger, no clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchcast.scheduling import rules
from batchcast.scheduling.rules import Decision, Ready, Running

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
D1, D2, D3 = dt.date(2026, 3, 8), dt.date(2026, 3, 9), dt.date(2026, 3, 10)
DUCKDB = Path("/srv/scores/warehouse.duckdb")
NO_MODEL = "no successful training run of scores/2"


def ticks(*days: dt.date) -> list[tuple[dt.date, dt.datetime]]:
    return [(d, dt.datetime.combine(d, dt.time(6), dt.UTC)) for d in days]


def started(decisions: list[Decision]) -> list[tuple[int, str, dt.date]]:
    return [(d.ready.service, d.ready.action, d.ready.day) for d in decisions if d.verb == "start"]


# -- what is due ----------------------------------------------------------------

def test_first_date_is_the_start_date_then_the_day_after_the_newest_recorded():
    assert rules.first_date(D1, None, D3) == D1
    assert rules.first_date(None, None, D3) == D3
    assert rules.first_date(D1, D1, D3) == D2
    assert rules.first_date(None, D2, D3) == D3
    assert rules.first_date(D3, D1, D3) == D3  # a later start_date wins over the ledger


def test_catchup_all_queues_every_missed_date():
    assert rules.catchup("all", ticks(D1, D2, D3), NOW) == ([D1, D2, D3], [])


def test_catchup_latest_queues_the_newest_and_skips_the_rest():
    assert rules.catchup("latest", ticks(D1, D2, D3), NOW) == ([D3], [D1, D2])
    assert rules.catchup("latest", ticks(D3), NOW) == ([D3], [])


def test_catchup_none_queues_only_ticks_since_the_scheduler_started():
    watching_since = dt.datetime.combine(D2, dt.time(6), dt.UTC)  # exactly D2's tick: it counts
    assert rules.catchup("none", ticks(D1, D2, D3), watching_since) == ([D2, D3], [D1])
    assert rules.catchup("none", ticks(D1, D2), NOW) == ([], [D1, D2])


# -- what starts next -------------------------------------------------------------

def test_a_retry_waits_out_its_backoff():
    later, earlier = NOW + dt.timedelta(seconds=1), NOW - dt.timedelta(seconds=1)
    assert not rules.startable("retrying", later, NOW)
    assert rules.startable("retrying", earlier, NOW) and rules.startable("retrying", NOW, NOW)
    assert rules.startable("retrying", None, NOW)
    assert rules.startable("queued", later, NOW) and rules.startable("waiting", None, NOW)  # for training: no poll


def test_order_is_oldest_date_then_training_evaluation_application_then_service():
    rows = [Ready(0, "application", D2, "application"), Ready(1, "training", D2, "training"),
            Ready(0, "training", D2, "training"), Ready(0, "evaluation", D2, "evaluation"),
            Ready(0, "application", D1, "application"), Ready(0, "custom", D2, "custom")]
    assert [(r.day, r.action, r.service) for r in rules.order(rows)] == [
        (D1, "application", 0), (D2, "training", 0), (D2, "training", 1), (D2, "evaluation", 0),
        (D2, "application", 0), (D2, "custom", 0)]


def test_blocked_by_max_active_runs_of_the_same_action_of_the_same_service():
    row = Ready(0, "application", D2, "application", max_active_runs=2)
    assert not rules.blocked(row, [Running(0, "application")])
    assert rules.blocked(row, [Running(0, "application"), Running(0, "application")])
    assert not rules.blocked(row, [Running(1, "application"), Running(0, "training"), Running(1, "application")])


def test_blocked_while_any_run_writes_the_same_duckdb_file():
    row = Ready(0, "application", D2, "application", max_active_runs=5, slot=DUCKDB)
    assert rules.blocked(row, [Running(1, "training", DUCKDB)])
    assert not rules.blocked(row, [Running(1, "training", Path("/srv/other/warehouse.duckdb")), Running(2, "x")])
    assert not rules.blocked(Ready(0, "application", D2, "application", max_active_runs=5), [Running(1, "training")])


def test_dispatch_starts_oldest_first_within_parallelism():
    rows = [Ready(0, "application", d, "application", max_active_runs=5) for d in (D3, D1, D2)]
    assert started(rules.dispatch(rows, [], 2, {}, NOW)) == [(0, "application", D1), (0, "application", D2)]
    assert started(rules.dispatch(rows, [Running(1, "training")], 2, {}, NOW)) == [(0, "application", D1)]
    assert rules.dispatch(rows, [Running(1, "a"), Running(1, "b")], 2, {}, NOW) == []


def test_dispatch_counts_what_it_starts_against_max_active_runs():
    rows = [Ready(0, "application", d, "application") for d in (D1, D2)] + [Ready(0, "training", D3, "training")]
    assert started(rules.dispatch(rows, [], 4, {}, NOW)) == [(0, "application", D1), (0, "training", D3)]
    assert started(rules.dispatch(rows, [Running(0, "application")], 4, {}, NOW)) == [(0, "training", D3)]


def test_dispatch_gives_a_duckdb_file_one_run_at_a_time():
    rows = [Ready(0, "training", D1, "training", slot=DUCKDB), Ready(1, "training", D1, "training", slot=DUCKDB),
            Ready(2, "training", D1, "training")]
    assert started(rules.dispatch(rows, [], 4, {}, NOW)) == [(0, "training", D1), (2, "training", D1)]
    assert started(rules.dispatch(rows, [Running(1, "application", DUCKDB)], 4, {}, NOW)) == [(2, "training", D1)]


def test_an_application_with_a_model_starts():
    row = Ready(0, "application", D3, "application", needs_model=True, model="champion")
    assert started(rules.dispatch([row], [], 2, {(0, "champion"): None}, NOW)) == [(0, "application", D3)]


def test_an_application_without_a_model_waits_and_frees_its_place():
    rows = [Ready(0, "application", D1, "application", needs_model=True, wait_limit=60),
            Ready(1, "training", D2, "training")]
    decisions = rules.dispatch(rows, [], 1, {(0, None): NO_MODEL}, NOW)
    assert decisions == [Decision("wait", rows[0], NO_MODEL, NOW), Decision("start", rows[1])]


def test_a_date_already_waiting_within_its_limit_is_left_as_it_is():
    since = NOW - dt.timedelta(seconds=60)
    row = Ready(0, "application", D1, "application", "waiting", needs_model=True, waiting_since=since, wait_limit=60)
    assert rules.dispatch([row], [], 1, {(0, None): NO_MODEL}, NOW) == []


def test_waiting_past_its_limit_fails():
    since = NOW - dt.timedelta(seconds=61)
    row = Ready(0, "application", D1, "application", "waiting", needs_model=True, waiting_since=since, wait_limit=60)
    assert rules.dispatch([row], [], 1, {(0, None): NO_MODEL}, NOW) == [Decision("fail", row, NO_MODEL, since)]
    assert rules.keep_waiting(since, 61, NOW) and not rules.keep_waiting(since, 60.5, NOW)


def test_a_wait_limit_of_zero_waits_one_pass_then_fails():
    row = Ready(0, "application", D1, "application", needs_model=True, wait_limit=0)
    assert rules.dispatch([row], [], 1, {(0, None): NO_MODEL}, NOW) == [Decision("wait", row, NO_MODEL, NOW)]
    waited = Ready(0, "application", D1, "application", "waiting", needs_model=True, waiting_since=NOW, wait_limit=0)
    later = NOW + dt.timedelta(seconds=0.3)
    assert rules.dispatch([waited], [], 1, {(0, None): NO_MODEL}, later) == [Decision("fail", waited, NO_MODEL, NOW)]


def test_models_are_looked_up_only_for_the_dates_the_pass_reaches():
    rows = [Ready(0, "training", D1, "training"), Ready(0, "application", D2, "application", needs_model=True),
            Ready(1, "application", D2, "application", needs_model=True, slot=DUCKDB)]
    asked = {}  # a plain dict: reading a key it lacks would raise KeyError
    assert started(rules.dispatch(rows, [], 1, asked, NOW)) == [(0, "training", D1)]
    assert started(rules.dispatch(rows[2:], [Running(2, "x", DUCKDB)], 2, asked, NOW)) == []



def _stream(read: list, service: int, action: str, days: list[dt.date], **options):
    for day in days:
        read.append((service, action, day))
        yield Ready(service, action, day, action, **options)


def test_a_stream_blocked_at_a_date_is_read_no_further():
    read, backlog = [], [D1 + dt.timedelta(days=k) for k in range(1000)]
    streams = [_stream(read, 0, "application", backlog), _stream(read, 0, "training", [D2]),
               _stream(read, 1, "application", backlog)]
    decisions = rules.dispatch_streams(streams, [Running(0, "application")], 3, {}, NOW)
    assert started(decisions) == [(1, "application", D1), (0, "training", D2)]
    assert sorted(read) == [(0, "application", D1), (0, "training", D2), (1, "application", D1),
                            (1, "application", D2)]


def test_streams_decide_as_the_flat_list_does():
    days = [D1, D2, D3]
    groups = [[Ready(0, "application", d, "application", needs_model=True, wait_limit=60) for d in days],
              [Ready(0, "training", d, "training", slot=DUCKDB) for d in days[1:]],
              [Ready(1, "application", d, "application", max_active_runs=2, slot=DUCKDB) for d in days],
              [Ready(1, "custom", d, "custom", max_active_runs=3) for d in days]]
    flat = [r for group in groups for r in group]
    for running in ([], [Running(1, "application", DUCKDB)], [Running(0, "custom")]):
        for parallelism in (1, 2, 4, 8):
            assert rules.dispatch_streams(groups, running, parallelism, {(0, None): NO_MODEL}, NOW) == \
                rules.dispatch(flat[::-1], running, parallelism, {(0, None): NO_MODEL}, NOW)

# -- after a failure -------------------------------------------------------------

def test_transient_failures_retry_with_doubling_delays_then_give_up():
    assert [rules.backoff("failed", True, attempts, 3, 0.5) for attempts in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, None]
    assert rules.backoff("failed", True, 1, 0, 60) is None


@pytest.mark.parametrize(("status", "transient"), [("failed", False), ("timed out", True), ("timed out", False)])
def test_terminal_errors_and_timeouts_are_final(status, transient):
    assert rules.backoff(status, transient, 1, 2, 60) is None


NO_DATA = "no file matches landing/2026-01-01.parquet"


def test_a_date_whose_data_is_absent_waits_and_looks_again_after_its_poll():
    row = Ready(0, "application", D1, "application", wait_data=True, poll=30, data_limit=60)
    absent = {(0, "application", D1): NO_DATA}
    later = NOW + dt.timedelta(seconds=30)
    assert rules.dispatch([row], [], 1, {}, NOW, absent) == [Decision("wait", row, NO_DATA, NOW, "data", later)]
    assert not rules.startable("waiting", later, NOW) and rules.startable("waiting", later, later)
    waiting = Ready(0, "application", D1, "application", "waiting", waiting_since=NOW, waiting_for="data",
                    wait_data=True, poll=30, data_limit=60)
    assert rules.dispatch([waiting], [], 1, {}, later, absent) == [
        Decision("wait", waiting, NO_DATA, NOW, "data", later + dt.timedelta(seconds=30))]
    too_late = NOW + dt.timedelta(seconds=61)
    assert rules.dispatch([waiting], [], 1, {}, too_late, absent) == [Decision("fail", waiting, NO_DATA, NOW, "data")]


def test_data_that_arrived_starts_the_date_and_then_the_model_is_asked_for():
    row = Ready(0, "application", D1, "application", "waiting", waiting_since=NOW - dt.timedelta(hours=5),
                waiting_for="data", wait_data=True, data_limit=60, needs_model=True, wait_limit=60)
    assert rules.dispatch([row], [], 1, {(0, None): None}, NOW, {(0, "application", D1): None}) == [
        Decision("start", row)]
    # The wait for training starts its own clock: the hours spent waiting for data do not count against it.
    assert rules.dispatch([row], [], 1, {(0, None): NO_MODEL}, NOW, {(0, "application", D1): None}) == [
        Decision("wait", row, NO_MODEL, NOW)]


def test_absent_data_is_looked_up_only_for_dates_that_wait_for_it():
    rows = [Ready(0, "training", D1, "training"), Ready(0, "application", D2, "application", wait_data=True)]
    asked = {(0, "application", D2): None}
    assert started(rules.dispatch(rows, [], 2, {}, NOW, asked)) == [(0, "training", D1), (0, "application", D2)]
