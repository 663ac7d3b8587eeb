"""A service's plots: run duration and rows per period, metrics over time, drift per feature, the predictions.

Each reads the committed manifests only (``Service.runs``): what a run
recorded when it ran (its checks, its ``outputs.predicted``), never the
warehouse at view time.
"""

from __future__ import annotations

from markupsafe import Markup

from batchcast.scheduling import periods
from batchcast.ui.charts import band_chart, line_chart, share_chart


def plots(service) -> list[tuple[str, Markup]]:
    """(class, chart) for each plot the service has data for, in the order a person reads them."""
    runs = sorted(service.runs(), key=lambda m: (periods.order(m.logical_date), m.started_at))
    durations: dict[str, dict] = {}  # by action, then period: the newest run of a period stands for it
    rows: dict[str, dict] = {}
    for m in runs:
        durations.setdefault(m.action, {})[periods.key(m.logical_date)] = m.duration_s
        if m.succeeded and (count := m.rows.get("written", m.rows.get("read"))) is not None:
            rows.setdefault(m.action, {})[periods.key(m.logical_date)] = float(count)
    found = [("durations", line_chart("run duration by period (its newest run)", _points(durations), " s")),
             ("rows", line_chart("rows written (or read, for training) by period", _points(rows)))]
    trained = [m for m in runs if m.kind == "training" and m.succeeded]
    metrics: dict[str, list] = {}
    for m in sorted(trained, key=lambda m: m.ended_at):
        for name, value in m.metrics.items():
            # To the second: two trainings in one minute are two points, not one on top of the other.
            metrics.setdefault(name, []).append((m.ended_at.strftime("%Y-%m-%d %H:%M:%S"), value))
    found.append(("metrics", line_chart("training metrics, by when each training ended", metrics,
                                        x_title="trained at")))
    applied = [m for m in runs if m.kind == "application" and m.succeeded]
    if drift := _drift(applied):
        found.append(("drift", line_chart("input drift: PSI per feature by period", drift,
                                          threshold=_threshold(service))))
    found += _predicted(applied)
    return found


def _points(by_period: dict[str, dict]) -> dict[str, list]:
    return {name: list(found.items()) for name, found in by_period.items()}


def _drift(applied: list) -> dict[str, list]:
    drift: dict[str, list] = {}
    for m in applied:
        for name, stats in ((m.checks or {}).get("features") or {}).items():
            if stats.get("psi") is not None:
                drift.setdefault(name, []).append((periods.key(m.logical_date), stats["psi"]))
    return drift


def _threshold(service) -> tuple[str, float] | None:
    limits = next((a.checks for a in service.spec.actions.values() if a.kind == "application" and a.checks), None)
    return ("max_psi", limits.max_psi) if limits else None


def _predicted(applied: list) -> list[tuple[str, Markup]]:
    """The predicted column per period (the newest success of each): shares of its classes, or its quantiles."""
    newest = {periods.key(m.logical_date): (m.outputs or {}).get("predicted") for m in applied}
    newest = {p: found for p, found in newest.items() if found}
    if not newest:
        return []
    column = next(reversed(newest.values()))["column"]
    shares = [(p, found["shares"]) for p, found in newest.items() if "shares" in found]
    if len(shares) >= len(newest) / 2:
        return [("predicted", share_chart(f"predicted {column}: share of each value by period", shares))]
    quantiles = [(p, found["quantiles"]) for p, found in newest.items() if "quantiles" in found]
    return [("predicted", band_chart(f"predicted {column}: median and quantiles by period", quantiles))]
