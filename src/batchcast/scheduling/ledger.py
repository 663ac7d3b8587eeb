"""The ledger: one row per (service, version, action, logical date), in SQLite beside the artifacts.

It is what makes a date run at most once unless asked again, and what
`batchcast runs` shows for dates that have no committed run yet.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

STATES = ("queued", "waiting", "running", "retrying", "succeeded", "failed", "timed out", "skipped")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    service TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, logical_date TEXT NOT NULL,
    state TEXT NOT NULL, run_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, version, action, logical_date)
)
"""


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as con:
            con.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        # A fresh connection per call: the scheduler, backfills and `runs` may share the file.
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def queue(self, service: str, version: str, action: str, days: list[dt.date]) -> None:
        """Mark ``days`` queued, whatever they were: asking again is asking again."""
        now = _now()
        with self._connect() as con:
            con.executemany(
                "INSERT INTO runs (service, version, action, logical_date, state, updated_at) "
                "VALUES (?, ?, ?, ?, 'queued', ?) ON CONFLICT DO UPDATE SET state = 'queued', error = NULL, "
                "updated_at = excluded.updated_at",
                [(service, version, action, d.isoformat(), now) for d in days])

    def set(self, service: str, version: str, action: str, day: dt.date, state: str, *,
            run_id: str | None = None, error: str | None = None, attempt: bool = False) -> None:
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        with self._connect() as con:
            con.execute(
                "UPDATE runs SET state = ?, run_id = coalesce(?, run_id), error = ?, updated_at = ?, "
                "attempts = attempts + ? WHERE service = ? AND version = ? AND action = ? AND logical_date = ?",
                (state, run_id, error, _now(), int(attempt), service, version, action, day.isoformat()))

    def rows(self, service: str, version: str, action: str | None = None) -> list[dict]:
        with self._connect() as con:
            found = con.execute(
                "SELECT * FROM runs WHERE service = ? AND version = ? AND (? IS NULL OR action = ?) "
                "ORDER BY logical_date, action", (service, version, action, action)).fetchall()
        return [dict(r) for r in found]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
