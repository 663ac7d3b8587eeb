"""The promotion gate: after a succeeded training run, the alias moves only to a better model.

``[actions.NAME.promote]`` names the metric and how to compare it. The
decision is made before the run's manifest is committed, so the manifest
records it (``promotion``); the alias moves after the commit, since only a
committed run can be an alias's target, and the move is recorded in the
alias's history with what moved it. A refused candidate is alerted.

With ``compare_on`` (the Python contract), candidate and champion are scored
on the same rows, the evaluation action's input for the run's date
(``actions/gate.py``); without it the gate compares the metrics each run
stored when it trained, and says so (``basis``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from batchcast.scheduling import periods

if TYPE_CHECKING:
    from batchcast.runs.manifest import Manifest
    from batchcast.runs.store import ArtifactStore
    from batchcast.spec.sections import PromoteSection

BASIS = "the metrics each run stored at training (no compare_on)"
CHAMPION = "champion"  # the alias applications, serve and stream use by default (Service.model_for)


def decide(gate: PromoteSection, candidate: dict[str, float], champion_run: str | None,
           champion: dict[str, float] | None, basis: str = BASIS) -> dict[str, Any]:
    """The gate's decision for a candidate with metrics ``candidate``, against the alias's current target."""
    value = candidate.get(gate.metric)
    held = (champion or {}).get(gate.metric)
    found = {"alias": gate.alias, "metric": gate.metric, "mode": gate.mode, "candidate": value,
             "champion": held, "champion_run": champion_run, "basis": basis}
    if value is None:
        return {**found, "decision": "refused", "reason": f"the run recorded no metric '{gate.metric}' "
                f"(it has: {', '.join(sorted(candidate)) or 'none'})"}
    if not math.isfinite(value):  # NaN compares false with everything: it would pass every test below
        return {**found, "decision": "refused", "reason": f"{gate.metric} is {value}, not a finite number"}
    sign = 1 if gate.mode == "max" else -1
    if gate.at_least is not None and sign * (value - gate.at_least) < 0:
        bound = "under the floor" if gate.mode == "max" else "over the ceiling"
        return {**found, "decision": "refused", "reason": f"{gate.metric} {value:.4g} is {bound} at_least "
                f"{gate.at_least:.4g}"}
    if champion_run is None:
        return {**found, "decision": "promoted", "reason": f"{gate.alias} had no target"}
    if held is None or not math.isfinite(held):
        return {**found, "decision": "promoted", "reason": f"{gate.alias} {champion_run} recorded no finite "
                f"{gate.metric}"}
    gain = sign * (value - held)
    if gain <= 0 or gain < gate.min_improvement:
        need = f" by at least {gate.min_improvement:.4g}" if gate.min_improvement else ""
        return {**found, "decision": "refused", "reason": f"{gate.metric} {value:.4g} is not better{need} than "
                f"{gate.alias} {champion_run}'s {held:.4g} ({gate.mode})"}
    return {**found, "decision": "promoted", "reason": f"{gate.metric} {value:.4g} beats {gate.alias} "
            f"{champion_run}'s {held:.4g} ({gate.mode})"}


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


def carry_out(spec, store: ArtifactStore, manifest: Manifest) -> None:
    """After the commit: move the alias if the gate passed, else alert that the candidate was refused."""
    from batchcast import alerts

    found = manifest.promotion
    if found["decision"] == "promoted":
        store.set_alias(manifest.name, manifest.version, found["alias"], manifest.run_id,
                        by=found.get("by") or f"promotion gate: {found['reason']}")
        return
    alerts.send(spec.alerts, alerts.Alert(
        "refused", manifest.name, manifest.version, manifest.action, periods.key(manifest.logical_date),
        manifest.status.value, manifest.run_id, f"not promoted to {found['alias']}: {found['reason']}",
        f"to promote it anyway: batchcast promote {manifest.run_id} --alias {found['alias']}"))
