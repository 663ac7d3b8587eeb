"""What each dashboard page shows, from the library calls the CLI makes (``history``, ``models``, ``show``...).

Pure functions of services and a time: no HTML here (the templates), no HTTP
(``dashboard``). A status is shown as people read it: a success with a
warning is ``succeeded, 1 warning`` and amber, never plain green.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from batchcast.actions.tracking import flat
from batchcast.errors import BatchcastError
from batchcast.runs.heartbeats import heartbeats
from batchcast.runs.manifest import with_warnings
from batchcast.runs.promotion import CHAMPION
from batchcast.scheduling import freshness, periods
from batchcast.scheduling.listing import collapsed

PAGE = 30  # periods on a grid page
RUNS_SHOWN = 200
ATTENTION = ("failed", "timed out", "cancelled")
BUSY = ("queued", "running", "retrying", "waiting")


def css(status: str | None) -> str:
    """A status as a CSS class: ``timed out`` is ``timed-out``; a wait is ``waiting``."""
    return (status or "none").split(" for ")[0].replace(" ", "-")


def shown(row: dict) -> str:
    return with_warnings(row["status"], row.get("warnings"))


def _order(row: dict) -> tuple:
    return periods.order(periods.from_key(row["logical_date"])), row.get("started_at") or "~"


def newest_by_action(history: list[dict]) -> dict[str, dict]:
    """Each action's newest run that is not a skipped period: what the overview judges it by."""
    found: dict[str, dict] = {}
    for row in sorted(history, key=_order):
        if row["status"] != "skipped":
            found[row["action"]] = row
    return found


def overview_row(service, now: dt.datetime) -> dict[str, Any]:
    """One service at a glance: each action's newest run and freshness, the champion, what serves, one colour."""
    history = service.history()
    newest = newest_by_action(history)
    actions = []
    for name, action in service.spec.actions.items():
        row = newest.get(name)
        actions.append({"name": name, "row": row, "css": css(row and row["status"]) + (
            " warned" if row and row.get("warnings") else ""), "shown": shown(row) if row else "never run",
            "freshness": _freshness(name, action, [r for r in history if r["action"] == name and
                                                   r.get("source") != "ledger"], now)})
    champion = _champion(service)
    serving = heartbeats(service.store, service.name, service.version, now)
    upcoming = sorted(service.schedule(1, now), key=lambda u: u["at"])
    return {"name": service.name, "version": service.version, "key": f"{service.name}/{service.version}",
            "actions": actions, "champion": champion, "serving": serving, "next": upcoming[0] if upcoming else None,
            "colour": _colour(actions, serving)}


def _freshness(name: str, action, rows: list[dict], now: dt.datetime) -> dict[str, Any]:
    """Against ``fresh_within`` when the action declares it; otherwise the age of its last success."""
    if action.fresh_within and action.schedule:
        judged = freshness.judge(name, action, rows, now)
        return {"stale": not judged.fresh, "text": judged.describe(now).split(": ", 1)[-1] if not judged.fresh
                else f"fresh (within {action.fresh_within})"}
    successes = [r for r in rows if r["status"] == "succeeded"]
    if not successes:
        return {"stale": False, "text": "no success yet"}
    age = now - dt.datetime.fromisoformat(successes[-1]["ended_at"])
    return {"stale": False, "text": f"last success {_age(age)} ago"}


def _age(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} days"


def _champion(service) -> dict[str, Any] | None:
    run_id = service.store.alias(service.name, service.version, CHAMPION)
    if run_id is None:
        return None
    try:
        manifest = service.store.manifest(run_id)
    except BatchcastError as exc:
        return {"run_id": run_id, "metric": None, "value": None, "problem": exc.message}
    gate = next((a.promote for a in service.spec.actions.values() if a.promote), None)
    metric = gate.metric if gate and gate.metric in manifest.metrics else next(iter(manifest.metrics), None)
    return {"run_id": run_id, "metric": metric, "value": manifest.metrics.get(metric) if metric else None,
            "problem": None}


