"""The ledger's typed entries and its text rows, on a real SQLite file."""

from __future__ import annotations

import datetime as dt

from batchcast.scheduling.ledger import Entry, Ledger

KEY = ("scores", "2")
D1, D2 = dt.date(2026, 3, 8), dt.date(2026, 3, 9)


def test_entries_are_typed_and_rows_stay_text(tmp_path):
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.add(*KEY, "application", [D2, D1], "queued")
    retry_at = dt.datetime(2026, 3, 9, 6, 30, tzinfo=dt.UTC)
    ledger.set(*KEY, "application", D2, "retrying", run_id="scores/2/application/20260309T060000", error="locked",
               attempt=True, next_at=retry_at)

    first, second = ledger.entries(*KEY)
    assert (first.logical_date, first.state, first.next_at) == (D1, "queued", None)
    assert (second.logical_date, second.state, second.attempts, second.next_at) == (D2, "retrying", 1, retry_at)
    assert second.updated_at.tzinfo is not None and second.waiting_since is None
    assert ledger.entries(*KEY, states=("retrying",)) == [second]
    assert ledger.entry(*KEY, "application", D2) == second and ledger.entry(*KEY, "training", D2) is None

    row = ledger.rows(*KEY, "application")[1]
    assert (row["logical_date"], row["next_at"]) == ("2026-03-09", retry_at.isoformat())
    assert isinstance(second, Entry)


def test_oldest_reads_one_actions_dates_in_some_states_page_by_page(tmp_path):
    ledger = Ledger(tmp_path / "ledger.db")
    days = [D1 + dt.timedelta(days=k) for k in range(40)]
    ledger.add(*KEY, "application", days, "queued")
    ledger.add(*KEY, "training", days, "queued")
    for day in days[::3]:
        ledger.set(*KEY, "application", day, "succeeded")
    ledger.set(*KEY, "application", days[4], "retrying")
    wanted = [d for i, d in enumerate(days) if i % 3]
    assert [e.logical_date for e in ledger.oldest(*KEY, "application", ("queued", "retrying"), page=7)] == wanted
    assert [e.state for e in ledger.oldest(*KEY, "application", ("retrying",))] == ["retrying"]
    assert list(ledger.oldest(*KEY, "application", ("waiting",))) == []
    assert [e.logical_date for e in ledger.entries(*KEY, "application", states=("succeeded",))] == days[::3]
    assert ledger.actions_in(*KEY, ("retrying",)) == {"application"}
    assert ledger.actions_in(*KEY, ("queued",)) == {"application", "training"}
    assert ledger.actions_in(*KEY, ("skipped",)) == set()
