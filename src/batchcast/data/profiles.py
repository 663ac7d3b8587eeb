"""Input checks: what training saw of each feature, compared with each application's input in one pass.

A training run stores ``output/profile.json``: per feature its kind, null
fraction, min and max, and decile bins with the fraction of training rows in
each; the same for the model's predictions. An application with
``[actions.application.checks]`` counts, batch by batch, each feature's
nulls, values out of the training range and bin counts (memory: a few
counters per feature, whatever the row count), then compares: missing
columns, kind changes, a rise in nulls, the out-of-range fraction, and the
population stability index (PSI) of each feature and of the predictions.

Written here rather than taken from a drift library: the ones that compute
PSI want whole pandas frames (or their own profiles of whole datasets), and
this path must stay one pass over Arrow batches in bounded memory, on bins
fixed at training.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PROFILE = "profile.json"
BINS = 10
FLOOR = 1e-4  # an empty bin's fraction in PSI, so that ln(0) never happens


def kind(arrow_type: pa.DataType) -> str:
    """What a column holds, as far as a model cares: number, bool, string, time, or the type itself."""
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_temporal(arrow_type):
        return "time"
    return str(arrow_type)


def _values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The non-null values of a number or bool column as float64."""
    kept = pc.drop_null(column)
    if pa.types.is_boolean(kept.type):
        kept = pc.cast(kept, pa.int8())
    return np.asarray(kept.to_numpy(zero_copy_only=False), dtype="float64")


def _describe(column: pa.Array | pa.ChunkedArray) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": kind(column.type), "null_fraction": column.null_count / max(len(column), 1)}
    if found["kind"] in ("number", "bool"):
        values = _values(column)
        if len(values):
            edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
            counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
            found.update(min=float(values.min()), max=float(values.max()), edges=edges.tolist(),
                         fractions=(counts / len(values)).tolist())
    return found


def profile(table: pa.Table, features: list[str], predictions: Any) -> dict[str, Any]:
    """The training profile: each feature of ``table``, and the model's ``predictions`` on training rows."""
    column = _one_column(predictions)
    return {"rows": table.num_rows, "columns": table.column_names,
            "features": {name: _describe(table.column(name)) for name in features},
            "predictions": _describe(column) if column is not None else {"kind": "several columns",
                                                                         "null_fraction": 0.0}}


def _one_column(predictions: Any) -> pa.Array | None:
    """One prediction per row as an Arrow array; None for a model that returns several columns."""
    values = np.asarray(predictions)
    if values.ndim != 1 or values.dtype == object:
        return None
    return pa.array(values)


def psi(expected: list[float], counts: np.ndarray) -> float | None:
    """Population stability index of ``counts`` against the training fractions; None with no rows."""
    total = counts.sum()
    if total == 0:
        return None
    actual = np.maximum(counts / total, FLOOR)
    base = np.maximum(np.asarray(expected), FLOOR)
    return float(np.sum((actual - base) * np.log(actual / base)))


class _Counter:
    """One column's counts over the application's batches."""

    def __init__(self, trained: dict[str, Any]):
        self.trained = trained
        self.rows = self.nulls = 0
        if "edges" in trained:
            # Training's min, its bin edges, and just above its max: one count per cut gives the bins and
            # what lies outside the range together. Counting below each cut is ~10x faster than searchsorted.
            self.cuts = np.array([trained["min"], *trained["edges"], np.nextafter(trained["max"], np.inf)])
            self.below = np.zeros(len(self.cuts), dtype="int64")
            self.seen = 0

    def add(self, column: pa.Array) -> None:
        self.rows += len(column)
        self.nulls += column.null_count
        if "edges" in self.trained and kind(column.type) in ("number", "bool"):
            values = _values(column)
            self.seen += len(values)
            self.below += [np.count_nonzero(values < cut) for cut in self.cuts]

    def _bins(self) -> tuple[np.ndarray, int]:
        """Counts per training bin, and how many values fell outside training's min..max."""
        counts = np.diff([0, *self.below, self.seen])
        bins = counts[1:-1].copy()
        bins[0] += counts[0]
        bins[-1] += counts[-1]
        return bins, int(counts[0] + counts[-1])

    def stats(self) -> dict[str, Any]:
        found = {"rows": self.rows, "null_fraction": self.nulls / max(self.rows, 1),
                 "training_null_fraction": self.trained["null_fraction"], "out_of_range": None, "psi": None}
        if "edges" in self.trained and self.seen:
            bins, outside = self._bins()
            found.update(out_of_range=outside / self.seen, psi=psi(self.trained["fractions"], bins))
        return found


