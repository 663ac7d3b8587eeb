"""Python-contract evaluation: score a trained run on labelled data; metrics into the manifest."""

from __future__ import annotations

import json

from batchcast.actions.context import RunContext, log
from batchcast.actions.training import labels, read_table
from batchcast.errors import SpecError
from batchcast.model.metrics import metrics
from batchcast.runs.commit import Outcome


def run(ctx: RunContext, outcome: Outcome) -> None:
    loaded = ctx.load_model(outcome)
    label = loaded.meta.get("label") or ctx.spec.model.label
    if not label:
        raise SpecError(f"{ctx.where}: evaluation needs a label column", "set [model] label")
    table = read_table(ctx, outcome)
    outcome.metrics.update(metrics(loaded.scorer, table, labels(table, label, ctx.where)))
    folder = ctx.workdir / "output"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(outcome.metrics, indent=2))
    outcome.files.update(ctx.store.put_dir(ctx.run_id, "output", folder))
    log.info("evaluated %s on %d rows: %s", ctx.request.model_run, table.num_rows, outcome.metrics)
