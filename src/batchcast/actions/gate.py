"""The promotion gate inside a training run: the candidate is judged before its manifest is committed."""

from __future__ import annotations

import dataclasses

from batchcast.actions.context import RunContext, log
from batchcast.actions.training import labels, read_table
from batchcast.model.loading import from_folder, load_run
from batchcast.model.metrics import metrics
from batchcast.runs import promotion
from batchcast.runs.commit import Outcome
from batchcast.runs.manifest import Manifest


def judge(ctx: RunContext, outcome: Outcome) -> dict:
    """The gate's decision on the run in ``ctx``, logged; the caller records it in the manifest."""
    gate = ctx.action.promote
    s = ctx.spec.service
    champion = promotion.current(ctx.store, s.name, s.version, gate.alias)
    if gate.compare_on and champion is not None:
        candidate, held, basis = _scored_alike(ctx, gate.compare_on, champion)
    else:
        candidate, held, basis = outcome.metrics, champion.metrics if champion else None, promotion.BASIS
    found = promotion.decide(gate, candidate, champion.run_id if champion else None, held, basis)
    log.info("promotion gate: %s, %s (%s)", found["decision"], found["reason"], basis)
    return found


def _scored_alike(ctx: RunContext, action: str, champion: Manifest) -> tuple[dict, dict, str]:
    """Candidate and champion scored on the same rows: ``action``'s input for this run's date."""
    # The evaluation action's input, read through this run's warehouse connection.
    evaluation = dataclasses.replace(ctx, request=ctx.request.model_copy(update={"action": action}),
                                     _warehouse=ctx.warehouse)
    seen = Outcome()
    table = read_table(evaluation, seen)
    y = labels(table, ctx.spec.model.label, evaluation.where)
    candidate, _ = from_folder(ctx.workdir / "output", ctx.spec.model_path)  # this run's own, not yet stored
    held = load_run(ctx.store, champion, ctx.workdir / "champion", ctx.spec).scorer
    scores = [metrics(scorer, table, y) for scorer in (candidate, held)]
    basis = (f"both scored on [actions.{action}] input for {ctx.request.logical_date}: {seen.inputs['data']} "
             f"({table.num_rows} rows)")
    return scores[0], scores[1], basis