class Monitor:
    """An application's input and predictions, counted batch by batch against the training profile."""

    def __init__(self, trained: dict[str, Any], limits):
        self.trained, self.limits = trained, limits
        self.columns = {name: _Counter(found) for name, found in trained["features"].items()}
        self.predicted = _Counter(trained["predictions"])
        self.breaches: list[str] = []
        self.missing: list[str] = []
        self.extra: list[str] = []  # columns training never saw: recorded, not a breach (the model ignores them)
        self.schema_checked = False

    def add_input(self, batch: pa.RecordBatch) -> None:
        """Count a batch's features; before the model sees it, so a model that fails on it can be explained."""
        if not self.schema_checked:
            self.check_schema(batch.schema)
        for name, counter in self.columns.items():
            counter.add(batch.column(name))

    def add_predictions(self, predictions: Any) -> None:
        column = _one_column(predictions) if "edges" in self.predicted.trained else None
        if column is not None:
            self.predicted.add(column)

    def check_schema(self, schema: pa.Schema) -> list[str]:
        """Missing columns and kind changes, from the first batch, as breaches; an extra column is not one."""
        self.schema_checked = True
        self.extra = [name for name in schema.names if name not in self.trained.get("columns", schema.names)]
        for name, found in self.trained["features"].items():
            if name not in schema.names:
                self.missing.append(name)
                self.breaches.append(f"feature {name} is missing from the input")
            elif kind(schema.field(name).type) != found["kind"]:
                self.breaches.append(f"feature {name} changed kind: {kind(schema.field(name).type)} where training "
                                     f"had {found['kind']}")
        self.columns = {n: c for n, c in self.columns.items() if n in schema.names
                        and kind(schema.field(n).type) == c.trained["kind"]}
        return self.breaches

    def result(self) -> dict[str, Any]:
        """Per feature and for the predictions: the statistics, and every limit they broke."""
        limits = self.limits
        features = {}
        for name, counter in self.columns.items():
            stats = features[name] = counter.stats()
            rise = stats["null_fraction"] - stats["training_null_fraction"]
            if rise > limits.max_null_increase:
                self.breaches.append(f"feature {name}: null fraction {stats['null_fraction']:.3g}, up "
                                     f"{rise:.3g} from training, over max_null_increase {limits.max_null_increase:g}")
            if stats["out_of_range"] is not None and stats["out_of_range"] > limits.max_out_of_range:
                self.breaches.append(f"feature {name}: {stats['out_of_range']:.3g} of values outside the training "
                                     f"range, over max_out_of_range {limits.max_out_of_range:g}")
            if stats["psi"] is not None and stats["psi"] > limits.max_psi:
                self.breaches.append(f"feature {name} drifted: PSI {stats['psi']:.3g} over max_psi {limits.max_psi:g}")
        predictions = self.predicted.stats()
        if predictions["psi"] is not None and predictions["psi"] > limits.max_prediction_psi:
            self.breaches.append(f"predictions drifted: PSI {predictions['psi']:.3g} over max_prediction_psi "
                                 f"{limits.max_prediction_psi:g}")
        return {"on_breach": limits.on_breach, "features": features, "predictions": predictions,
                "extra_columns": self.extra, "breaches": self.breaches}


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
