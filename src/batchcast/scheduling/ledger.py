"""The ledger: one row per (service, version, action, period), in SQLite beside the artifacts.

A period is written in its column ``logical_date`` as :func:`periods.key` writes it: ``2026-01-01`` for a
day, ``2026-01-01T13:00:00Z`` for a sub-daily period; text that sorts in time order within one action.

It is what makes a date run at most once unless asked again, and what
`batchcast runs` shows for dates that have no committed run yet. The
scheduler, backfills, `pause` and `runs` may share the file, so every call
opens its own short transaction.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batchcast.scheduling import periods
from batchcast.scheduling.periods import Period

STATES = ("queued", "waiting", "running", "retrying", "succeeded", "failed", "timed out", "cancelled", "skipped")
FINAL = ("succeeded", "failed", "timed out", "cancelled", "skipped")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    service TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, logical_date TEXT NOT NULL,
    state TEXT NOT NULL, run_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
    updated_at TEXT NOT NULL, next_at TEXT, waiting_since TEXT,
    PRIMARY KEY (service, version, action, logical_date)
);
CREATE TABLE IF NOT EXISTS paused (
    service TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, since TEXT NOT NULL,
    PRIMARY KEY (service, version, action)
);
CREATE TABLE IF NOT EXISTS health (
    service TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, failing INTEGER NOT NULL,
    PRIMARY KEY (service, version, action)
);
CREATE TABLE IF NOT EXISTS done_by (
    at TEXT NOT NULL, service TEXT NOT NULL, version TEXT NOT NULL, who TEXT NOT NULL, what TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stale (
    service TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, logical_date TEXT NOT NULL,
    alerted_at TEXT NOT NULL, PRIMARY KEY (service, version, action, logical_date)
);
"""
# Columns added after the first release of the ledger, for files written by it.
LATER_COLUMNS = {"next_at": "TEXT", "waiting_since": "TEXT"}


