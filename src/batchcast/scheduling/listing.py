"""Run listings a person can read: filtered by action, state and date, and runs of skipped dates as one row.

A scheduler started after a long stop records every missed date its catchup
policy skips; listed one per line they bury the runs that happened (331
lines after a 3-day backfill and a restart). :func:`collapsed` folds each run
of consecutive skipped dates of one action into one row that says how many,
which dates, and why. The CLI's table and the dashboard use it; ``--json``
keeps one row per date, for programs.
"""

from __future__ import annotations

from collections.abc import Iterable

from batchcast.scheduling.ledger import waiting_for

SKIPPED = "skipped"


def merged(rows: list[dict], ledger: list[dict], ended: tuple[str, ...]) -> list[dict]:
    """Committed runs' summaries ``rows``, plus the ``ledger``'s rows that are not (or not yet again) a committed run.

    A queued, running, retrying or skipped period shows with that state, a waiting one with what it waits for;
    one the ledger says ``ended`` shows through its manifest.
    """
    committed = {(r["action"], r["logical_date"]) for r in rows}
    run_ids = {r["run_id"] for r in rows}
    rows = list(rows)
    for entry in ledger:
        key = (entry["action"], entry["logical_date"])
        if entry["run_id"] in run_ids and entry["state"] in ("running", *ended):
            continue  # its manifest is committed, and says more (a scheduler may not have recorded it yet)
        if key not in committed or entry["state"] not in ended:
            status = f"waiting for {waiting_for(entry['error'])}" if entry["state"] == "waiting" else entry["state"]
            rows.append({"run_id": entry["run_id"], "action": entry["action"], "status": status,
                         "logical_date": entry["logical_date"], "started_at": None, "ended_at": None,
                         "duration_s": None, "rows": {}, "model_run": None, "error": entry["error"],
                         "source": "ledger"})
    return rows


def select(rows: Iterable[dict], *, action: str | None = None, statuses: Iterable[str] = (),
           since: str | None = None) -> list[dict]:
    """The rows of ``action`` in one of ``statuses`` whose logical date is ``since`` (ISO) or later.

    ``waiting`` keeps both waits, ``waiting for training`` and ``waiting for data``.
    """
    wanted = set(statuses)
    return [r for r in rows if (action is None or r["action"] == action)
            and (not wanted or r["status"] in wanted or r["status"].split(" for ")[0] in wanted)
            and (since is None or r["logical_date"] >= since)]


def collapsed(rows: list[dict], actions: dict) -> list[dict]:
    """``rows`` in their order, each run of two or more consecutive skipped dates of one action as one row.

    The row keeps the listing's keys (``run_id`` None, ``logical_date`` "FIRST..LAST") and adds ``count``
    and ``summary`` ("320 application dates skipped by catchup=latest, 2026-01-07..2026-11-22"); ``actions``
    is the spec's, for each one's catchup policy.
    """
    catchup = {name: action.catchup for name, action in actions.items()}
    out: list[dict] = []
    group: list[dict] = []
    for row in [*rows, None]:
        if row is not None and row["status"] == SKIPPED and (not group or group[0]["action"] == row["action"]):
            group.append(row)
            continue
        out.extend(group if len(group) < 2 else [_folded(group, catchup)])
        group = []
        if row is not None and row["status"] == SKIPPED:
            group = [row]
        elif row is not None:
            out.append(row)
    return out


def _folded(group: list[dict], catchup: dict[str, str]) -> dict:
    dates = sorted(r["logical_date"] for r in group)
    action = group[0]["action"]
    span = f"{dates[0]}..{dates[-1]}"
    return {**group[0], "run_id": None, "logical_date": span, "error": None, "count": len(group),
            "summary": f"{len(group)} {action} dates skipped by catchup={catchup.get(action, '?')}, {span}"}
