"""Python-contract application: stream batches from the input, through the model, into the warehouse.

Memory stays flat with the number of rows: batches are predicted on
``[actions.X] threads`` threads (data/ahead.in_order), at most that many read
ahead, and handed in order to the warehouse's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from batchcast import alerts
from batchcast.actions.context import RunContext, log
from batchcast.data.ahead import cores, in_order
from batchcast.data.inputs import non_empty, open_input
from batchcast.data.pace import Pace
from batchcast.errors import BatchcastError, InputError
from batchcast.model.scoring import PREDICTIONS, output
from batchcast.runs.commit import Outcome
from batchcast.scheduling import periods

if TYPE_CHECKING:
    import pyarrow as pa

    from batchcast.data import profiles as checks


def _monitor(ctx: RunContext, outcome: Outcome) -> checks.Monitor | None:
    """The input checks, if the action asks for them and the model was profiled at training."""
    if not ctx.action.checks:
        return None
    from batchcast.data import (
        profiles as checks,  # here: it imports pyarrow.compute, 0.1 s a run without checks never needs
    )

    profile = ctx.workdir / "model" / checks.PROFILE
    if not profile.exists():
        outcome.checks = {"skipped": f"model {ctx.request.model_run} has no {checks.PROFILE} (trained before "
                                     "batchcast profiled training data): train again to check inputs"}
        log.warning("input checks skipped: %s", outcome.checks["skipped"])
        return None
    return checks.Monitor(json.loads(profile.read_text()), ctx.action.checks)


def _judge(ctx: RunContext, outcome: Outcome, monitor: checks.Monitor, failed: BatchcastError | None = None,
           stop: bool = False) -> None:
    """Record the checks and alert on a breach; raise (inside the stream: nothing published) with on_breach
    = "fail", when told to ``stop``, or when the model ``failed`` on input the checks find at fault."""
    from batchcast.data import profiles as checks

    outcome.checks = checks.clean(monitor.result())
    breaches = outcome.checks["breaches"]
    if not breaches:
        return
    more = f" (and {len(breaches) - 1} more: {'; '.join(breaches[1:])})" if len(breaches) > 1 else ""
    alerts.send(ctx.spec.alerts, alerts.Alert("checks", ctx.spec.service.name, ctx.spec.service.version,
                                              ctx.request.action, periods.key(ctx.request.logical_date),
                                              ctx.action.checks.on_breach, ctx.run_id, breaches[0] + more))
    if ctx.action.checks.on_breach == "fail" or failed is not None or stop:
        then = f"; then {failed.message}" if failed is not None else ""
        raise InputError(f"input check failed: {breaches[0]}{more}{then}",
                         "fix the input, or retrain on data like it; the limits are in "
                         f"[actions.{ctx.request.action}.checks]") from failed
    log.warning("input checks: %s%s", breaches[0], more)


def run(ctx: RunContext, outcome: Outcome) -> None:
    scorer = ctx.load_model(outcome).scorer
    monitor = _monitor(ctx, outcome)
    out = ctx.action.output
    schema = out.schema_.requiring(ctx.spec.model.ids)  # a prediction without its id is lost
    reader, what = open_input(ctx.action.input, ctx.warehouse, ctx.spec.root, ctx.request.logical_date,
                              ctx.action.batch_size, ctx.where, ctx.interval)
    outcome.inputs["data"] = what
    outcome.rows["read"] = 0

    threads = ctx.action.threads or cores()
    outcome.outputs["scoring"] = {"threads": threads}

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in non_empty(reader, what, required=not out.allow_empty):
            outcome.rows["read"] += batch.num_rows
            if monitor is not None and not monitor.schema_checked and monitor.check_schema(batch.schema):
                # A missing or changed column, named before the model sees it; a missing one stops even a
                # "warn": no model can predict without it.
                if ctx.action.checks.on_breach == "fail" or monitor.missing:
                    _judge(ctx, outcome, monitor, stop=True)
            if monitor is not None:
                monitor.add_input(batch)
            yield batch

    def predict(batch: pa.RecordBatch):  # on a scoring thread: a model's error is returned, raised below in order
        try:
            return batch, scorer.predict(batch, what)
        except BatchcastError as exc:
            return batch, exc

    pace = Pace(log, "scored")

    def predicted() -> Iterator[pa.RecordBatch]:
        for batch, y in in_order(predict, batches(), threads):
            if isinstance(y, BatchcastError):
                if monitor is not None:  # the model failed on input the checks find at fault: say that first
                    _judge(ctx, outcome, monitor, failed=y)
                raise y
            pace.add(batch.num_rows)
            if monitor is not None:
                monitor.add_predictions(y)
            yield output(batch, y, schema, PREDICTIONS)
        if monitor is not None:  # still inside the publish transaction: a failure leaves the table as it was
            _judge(ctx, outcome, monitor)

    ctx.publish(outcome, schema, predicted(), "the model's predictions")
