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

from batchcast.schema import Column, Schema

log = logging.getLogger("batchcast")
TYPES = {"number": "FLOAT64", "bool": "BOOL", "string": "STRING"}
PREDICTION = {"b": "BOOL", "i": "INT64", "u": "INT64", "f": "FLOAT64"}


class OnlineLog:
    def __init__(self, spec, table: str, every: float, max_rows: int, metrics=None):
        self.spec, self.table, self.every, self.max_rows, self.metrics = spec, table, every, max_rows, metrics
        self.run_id = f"{spec.service.name}/{spec.service.version}/serve/" \
                      f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
        self._pending: deque[tuple[str, dt.datetime, pa.Table]] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batchcast-online-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, served, table: pa.Table, predicted: np.ndarray) -> None:
        """Keep one request's rows; the request goes on at once."""
        columns = {name: table.column(name) for name in (*served.features.ids, *served.features.names)}
        columns["prediction"] = pa.array(predicted if predicted.ndim == 1 else [str(p) for p in predicted.tolist()])
        with self._lock:
            self._pending.append((served.run_id, dt.datetime.now(dt.UTC), pa.table(columns)))
            self._rows += table.num_rows
            while self._rows > self.max_rows and len(self._pending) > 1:
                _, _, dropped = self._pending.popleft()
                self._rows -= dropped.num_rows
                self._dropped(dropped.num_rows)

    def stop(self) -> None:
        """Flush what is left, then stop the thread (on shutdown)."""
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Append what is pending; the rows written (0 when the write failed and they wait)."""
        with self._lock:
            taken, self._pending, self._rows = list(self._pending), deque(), 0
        if not taken:
            return 0
        groups: dict[tuple[str, dt.date], list[pa.Table]] = {}
        for run, received, rows in taken:
            stamped = rows.append_column("received_at", pa.repeat(pa.scalar(received, pa.timestamp("us", "UTC")),
                                                                  rows.num_rows))
            groups.setdefault((run, received.date()), []).append(stamped)
        try:
            return sum(self._append(run, day, tables) for (run, day), tables in groups.items())
        except Exception as exc:  # noqa: BLE001 - the server goes on; the rows wait for the next flush
            log.warning("online log: appending %d rows to %s failed, kept for the next flush: %s",
                        sum(t.num_rows for _, _, t in taken), self.table, exc)
            with self._lock:
                self._pending.extendleft(reversed(taken))
                self._rows += sum(t.num_rows for _, _, t in taken)
            return 0

    def _append(self, run: str, day: dt.date, tables: list[pa.Table]) -> int:
        from batchcast.warehouses import open_warehouse

        rows = pa.concat_tables(tables, promote_options="permissive")
        schema = _schema(rows)
        with open_warehouse(self.spec.warehouse_url) as warehouse:
            written = warehouse.publish(self.table, schema, rows.to_batches(), logical_date=day, run_id=self.run_id,
                                        model_run=run, source=f"[serve] log_table {self.table}", append=True)
        return written

    def _dropped(self, rows: int) -> None:
        log.warning("online log: %d rows dropped, over [serve] log_max_rows = %d waiting", rows, self.max_rows)
        if self.metrics is not None:
            self.metrics.log_dropped.inc(rows)


def _schema(rows: pa.Table) -> Schema:
    """The log table's columns, from the Arrow types of what the server read and predicted."""
    arrow = {pa.types.is_floating: "FLOAT64", pa.types.is_integer: "INT64", pa.types.is_boolean: "BOOL",
             pa.types.is_timestamp: "TIMESTAMP"}
    return Schema([Column(field.name, next((t for test, t in arrow.items() if test(field.type)), "STRING"))
                   for field in rows.schema])
