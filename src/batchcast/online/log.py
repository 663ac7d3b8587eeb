"""``[serve] log_table``: online requests and their predictions, appended to the warehouse off the request path.

A request only adds its rows to a buffer. A thread flushes the buffer every
``log_every`` seconds: one append per model run and date, stamped like a
batch run's rows (``_logical_date``, ``_run_id``, ``_model_run``,
``_predicted_at``), plus ``received_at`` per row, so online and batch
predictions compare in SQL. A flush combines its requests' rows into one
table in one chunk before the append: a warehouse takes one batch of
thousands of rows far better than thousands of one-row batches (DuckDB ran
out of memory on them). The warehouse is opened per flush and closed, so a
DuckDB file stays free for the batch runs between flushes.

Every row is written or counted as dropped, never lost unsaid. When a flush
fails (the warehouse is down or locked) its rows wait for the next one; past
``log_max_rows`` waiting, the oldest are dropped, counted and logged, so a
long outage cannot exhaust the server's memory. :meth:`OnlineLog.stop`
flushes what is left on shutdown, counts what it could not write as
dropped, and logs one line with the rows written and dropped since the start.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque

import numpy as np
import pyarrow as pa

from batchcast.data.schema import Column, Schema
from batchcast.errors import SchemaError
from batchcast.runs.manifest import new_run_ts, run_id

log = logging.getLogger("batchcast")


class OnlineLog:
    """The rows of the requests a server answers, appended to ``table`` every ``every`` seconds."""

    def __init__(self, spec, table: str, every: float, max_rows: int, metrics=None):
        self.spec, self.table, self.every, self.max_rows, self.metrics = spec, table, every, max_rows, metrics
        self.run_id = run_id(spec.service.name, spec.service.version, "serve", new_run_ts())
        # One request each: (model run, features, received at, its feature table, its predictions).
        self._pending: deque[tuple] = deque()
        self._rows = 0  # rows in _pending
        self._flushing = 0  # rows taken by the flush under way
        self._over = 0  # rows dropped past max_rows since the last flush, said once by the next
        self.written = self.dropped = 0  # rows since the start
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batchcast-online-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, served, table: pa.Table, predicted: np.ndarray) -> None:
        """Keep one request's rows; the request goes on at once, whatever happens here.

        Only references are kept: the rows are selected and converted by the
        flush, off the request path.
        """
        if np.shape(predicted)[:1] != (table.num_rows,):
            self._dropped(table.num_rows, f"{np.shape(predicted)} predictions for {table.num_rows} rows")
            return
        with self._lock:
            self._pending.append((served.run_id, served.features, dt.datetime.now(dt.UTC), table, predicted))
            self._rows += table.num_rows
            self._trim()

    def stop(self, timeout: float = 8.0) -> None:
        """Flush what is left and stop the thread (on shutdown, inside the pod's grace period); say what was lost."""
        self._stop.set()
        if self._thread.ident is None:  # never started
            self.flush()
        else:
            self._thread.join(timeout=timeout)
        with self._lock:
            left, late, over = self._rows, self._flushing, self._over
            self._pending, self._rows, self._flushing, self._over = deque(), 0, 0, 0
        if over:
            log.warning("online log: %d rows dropped, over [serve] log_max_rows = %d waiting", over, self.max_rows)
        if left:
            self._dropped(left, f"not written to {self.table} before shutdown")
        if late:
            self._dropped(late, f"not known to be written to {self.table}: the warehouse had not answered "
                                f"{timeout:g} s into shutdown")
        (log.warning if self.dropped else log.info)(
            "online log: stopped: %d rows written to %s, %d rows dropped", self.written, self.table, self.dropped)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Append what is pending, one transaction per model run and date; the rows written.

        A group that fails waits for the next flush; the groups written are
        not written again. A group the table cannot hold (a new model
        predicting another type) is dropped, since no retry fixes it.
        """
        with self._lock:
            taken, self._pending = self._pending, deque()
            self._flushing, self._rows = self._rows, 0
            over, self._over = self._over, 0
        if over:  # one line per flush, not one per request, while the warehouse is down
            log.warning("online log: %d rows dropped, over [serve] log_max_rows = %d waiting", over, self.max_rows)
        groups: dict[tuple[str, dt.date], list[tuple]] = {}
        for item in taken:
            groups.setdefault((item[0], item[2].date()), []).append(item)
        written = 0
        for (run, day), items in groups.items():
            rows, appended, kept = sum(item[3].num_rows for item in items), 0, False
            try:
                appended = self._append(run, day, _combined(items))
            except (SchemaError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                self._dropped(rows, f"the table does not fit them: {exc}")
            except Exception as exc:  # noqa: BLE001 - the server goes on; these rows wait for the next flush
                log.warning("online log: appending %d rows to %s failed, kept for the next flush: %s",
                            rows, self.table, exc)
                kept = True
            with self._lock:  # each row in one place at every moment: pending, flushing, written or dropped
                self._flushing -= rows
                self.written += appended
                if kept:
                    self._pending.extendleft(reversed(items))
                    self._rows += rows
                    self._trim()
            written += appended
        if self.metrics is not None:
            self.metrics.log_written.inc(written)
        return written

    def _trim(self) -> None:
        """Drop the oldest requests past ``max_rows`` waiting (the lock held); the next flush says how many."""
        while self._rows > self.max_rows and len(self._pending) > 1:
            dropped = self._pending.popleft()[3].num_rows
            self._rows -= dropped
            self._over += dropped
            self._dropped(dropped)

    def _append(self, run: str, day: dt.date, rows: pa.Table) -> int:
        from batchcast.warehouses import open_warehouse

        with open_warehouse(self.spec.warehouse_url) as warehouse:
            return warehouse.publish(self.table, _schema(rows), rows.to_batches(), logical_date=day,
                                     run_id=self.run_id, model_run=run, source=f"[serve] log_table {self.table}",
                                     append=True)

    def _dropped(self, rows: int, why: str | None = None) -> None:
        if why:
            log.warning("online log: %d rows dropped, %s", rows, why)
        with self._lock:
            self.dropped += rows
        if self.metrics is not None:
            self.metrics.log_dropped.inc(rows)


def _combined(items: list[tuple]) -> pa.Table:
    """The requests of one model run as one table in one chunk: ids, features, prediction, received_at."""
    features = items[0][1]
    parts = [item[3] for item in items]
    try:
        tables = pa.concat_tables(parts)  # one schema, the usual case: a third of the time of promoting types
    except pa.ArrowInvalid:
        tables = pa.concat_tables(parts, promote_options="permissive")  # an int in one request, a float in another
    columns = {name: tables.column(name) for name in (*features.ids, *features.names)}
    columns["prediction"] = _predictions([item[4] for item in items])
    at = pa.array([item[2] for item in items], pa.timestamp("us", "UTC"))
    columns["received_at"] = at.take(np.repeat(np.arange(len(items)), [item[3].num_rows for item in items]))
    return pa.table(columns).combine_chunks()


def _predictions(predicted: list[np.ndarray]) -> pa.Array:
    """One array of the requests' predictions: numbers as they are, anything else as text."""
    if all(y.ndim == 1 and y.dtype.kind in "biuf" for y in predicted):
        return pa.array(np.concatenate(predicted))
    return pa.array([None if p is None else str(p) for y in predicted for p in y.tolist()], pa.string())


def _schema(rows: pa.Table) -> Schema:
    """The log table's columns, from the Arrow types of what the server read and predicted."""
    arrow = {pa.types.is_floating: "FLOAT64", pa.types.is_integer: "INT64", pa.types.is_boolean: "BOOL",
             pa.types.is_timestamp: "TIMESTAMP"}
    return Schema([Column(field.name, next((t for test, t in arrow.items() if test(field.type)), "STRING"))
                   for field in rows.schema])
