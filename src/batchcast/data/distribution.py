"""The distribution of the predicted column of a run's output, counted as the rows are published.

Recorded in the manifest (``outputs.predicted``) so that the dashboard can
plot the predictions period by period from manifests alone: no query on the
warehouse at view time, and the same figure whatever the warehouse. The
predicted column is the last one of the output schema, where a prediction
goes by convention (``player_id:STRING,label:BOOL``).

A column with few distinct values (a class, a flag, a small integer score)
is counted value by value and gives the share of each; any other number
gives quantiles of a uniform sample of ``SAMPLE`` values (bottom-k on random
keys), so memory stays bounded whatever the row count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CLASSES = 20  # more distinct values than this and a number is a quantity, not a class
SAMPLE = 10_000
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class Distribution:
    """One column counted over batches: shares of each value while it has few, a sample once it has more."""

    def __init__(self, column: str, seed: int = 0):
        self.column = column
        self.rows = self.nulls = 0
        self.counts: Counter | None = Counter()
        self.keys = np.empty(0)
        self.sample = np.empty(0)
        self.numeric = True
        self.broken = False
        self.many = False  # more than CLASSES distinct values that are not numbers: only rows and nulls are kept
        self.random = np.random.default_rng(seed)

    def watch(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``batches`` unchanged, each counted on its way to the warehouse.

        A batch the warehouse will refuse (no such column, or two) is not counted: the warehouse says what is
        wrong with it, in its own words. Nor does a column the counting cannot take fail the run: the
        figure is left out of the manifest, and nothing else changes.
        """
        for batch in batches:
            index = batch.schema.get_field_index(self.column)  # -1 when missing or repeated
            if index >= 0 and not self.broken:
                try:
                    self.add(batch.column(index))
                except (pa.ArrowException, TypeError, ValueError):
                    self.broken = True
            yield batch

    def add(self, column: pa.Array) -> None:
        self.rows += len(column)
        self.nulls += column.null_count
        kept = pc.drop_null(column)
        if self.counts is not None:
            self.numeric = self.numeric and (pa.types.is_integer(kept.type) or pa.types.is_floating(kept.type))
            for entry in pc.value_counts(kept).to_pylist():
                self.counts[entry["values"]] += entry["counts"]
            if len(self.counts) <= CLASSES:
                return
            if self.numeric:
                self._to_sample()  # a quantity: its values so far become the first sample
            else:
                self.counts, self.many = None, True  # text with many values (an id?): no shares, and no unbounded count
            return
        if not self.many:
            self._keep(np.asarray(kept.to_numpy(zero_copy_only=False), dtype="float64"))

    def _to_sample(self) -> None:
        values = np.repeat(np.array(list(self.counts), dtype="float64"), list(self.counts.values()))
        self.counts = None
        self._keep(values)

    def _keep(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]  # a NaN has no place among quantiles
        keys = np.concatenate([self.keys, self.random.random(len(values))])
        values = np.concatenate([self.sample, values])
        if len(values) > SAMPLE:
            chosen = np.argpartition(keys, SAMPLE)[:SAMPLE]
            keys, values = keys[chosen], values[chosen]
        self.keys, self.sample = keys, values

    def result(self) -> dict[str, Any] | None:
        """``shares`` by value (as text: JSON keys), or ``quantiles`` and ``mean`` of the sample; None when the
        column could not be counted."""
        if self.broken:
            return None
        found: dict[str, Any] = {"column": self.column, "rows": self.rows, "nulls": self.nulls}
        if self.counts is not None:
            total = sum(self.counts.values()) or 1
            found["shares"] = {_label(value): count / total for value, count in sorted(
                self.counts.items(), key=lambda item: str(item[0]))}
        elif self.many:
            found["distinct"] = f"over {CLASSES}"
        elif len(self.sample):
            found["quantiles"] = {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(self.sample, QUANTILES),
                                                                       strict=True)}
            found["mean"] = float(self.sample.mean())
        return found


def _label(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
