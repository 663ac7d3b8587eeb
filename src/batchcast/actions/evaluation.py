"""Python-contract evaluation: score a trained run on labelled data; metrics into the manifest."""

from __future__ import annotations

import json

from batchcast.actions.application import load_model
from batchcast.actions.context import RunContext, log
from batchcast.actions.training import labels, read_table
from batchcast.errors import SpecError
from batchcast.model import contract as models
from batchcast.runs.commit import Outcome


def run(ctx: RunContext, outcome: Outcome) -> None:
    model, meta = load_model(ctx)
    label = meta.get("label") or ctx.spec.model.label
    if not label:
        raise SpecError(f"{ctx.where}: evaluation needs a label column", "set [model] label")
    table = read_table(ctx, outcome)
    features = models.choose_features(table.column_names, meta["features"], None, [], ctx.where)
    outcome.metrics.update(models.metrics(model, models.as_input(table, features, meta["input_format"]),
                                          labels(table, label, ctx.where)))
    folder = ctx.workdir / "output"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(outcome.metrics, indent=2))
    outcome.files.update(ctx.store.put_dir(ctx.run_id, "output", folder))
    log.info("evaluated %s on %d rows: %s", ctx.request.model_run, table.num_rows, outcome.metrics)
