"""Python-contract training: fit on the input, hold some rows out for metrics, save."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from batchcast.actions.context import RunContext, log, params
from batchcast.data import profiles as checks
from batchcast.data.inputs import non_empty, open_input
from batchcast.errors import SchemaError
from batchcast.model import contract, files
from batchcast.model.metrics import metrics
from batchcast.model.scoring import Scorer
from batchcast.runs.commit import Outcome


def read_table(ctx: RunContext, outcome: Outcome) -> pa.Table:
    """The whole input as one table (training data fits in memory by design)."""
    reader, what = open_input(ctx.action.input, ctx.warehouse, ctx.spec.root, ctx.request.logical_date,
                              ctx.action.batch_size, ctx.where, ctx.interval)
    outcome.inputs["data"] = what
    table = pa.Table.from_batches(list(non_empty(reader, what)))
    outcome.rows["read"] = table.num_rows
    return table


def labels(table: pa.Table, label: str, where: str) -> np.ndarray:
    if label not in table.column_names:
        raise SchemaError(f"{where}: label column '{label}' is missing (found: {', '.join(table.column_names)})",
                          "add it to the input, or correct [model] label")
    return table.column(label).to_numpy(zero_copy_only=False)


def run(ctx: RunContext, outcome: Outcome) -> None:
    if ctx.spec.imports(ctx.action):  # an MLflow model, trained elsewhere
        from batchcast.actions import importing

        return importing.run(ctx, outcome)
    spec = ctx.spec.model
    table = read_table(ctx, outcome)
    features = contract.choose_features(table.column_names, spec.features, spec.label, spec.ids, ctx.where)
    chosen = params(ctx.config(), ctx.action.config)
    outcome.inputs["params"] = json.loads(json.dumps(chosen, default=str))  # as trained: the file may change later
    model = contract.build(spec.entrypoint, ctx.spec.model_path, chosen)
    scorer = Scorer(model, tuple(features), spec.input_format)
    hold = None
    if spec.label:
        y = labels(table, spec.label, ctx.where)
        train, hold = _split(table.num_rows, spec.holdout)
        contract.call(model, "fit", scorer.inputs(table.take(train)), y[train])
        if len(hold):
            outcome.metrics.update(metrics(scorer, table.take(hold), y[hold]))
    else:
        contract.call(model, "fit", scorer.inputs(table))
    folder = ctx.workdir / "output"
    _profile(scorer, table, hold if spec.label and len(hold) else None, folder)
    files.save(model, folder, {"entrypoint": spec.entrypoint, "features": features, "label": spec.label,
                                "input_format": spec.input_format, "rows": table.num_rows})
    if spec.save_mlflow:  # the same model, for mlflow models serve and the registry
        from batchcast.model import pyfunc

        pyfunc.save(model, folder / pyfunc.FOLDER, scorer.inputs(table.slice(0, 100)), ctx.spec)
    outcome.files.update(ctx.store.put_dir(ctx.run_id, "output", folder))
    log.info("trained on %d rows; metrics %s", table.num_rows, outcome.metrics)


def _split(rows: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    # Seeded, so the same data gives the same split and comparable metrics.
    order = np.random.default_rng(0).permutation(rows)
    cut = rows - int(rows * holdout)
    return np.sort(order[:cut]), np.sort(order[cut:])


def _profile(scorer: Scorer, table: pa.Table, hold, folder) -> None:
    """``output/profile.json``: the features as training saw them, and the predictions on held-out rows."""
    predicted = scorer.predict(table.take(hold) if hold is not None else table)
    folder.mkdir(parents=True, exist_ok=True)
    profile = checks.profile(table, list(scorer.features), predicted)
    (folder / checks.PROFILE).write_text(json.dumps(checks.clean(profile)))
