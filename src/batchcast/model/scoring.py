"""The one scorer: a batch of features in, a batch of predictions out, for every path that scores.

The batch application, Beam's workers, the promotion gate, evaluation,
``serve`` and ``stream`` all hold a :class:`Scorer` and call it; none of
them selects features, converts the input or calls the model itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from batchcast.errors import ModelError, SchemaError
from batchcast.model.contract import as_input, call, choose_features

if TYPE_CHECKING:
    import pyarrow as pa

    from batchcast.data.schema import Schema

PREDICTIONS = "the model's predictions"
R = TypeVar("R")


@dataclass(frozen=True)
class Scorer:
    """A fitted model and how to call it: its features in the training's order, its input form, its method."""

    model: Any
    features: tuple[str, ...]
    input_format: str = "pandas"
    method: str = "predict"
    run_id: str | None = None  # the training run it came from, when loaded from the store

    @classmethod
    def of(cls, model: Any, meta: dict[str, Any], run_id: str | None = None) -> Scorer:
        """The scorer of a model saved by a Python-contract training run (``model_meta.json``)."""
        return cls(model, tuple(meta["features"]), meta["input_format"], run_id=run_id)

    def inputs(self, batch: pa.Table | pa.RecordBatch, where: str = "input"):
        """The batch's features, in the training's order, in the form the model takes."""
        names = choose_features(batch.schema.names, list(self.features), None, [], where)
        return as_input(batch, names, self.input_format)

    def call(self, method: str, batch: pa.Table | pa.RecordBatch, where: str = "input") -> Any:
        """``method`` of the model (``predict_proba``, say) on the batch's features."""
        return call(self.model, method, self.inputs(batch, where))

    def predict(self, batch: pa.Table | pa.RecordBatch, where: str = "input") -> Any:
        """The model's own predictions for ``batch``: an array, a DataFrame or a dict of columns."""
        return self.call(self.method, batch, where)

    def predict_array(self, batch: pa.Table | pa.RecordBatch, where: str = "input") -> np.ndarray:
        """The predictions as an array with one entry per row; ModelError otherwise."""
        y = np.asarray(self.predict(batch, where))
        if y.ndim == 0 or y.shape[0] != batch.num_rows:
            raise ModelError(f"the model's {self.method}() returned {y.shape[0] if y.ndim else 'a scalar'} "
                             f"predictions for {batch.num_rows} rows", "return one prediction per input row")
        return y

    def score(self, batch: pa.RecordBatch, schema: Schema, where: str = "input") -> pa.RecordBatch:
        """The output rows of ``batch`` (``where`` names it in messages): the schema's columns, predicted or
        passed through."""
        return output(batch, self.predict(batch, where), schema, PREDICTIONS)


def output(batch: pa.RecordBatch, predicted: Any, schema: Schema, where: str) -> pa.RecordBatch:
    """The output batch: schema columns found in the input pass through; the rest come from ``predicted``.

    ``predicted`` is 1-D (one output column), 2-D (in schema order) or a
    DataFrame/dict with the output columns by name.
    """
    passthrough = [c for c in schema.names if c in batch.schema.names]
    produced = [c for c in schema.names if c not in passthrough]
    columns = {c: batch.column(c) for c in passthrough}
    columns.update(_named(predicted, produced, batch.num_rows, where))
    import pyarrow as pa  # here, not at the top: loading a model (serving, scoring tools) needs no Arrow

    return pa.RecordBatch.from_pydict({c: columns[c] for c in schema.names})


def _named(predicted: Any, names: list[str], rows: int, where: str) -> dict[str, Any]:
    if hasattr(predicted, "columns") or isinstance(predicted, dict):
        frame = {str(k): predicted[k] for k in (predicted.columns if hasattr(predicted, "columns") else predicted)}
        missing = [n for n in names if n not in frame]
        if missing:
            raise SchemaError(f"{where}: predict() returned no column '{missing[0]}'",
                              "return it, or remove it from the output schema")
        return {n: np.asarray(frame[n]) for n in names}
    array = np.asarray(predicted)
    if array.ndim == 0:
        raise ModelError(f"{where}: predict() returned {type(predicted).__name__} {str(predicted)[:40]}, not one "
                         "prediction per row", "return an array, a list or a DataFrame with one entry per row")
    if array.shape[0] != rows:
        raise ModelError(f"{where}: predict() returned {array.shape[0]} rows for {rows} input rows",
                         "return one prediction per input row")
    array = array.reshape(rows, -1) if array.ndim > 1 else array.reshape(rows, 1)
    if array.shape[1] != len(names):
        raise SchemaError(f"{where}: predict() returned {array.shape[1]} columns, the output schema "
                          f"expects {len(names)} ({', '.join(names)}) beyond the input's",
                          "declare one output column per predicted column")
    return {n: array[:, i] for i, n in enumerate(names)}


class Slices:
    """One large batch scored in slices on several threads, for the paths that score one batch at a time.

    ``serve`` scores a request (or a few sharing a call) and ``stream`` a poll's messages: the batch
    application's threads, which score many batches at once, have nothing to overlap there. Most models
    release the GIL while they predict, so a large batch's slices use every core. A batch is split only when
    one thread would spend more than ``WORTH`` seconds on it, judged by this model's previous call (a
    LogisticRegression's 65,536 rows take 1 ms: never split), and into slices of at least ``MIN_ROWS``: on
    fewer, a 200-tree forest's per-tree Python work, which holds the GIL, outweighs the traversal, and two
    threads were slower than one (1,024 rows: 44 ms against 24; 4,096: 45 against 63; 16,384: 118 against
    215).
    """

    WORTH = 0.005
    MIN_ROWS = 2048

    def __init__(self, threads: int):
        self.threads = threads
        self._per_row = 0.0  # one thread's seconds per row at the last call; 0 until a call is timed
        # Never shut down: a request still holding a model swapped out may call it. Its idle threads end
        # when the model is collected.
        self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="batchcast-slice") if threads > 1 else None

    def map(self, work: Callable[[Any], R], batch: pa.Table | pa.RecordBatch) -> list[R]:
        """``work`` of ``batch`` whole, or of its slices in order (the caller's thread takes the first)."""
        rows = batch.num_rows
        parts = self._parts(rows)
        started = time.perf_counter()
        if parts == 1:
            found = [work(batch)]
        else:
            size = -(-rows // parts)
            futures = [self._pool.submit(work, batch.slice(start, size)) for start in range(size, rows, size)]
            try:
                first = work(batch.slice(0, size))
            finally:  # the other slices are waited for even when the first fails: they hold the model too
                for future in futures:
                    future.exception()
            found = [first] + [future.result() for future in futures]
        if rows:
            self._per_row = (time.perf_counter() - started) * parts / rows
        return found

    def seconds(self, rows: int) -> float:
        """How long a call on ``rows`` rows should take, by the last call (0 before any)."""
        return self._per_row * rows / self._parts(rows)

    def _parts(self, rows: int) -> int:
        if self._pool is None:
            return 1
        worth = int(self._per_row * rows / self.WORTH)
        return max(1, min(self.threads, worth, rows // self.MIN_ROWS))
