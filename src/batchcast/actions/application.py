"""Python-contract application: stream batches from the input, through the model, into the warehouse.

Memory stays flat with the number of rows: one batch is read, predicted and
handed to the warehouse's transaction before the next is read.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from batchcast import models
from batchcast.actions.context import RunContext, log
from batchcast.commit import Outcome
from batchcast.sources import non_empty, open_input


def load_model(ctx: RunContext):
    """The applied training run's model, loaded only after its checksums were verified."""
    folder = ctx.workdir / "model"
    ctx.fetch_model(folder)
    return models.load(folder, ctx.spec.model_path)


def run(ctx: RunContext, outcome: Outcome) -> None:
    model, meta = load_model(ctx)
    out = ctx.action.output
    schema = out.schema_.requiring(ctx.spec.model.ids)  # a prediction without its id is lost
    reader, what = open_input(ctx.action.input, ctx.warehouse, ctx.spec.root, ctx.request.logical_date,
                              ctx.action.batch_size, ctx.where)
    outcome.inputs["data"] = what
    outcome.rows["read"] = 0

    def predicted() -> Iterator[pa.RecordBatch]:
        for batch in non_empty(reader, what, required=not out.allow_empty):
            outcome.rows["read"] += batch.num_rows
            features = models.choose_features(batch.schema.names, meta["features"], None, [], what)
            y = models.call(model, "predict", models.as_input(batch, features, meta["input_format"]))
            yield models.predictions_batch(batch, y, schema, "the model's predictions")

    rows = ctx.warehouse.publish(out.table, schema, predicted(), logical_date=ctx.request.logical_date,
                                 run_id=ctx.run_id, model_run=ctx.request.model_run,
                                 source="the model's predictions", allow_empty=out.allow_empty)
    outcome.rows["written"] = rows
    outcome.outputs["table"] = out.table
    log.info("published %d rows of %s into %s", rows, ctx.request.logical_date, out.table)
