"""``[serve] log_table``: online requests and their predictions, appended to the warehouse off the request path.

A request only adds its rows to a buffer. A thread flushes the buffer every
``log_every`` seconds: one append per model run and date, stamped like a
batch run's rows (``_logical_date``, ``_run_id``, ``_model_run``,
``_predicted_at``), plus ``received_at`` per row, so online and batch
predictions compare in SQL. The warehouse is opened per flush and closed,
so a DuckDB file stays free for the batch runs between flushes. When a
flush fails (the warehouse is down or locked) its rows wait for the next
one; past ``log_max_rows`` waiting, the oldest are dropped, counted and
logged, so a long outage cannot exhaust the server's memory.
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
TYPES = {"number": "FLOAT64", "bool": "BOOL", "string": "STRING"}
PREDICTION = {"b": "BOOL", "i": "INT64", "u": "INT64", "f": "FLOAT64"}


class OnlineLog:
    def __init__(self, spec, table: str, every: float, max_rows: int, metrics=None):
        self.spec, self.table, self.every, self.max_rows, self.metrics = spec, table, every, max_rows, metrics
        self.run_id = run_id(spec.service.name, spec.service.version, "serve", new_run_ts())
        self._pending: deque[tuple[str, dt.datetime, pa.Table]] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batchcast-online-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, served, table: pa.Table, predicted: np.ndarray) -> None:
        """Keep one request's rows; the request goes on at once, whatever happens here."""
        try:
            columns = {name: table.column(name) for name in (*served.features.ids, *served.features.names)}
            columns["prediction"] = _predictions(predicted)
            rows = pa.table(columns)
        except Exception as exc:  # noqa: BLE001 - a prediction the log cannot hold must not fail the request
            log.warning("online log: %d rows not logged: %s", table.num_rows, exc)
            self._dropped(table.num_rows)
            return
        with self._lock:
            self._pending.append((served.run_id, dt.datetime.now(dt.UTC), rows))
            self._rows += rows.num_rows
            while self._rows > self.max_rows and len(self._pending) > 1:
                _, _, dropped = self._pending.popleft()
                self._rows -= dropped.num_rows
                self._dropped(dropped.num_rows, f"over [serve] log_max_rows = {self.max_rows} waiting")

    def stop(self, timeout: float = 8.0) -> None:
        """Flush what is left, then stop the thread (on shutdown, inside the pod's grace period)."""
        self._stop.set()
        self._thread.join(timeout=timeout)
        with self._lock:
            left = self._rows
        if left:
            log.error("online log: %d rows not written to %s before shutdown", left, self.table)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Append what is pending, one transaction per model run and date; the rows written.

        A group that fails waits for the next flush; the groups written are
        not written again. A group whose columns the table does not have (a
        new model predicting another type) is dropped, since no retry fixes it.
        """
        with self._lock:
            taken, self._pending, self._rows = list(self._pending), deque(), 0
        groups: dict[tuple[str, dt.date], list[tuple[str, dt.datetime, pa.Table]]] = {}
        for item in taken:
            groups.setdefault((item[0], item[1].date()), []).append(item)
        written, kept = 0, []
        for (run, day), items in groups.items():
            rows = sum(t.num_rows for _, _, t in items)
            try:
                written += self._append(run, day, [_received(t, at) for _, at, t in items])
            except SchemaError as exc:
                self._dropped(rows, f"the table does not fit them: {exc}")
            except Exception as exc:  # noqa: BLE001 - the server goes on; these rows wait for the next flush
                log.warning("online log: appending %d rows to %s failed, kept for the next flush: %s",
                            rows, self.table, exc)
                kept += items
        if kept:
            with self._lock:
                self._pending.extendleft(reversed(kept))
                self._rows += sum(t.num_rows for _, _, t in kept)
        return written

    def _append(self, run: str, day: dt.date, tables: list[pa.Table]) -> int:
        from batchcast.warehouses import open_warehouse

        rows = pa.concat_tables(tables, promote_options="permissive")
        schema = _schema(rows)
        with open_warehouse(self.spec.warehouse_url) as warehouse:
            written = warehouse.publish(self.table, schema, rows.to_batches(), logical_date=day, run_id=self.run_id,
                                        model_run=run, source=f"[serve] log_table {self.table}", append=True)
        return written

    def _dropped(self, rows: int, why: str | None = None) -> None:
        if why:
            log.warning("online log: %d rows dropped, %s", rows, why)
        if self.metrics is not None:
            self.metrics.log_dropped.inc(rows)


def _predictions(predicted: np.ndarray) -> pa.Array:
    if predicted.ndim == 1 and predicted.dtype.kind in "biuf":
        return pa.array(predicted)
    return pa.array([None if p is None else str(p) for p in predicted.tolist()], pa.string())


def _received(rows: pa.Table, at: dt.datetime) -> pa.Table:
    return rows.append_column("received_at", pa.repeat(pa.scalar(at, pa.timestamp("us", "UTC")), rows.num_rows))


def _schema(rows: pa.Table) -> Schema:
    """The log table's columns, from the Arrow types of what the server read and predicted."""
    arrow = {pa.types.is_floating: "FLOAT64", pa.types.is_integer: "INT64", pa.types.is_boolean: "BOOL",
             pa.types.is_timestamp: "TIMESTAMP"}
    return Schema([Column(field.name, next((t for test, t in arrow.items() if test(field.type)), "STRING"))
                   for field in rows.schema])