def _colour(actions: list[dict], serving: list[dict]) -> str:
    """red: someone must look; amber: a warning or work in flight; green: all well; grey: nothing ran yet."""
    states = [a["row"]["status"] for a in actions if a["row"]]
    if any(s in ATTENTION for s in states) or any(a["freshness"]["stale"] for a in actions) \
            or any(beat["silent"] for beat in serving):
        return "red"
    if any(a["row"] and a["row"].get("warnings") for a in actions) or any(css(s) in BUSY for s in states):
        return "amber"
    return "green" if states else "grey"


def grid(service, page: int = 1, state: str | None = None) -> dict[str, Any]:
    """Periods (newest first) by actions, a cell per period's newest run, ``PAGE`` periods a page."""
    cells: dict[str, dict[str, dict]] = {}
    for row in sorted(service.history(), key=_order):
        cells.setdefault(row["logical_date"], {})[row["action"]] = row
    rows = sorted(cells.items(), key=lambda item: periods.order(periods.from_key(item[0])), reverse=True)
    states = sorted({css(r["status"]) for _, found in rows for r in found.values()})
    if state:
        rows = [(p, found) for p, found in rows if any(css(r["status"]) == state for r in found.values())]
    pages = max(1, math.ceil(len(rows) / PAGE))
    page = min(max(page, 1), pages)
    return {"actions": list(service.spec.actions), "rows": rows[(page - 1) * PAGE:page * PAGE], "page": page,
            "pages": pages, "state": state, "states": states, "periods": len(rows)}


def service_page(service) -> dict[str, Any]:
    """A service's schedules, runs (skipped periods folded), champion history and the dashboard's past actions."""
    history = sorted(service.history(), key=_order, reverse=True)
    return {"name": service.name, "version": service.version, "key": f"{service.name}/{service.version}",
            "spec": str(service.spec.file),
            "actions": [{"name": n, "kind": a.kind, "schedule": a.schedule or "", "timezone": a.timezone,
                         "catchup": a.catchup, "executor": a.executor, "fresh_within": a.fresh_within}
                        for n, a in service.spec.actions.items()],
            "upcoming": service.schedule(3),
            "paused": service.ledger.paused(service.name, service.version) if service.ledger_path.exists() else set(),
            "runs": collapsed(history, service.spec.actions)[:RUNS_SHOWN],
            "champions": list(reversed(service.store.alias_history(service.name, service.version, CHAMPION))),
            "done": service.ledger.done(service.name, service.version) if service.ledger_path.exists() else []}


def models_page(service, first: str | None = None, second: str | None = None) -> dict[str, Any]:
    """Every successful training with its metrics, the aliases' history, and two runs side by side."""
    models = service.models()
    names = sorted({name for m in models for name in m["metrics"]})
    chosen = [ref for ref in (first, second) if ref] or [m["run_id"] for m in models[:2]]
    compared = [_compared(service, ref) for ref in chosen[:2]]
    return {"key": f"{service.name}/{service.version}", "models": models, "metrics": names,
            "aliases": service.alias_history(), "compared": compared,
            "decisions": [{"run_id": m.run_id, **m.promotion} for m in reversed(service.runs("training"))
                          if m.promotion][:RUNS_SHOWN],
            "params": sorted({k for c in compared for k in c["params"]}),
            "features": sorted({k for c in compared for k in c["profile"]})}


def _compared(service, ref: str) -> dict[str, Any]:
    import json

    manifest = service.show(ref)
    try:
        profile = json.loads(service.store.read_verified(manifest, "output/profile.json"))["features"]
    except (BatchcastError, ValueError, KeyError):
        profile = {}  # a command-contract model, or a run from before profiles
    return {"run_id": manifest.run_id, "metrics": manifest.metrics,
            "params": flat(manifest.inputs.get("params") or {}), "profile": profile, "rows": manifest.rows,
            "logical_date": periods.key(manifest.logical_date), "promotion": manifest.promotion}
