"""The promotion gate: after a succeeded training run, the alias moves only to a better model.

``[actions.NAME.promote]`` names the metric and how to compare it. The
decision is made before the run's manifest is committed, so the manifest
records it (``promotion``); the alias moves after the commit, since only a
committed run can be an alias's target, and the move is recorded in the
alias's history with what moved it. A refused candidate is alerted.

Without a fresh scoring of both models on the same rows, the gate compares
the metrics each run stored when it trained, and says so (``basis``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchcast.runs import Manifest
    from batchcast.spec.sections import PromoteSection
    from batchcast.store import ArtifactStore

log = logging.getLogger("batchcast")  # the run's log, as every action writes it
BASIS = "the metrics each run stored at training (no compare_on)"


def decide(gate: PromoteSection, metrics: dict[str, float], champion: Manifest | None) -> dict[str, Any]:
    """The gate's decision for a candidate with ``metrics``, against the alias's current target."""
    value = metrics.get(gate.metric)
    found = {"alias": gate.alias, "metric": gate.metric, "mode": gate.mode, "candidate": value,
             "champion": None, "champion_run": champion.run_id if champion else None, "basis": BASIS}
    if value is None:
        return {**found, "decision": "refused", "reason": f"the run recorded no metric '{gate.metric}' "
                f"(it has: {', '.join(sorted(metrics)) or 'none'})"}
    sign = 1 if gate.mode == "max" else -1
    if gate.at_least is not None and sign * (value - gate.at_least) < 0:
        bound = "under the floor" if gate.mode == "max" else "over the ceiling"
        return {**found, "decision": "refused", "reason": f"{gate.metric} {value:.4g} is {bound} at_least "
                f"{gate.at_least:.4g}"}
    if champion is None:
        return {**found, "decision": "promoted", "reason": f"{gate.alias} had no target"}
    held = champion.metrics.get(gate.metric)
    found["champion"] = held
    if held is None:
        return {**found, "decision": "promoted", "reason": f"{gate.alias} {champion.run_id} recorded no "
                f"{gate.metric}"}
    gain = sign * (value - held)
    if gain <= 0 or gain < gate.min_improvement:
        need = f" by at least {gate.min_improvement:.4g}" if gate.min_improvement else ""
        return {**found, "decision": "refused", "reason": f"{gate.metric} {value:.4g} is not better{need} than "
                f"{gate.alias} {champion.run_id}'s {held:.4g} ({gate.mode})"}
    return {**found, "decision": "promoted", "reason": f"{gate.metric} {value:.4g} beats {gate.alias} "
            f"{champion.run_id}'s {held:.4g} ({gate.mode})"}


def current(store: ArtifactStore, name: str, version: str, alias: str) -> Manifest | None:
    """The alias's current target, or None (no alias, or its run is gone)."""
    from batchcast.errors import RunNotFound

    target = store.alias(name, version, alias)
    if target is None:
        return None
    try:
        return store.manifest(target)
    except RunNotFound:
        return None


def judge(ctx, metrics: dict[str, float]) -> dict[str, Any]:
    """The gate's decision for the run in ``ctx``, logged; made before its manifest is committed."""
    gate = ctx.action.promote
    s = ctx.spec.service
    found = decide(gate, metrics, current(ctx.store, s.name, s.version, gate.alias))
    log.info("promotion gate: %s, %s", found["decision"], found["reason"])
    return found


def carry_out(spec, store: ArtifactStore, manifest: Manifest) -> None:
    """After the commit: move the alias if the gate passed, else alert that the candidate was refused."""
    from batchcast import alerts

    found = manifest.promotion
    if found["decision"] == "promoted":
        store.set_alias(manifest.name, manifest.version, found["alias"], manifest.run_id,
                        by=f"promotion gate: {found['reason']}")
        return
    alerts.send(spec.alerts, alerts.Alert(
        "refused", manifest.name, manifest.version, manifest.action, manifest.logical_date.isoformat(),
        manifest.status.value, manifest.run_id, f"not promoted to {found['alias']}: {found['reason']}",
        f"to promote it anyway: batchcast promote {manifest.run_id} --alias {found['alias']}"))