@dataclass(frozen=True)
class Entry:
    """One ledger row, typed: the text in the file is parsed here, once, and nowhere else."""

    service: str
    version: str
    action: str
    logical_date: Period
    state: str
    run_id: str | None
    attempts: int
    error: str | None
    updated_at: dt.datetime
    next_at: dt.datetime | None  # when a retrying date may start again, or a waiting one look for its data
    waiting_since: dt.datetime | None  # when a date began to wait for a trained model, or for its data

    @property
    def waiting_for(self) -> str:
        """What a ``waiting`` date waits for, as its error says: ``data`` or ``training``."""
        return waiting_for(self.error)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Entry:
        return cls(row["service"], row["version"], row["action"], periods.from_key(row["logical_date"]),
                   row["state"], row["run_id"], row["attempts"], row["error"],
                   dt.datetime.fromisoformat(row["updated_at"]), _parse(row["next_at"]), _parse(row["waiting_since"]))


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as con:
            con.executescript(SCHEMA)
            have = {row["name"] for row in con.execute("PRAGMA table_info(runs)")}
            for column, kind in LATER_COLUMNS.items():
                if column not in have:
                    con.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def queue(self, service: str, version: str, action: str, days: list[Period]) -> None:
        """Mark ``days`` queued, whatever they were: asking again is asking again."""
        now = _now()
        with self._connect() as con:
            con.executemany(
                "INSERT INTO runs (service, version, action, logical_date, state, updated_at) "
                "VALUES (?, ?, ?, ?, 'queued', ?) ON CONFLICT DO UPDATE SET state = 'queued', error = NULL, "
                "attempts = 0, next_at = NULL, waiting_since = NULL, updated_at = excluded.updated_at",
                [(service, version, action, periods.key(d), now) for d in days])

    def add(self, service: str, version: str, action: str, days: list[Period], state: str) -> None:
        """Record ``days`` in ``state`` unless the ledger already knows them (new ticks of a schedule)."""
        now = _now()
        with self._connect() as con:
            con.executemany(
                "INSERT INTO runs (service, version, action, logical_date, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(service, version, action, periods.key(d), state, now) for d in days])

    def set(self, service: str, version: str, action: str, day: Period, state: str, *,
            run_id: str | None = None, error: str | None = None, attempt: bool = False,
            next_at: dt.datetime | None = None, waiting_since: dt.datetime | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        with self._connect() as con:
            con.execute(
                "UPDATE runs SET state = ?, run_id = coalesce(?, run_id), error = ?, updated_at = ?, "
                "attempts = attempts + ?, next_at = ?, waiting_since = ? "
                "WHERE service = ? AND version = ? AND action = ? AND logical_date = ?",
                (state, run_id, error, _now(), int(attempt), _iso(next_at), _iso(waiting_since),
                 service, version, action, periods.key(day)))

    def rows(self, service: str, version: str, action: str | None = None,
             states: tuple[str, ...] | None = None) -> list[dict]:
        """The rows as the file holds them (dates and times as ISO text), oldest date first."""
        return [dict(r) for r in self._select(service, version, action, states)]

    def entries(self, service: str, version: str, action: str | None = None,
                states: tuple[str, ...] | None = None) -> list[Entry]:
        """The rows typed (dates as ``dt.date``, times as aware datetimes), oldest date first."""
        return [Entry.from_row(r) for r in self._select(service, version, action, states)]

    def entry(self, service: str, version: str, action: str, day: Period) -> Entry | None:
        """The row of one date, if the ledger holds it."""
        with self._connect() as con:
            found = con.execute(
                "SELECT * FROM runs WHERE service = ? AND version = ? AND action = ? AND logical_date = ?",
                (service, version, action, periods.key(day))).fetchone()
        return Entry.from_row(found) if found else None

    def oldest(self, service: str, version: str, action: str, states: tuple[str, ...],
               page: int = 16) -> Iterator[Entry]:
        """``action``'s rows in ``states``, oldest date first, read ``page`` rows at a time as they are asked for.

        What the scheduler's pass reads: it stops at the first dates of an action that cannot start, so a
        backlog of thousands costs it a page. No connection stays open between pages.
        """
        after = ""
        while True:
            found = self._query(
                "SELECT * FROM runs WHERE service = ? AND version = ? AND action = ? AND logical_date > ? "
                f"AND state IN ({_marks(states)}) ORDER BY logical_date LIMIT ?",
                (service, version, action, after, *states, page))
            yield from map(Entry.from_row, found)
            if len(found) < page:
                return
            after = found[-1]["logical_date"]

    def actions_in(self, service: str, version: str, states: tuple[str, ...]) -> set[str]:
        """The actions that have a row in one of ``states``."""
        found = self._query(f"SELECT DISTINCT action FROM runs WHERE service = ? AND version = ? "
                            f"AND state IN ({_marks(states)})", (service, version, *states))
        return {r["action"] for r in found}

    def _select(self, service: str, version: str, action: str | None,
                states: tuple[str, ...] | None) -> list[sqlite3.Row]:
        states_sql = "" if states is None else f"AND state IN ({_marks(states)}) "
        return self._query(
            f"SELECT * FROM runs WHERE service = ? AND version = ? AND (? IS NULL OR action = ?) {states_sql}"
            "ORDER BY logical_date, action", (service, version, action, action, *(states or ())))

    def _query(self, sql: str, params: tuple) -> list[sqlite3.Row]:
        """The rows of one read, on a connection closed before they are returned."""
        con = self._connect()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def newest(self, service: str, version: str, action: str) -> Period | None:
        """The newest period recorded for ``action``, whatever its state."""
        with self._connect() as con:
            found = con.execute("SELECT max(logical_date) FROM runs WHERE service = ? AND version = ? AND action = ?",
                                (service, version, action)).fetchone()[0]
        return periods.from_key(found) if found else None

    # -- who did what (the dashboard's actions) ---------------------------

    def record(self, service: str, version: str, who: str, what: str) -> None:
        with self._connect() as con:
            con.execute("INSERT INTO done_by VALUES (?, ?, ?, ?, ?)", (_now(), service, version, who, what))

    def done(self, service: str, version: str, limit: int = 50) -> list[dict]:
        """The newest ``limit`` actions recorded for the service: at, who, what."""
        return [dict(r) for r in self._query("SELECT at, who, what FROM done_by WHERE service = ? AND version = ? "
                                             "ORDER BY at DESC LIMIT ?", (service, version, limit))]

    # -- pause and resume -------------------------------------------------

    def pause(self, service: str, version: str, action: str) -> None:
        with self._connect() as con:
            con.execute("INSERT INTO paused VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (service, version, action, _now()))

    def resume(self, service: str, version: str, action: str) -> None:
        with self._connect() as con:
            con.execute("DELETE FROM paused WHERE service = ? AND version = ? AND action = ?",
                        (service, version, action))

    def paused(self, service: str, version: str) -> set[str]:
        with self._connect() as con:
            found = con.execute("SELECT action FROM paused WHERE service = ? AND version = ?",
                                (service, version)).fetchall()
        return {r["action"] for r in found}

    # -- health, for recovery alerts --------------------------------------

    def mark_health(self, service: str, version: str, action: str, failing: bool) -> bool:
        """Record whether ``action`` is failing; True if that changed."""
        with self._connect() as con:
            before = con.execute("SELECT failing FROM health WHERE service = ? AND version = ? AND action = ?",
                                 (service, version, action)).fetchone()
            con.execute("INSERT INTO health VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET failing = excluded.failing",
                        (service, version, action, int(failing)))
        return bool(before["failing"] if before else False) != failing


    def first_stale(self, service: str, version: str, action: str, day: Period) -> bool:
        """Record that ``day`` of ``action`` was found stale; True only the first time (its one alert)."""
        with self._connect() as con:
            found = con.execute("INSERT INTO stale VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                (service, version, action, periods.key(day), _now()))
        return found.rowcount == 1


def waiting_for(error: str | None) -> str:
    """``data`` when a waiting date's error is the scheduler's "waiting for data: ...", else ``training``
    (the only wait a ledger written before ``wait_for`` holds)."""
    return "data" if (error or "").startswith("waiting for data") else "training"


def _marks(values: tuple[str, ...]) -> str:
    """SQL placeholders for ``values``: ``?, ?, ?`` (an empty tuple matches nothing)."""
    return ", ".join("?" * len(values)) or "NULL"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
