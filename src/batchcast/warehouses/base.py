"""The Warehouse port.

A backend supplies five things: ``_connect_columns`` (the existing table's
columns), ``_replace_date`` (one transaction that swaps a logical date's rows),
``read``, ``close`` and its identifier quoting. The base class derives the
rest: schema checks, stamping, counting and previews. Backends translate their
driver's exceptions into WarehouseError at their boundary.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from batchcast.data.ahead import Ahead
from batchcast.data.schema import INTERVAL_STAMP, STAMPS, STREAM_STAMPS, Schema, conform, is_identifier
from batchcast.errors import InputError, SchemaError, SpecError
from batchcast.redaction import redact
from batchcast.scheduling import periods
from batchcast.scheduling.periods import Period
from batchcast.warehouses.tables import check_columns, period_column

Positions = dict[tuple[str, int], int]  # (topic, partition) -> the offset of the next message to read
POSITIONS = "_batchcast_stream_positions"  # the table where stream deliveries keep their positions


class Warehouse(abc.ABC):
    """Where predictions are delivered, one logical date at a time."""

    quote_char = '"'
    # How one part of a query split by a hash of its id columns is selected (``slice``):
    # the type ids are cast to, and a bucket in 0..parts-1 of the text ``key``.
    text_type = "VARCHAR"
    timestamp_type = "TIMESTAMPTZ"  # the SQL type of a TIMESTAMP column
    # Whether :meth:`deliver` works here (a stream's rows and positions in one transaction).
    streams = False
    bucket_sql = "hash({key}) % {parts}"

    def __init__(self, url: str):
        self.url = url
        self.shown = redact(url)  # what messages and logs may say of the URL: its secrets masked
        self._streamed: set[str] = set()  # tables whose columns deliver() has checked

    @classmethod
    def resolve_url(cls, url: str, root: Path) -> str:
        """``url`` as written in a spec in folder ``root``, made independent of the working directory."""
        return url

    @classmethod
    def local_file(cls, url: str) -> Path | None:
        """The file on this machine the warehouse lives in, for a file-based one; it has one writer at a time."""
        return None

    @classmethod
    def reading_url(cls, url: str) -> str:
        """``url`` for one of many processes reading at once while none writes (Beam's workers)."""
        return url

    # -- what a backend provides -----------------------------------------

    @abc.abstractmethod
    def read(self, query: str, batch_size: int = 65536) -> pa.RecordBatchReader:
        """Stream the result of ``query`` as Arrow record batches."""

    @abc.abstractmethod
    def columns(self, table: str) -> dict[str, str] | None:
        """The table's columns as ``{name: batchcast TYPE}``, or None if it does not exist."""

    @abc.abstractmethod
    def _replace_date(self, table: str, schema: Schema, logical_date: Period | None,
                      stream: pa.RecordBatchReader) -> None:
        """In one transaction: create the table if needed, delete the date's rows, insert ``stream``.

        ``logical_date`` None appends: nothing is deleted. If anything raises,
        nothing of it may be visible.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def _deliver(self, table: str, schema: Schema, rows: pa.Table, consumer: str, positions: Positions | None) -> int:
        """In one transaction: create the tables if needed, insert the rows not yet in ``table``, store the
        positions; the rows inserted. See :meth:`deliver`. A backend that cannot says so."""
        raise SpecError(f"batchcast stream cannot deliver into a {type(self).__name__} table exactly once",
                        "stream into DuckDB or PostgreSQL, or into a topic the warehouse loads")

    def _positions(self, consumer: str, partitions: list[tuple[str, int]]) -> Positions:
        """The stored positions of ``consumer`` for ``partitions``; see :meth:`positions`."""
        return {}

    # -- derived ----------------------------------------------------------

    def quote_ident(self, name: str) -> str:
        """Validate and quote one identifier: a column, a table or a schema name."""
        if not is_identifier(name):
            raise SpecError(f"'{name}' is not a valid table, schema or column name",
                            "use letters, digits and underscores, starting with a letter")
        return f"{self.quote_char}{name}{self.quote_char}"

    def quote(self, name: str) -> str:
        """Validate and quote a possibly schema-qualified table name."""
        parts = name.split(".")
        if len(parts) > 2:
            raise SpecError(f"'{name}' is not a valid table name", "use table or schema.table")
        return ".".join(self.quote_ident(p) for p in parts)

    def publish(self, table: str, schema: Schema, batches: Iterable[pa.RecordBatch], *,
                logical_date: Period, run_id: str, model_run: str | None, source: str,
                allow_empty: bool = False, append: bool = False, prepare: Callable[[int], None] | None = None) -> int:
        """Replace the period's rows of ``table`` with ``batches``, stamped; with ``append``, add them.

        A day's rows are those of its ``_logical_date``; a sub-daily period's (``logical_date`` an
        instant) those of its ``_interval_start``, a column only the tables of sub-daily actions have.

        Every batch is conformed to ``schema`` first; a mismatch raises
        SchemaError and the transaction leaves the table as it was. No rows
        at all raises InputError the same way, unless ``allow_empty``: an
        empty result is far more often a broken model than an empty day.
        ``prepare(rows)`` is called once every row is written and before the
        transaction commits: if it raises, nothing is published.
        """
        self.quote(table)  # a hostile name stops here, before any backend sees it
        subdaily = isinstance(logical_date, dt.datetime)
        full = schema + STAMPS + (INTERVAL_STAMP if subdaily else Schema([]))
        self._check_columns(table, full)
        stamps = {"_logical_date": periods.day(logical_date), "_run_id": run_id, "_model_run": model_run,
                  "_predicted_at": dt.datetime.now(dt.UTC), "_interval_start": logical_date if subdaily else None}
        stamp_columns = [c for c in full if c.name in stamps]

        arrow = full.to_arrow()
        # The stamp columns of the longest batch so far, sliced for shorter ones (zero-copy):
        # built once, not once per batch.
        longest: list[pa.Array] = []

        def stamped() -> Iterator[pa.RecordBatch]:
            rows = 0
            try:
                for batch in batches:
                    batch = conform(batch, schema, source)
                    n = batch.num_rows
                    if not longest or len(longest[0]) < n:
                        longest[:] = [pa.repeat(pa.scalar(stamps[c.name], c.arrow), n) for c in stamp_columns]
                    rows += n
                    yield pa.RecordBatch.from_arrays(batch.columns + [c.slice(0, n) for c in longest], schema=arrow)
            finally:  # on the producer's thread, before the publish returns: the source's own cleanup
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
            if rows == 0 and not (allow_empty or append):
                raise InputError(f"{source} holds no rows for {periods.key(logical_date)}; publishing it would "
                                 f"delete the period's rows in {table}", "check the model's output; if no "
                                 "predictions is a legitimate result, set allow_empty = true in the action's output "
                                 "table")
            if prepare is not None:
                prepare(rows)

        # Produced on a thread ahead of the driver's ingest: the two halves overlap on two cores.
        produced = Ahead(stamped())
        stream = _Stream(iter(produced))
        try:
            self._replace_date(table, full, None if append else logical_date,
                               pa.RecordBatchReader.from_batches(full.to_arrow(), stream))
        except Exception:
            if stream.error is not None:
                # The driver wraps what the producer raised; the producer's own
                # error (a SchemaError, the model's ModelError, the user's Ctrl-C) is the one to report.
                # Re-raised as it is: its own __cause__ (the model's traceback) must survive.
                raise stream.error  # noqa: B904
            raise
        finally:
            produced.close()  # before anyone closes the cursor it reads from
        return stream.rows

    def deliver(self, table: str, schema: Schema, rows: pa.Table, *, consumer: str,
                positions: Positions | None) -> int:
        """Append a stream's scored ``rows`` (``schema`` + STREAM_STAMPS) exactly once; the rows added.

        In one transaction with the rows, ``positions`` (Kafka's: where each
        partition resumes) are stored for ``consumer`` in :data:`POSITIONS`,
        and rows from before a partition's stored position are skipped: a batch
        delivered again (a crash before the broker heard of it, a zombie
        consumer) adds nothing. Without positions (Pub/Sub) a row whose
        ``_message_id`` the table holds already is skipped instead.
        """
        self.quote(table)
        full = schema + STREAM_STAMPS
        if table not in self._streamed:  # once per table and connection: a stream delivers many small batches
            self._check_columns(table, full)
            self._streamed.add(table)
        try:
            rows = rows.select(full.names).cast(full.to_arrow())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError) as exc:
            raise SchemaError(f"the stream's rows for {table} do not fit its schema {full}: {exc}",
                              "check [stream] schema against the model's output") from None
        return self._deliver(table, full, rows, consumer, positions)

    def positions(self, consumer: str, partitions: list[tuple[str, int]]) -> Positions:
        """Where ``consumer`` resumes each of ``partitions`` (topic, partition), as its deliveries stored it."""
        return self._positions(consumer, partitions)

    def _delivery(self, table: str, full: Schema, staged: str, consumer: str,
                  positions: Positions | None) -> tuple[list[str], str, list[str]]:
        """The SQL of a delivery, for the backends' ``_deliver``: the tables to create, the insert of the rows
        not yet delivered from the table ``staged``, and the statements that store the positions."""
        quoted, stored = self.quote(table), self.quote(POSITIONS)
        columns = ", ".join(self.quote_ident(c) for c in full.names)
        text = self.text_type
        create = [f"CREATE TABLE IF NOT EXISTS {stored} (consumer {text}, source {text}, part BIGINT, "
                  "next_offset BIGINT, PRIMARY KEY (consumer, source, part))"]
        if positions is None:  # Pub/Sub: a redelivered message is known by its id
            where = (f"NOT EXISTS (SELECT 1 FROM {quoted} AS t WHERE t._message_id = r._message_id "
                     "AND t._source = r._source)")
            join = ""
        else:
            join = (f" LEFT JOIN {stored} AS p ON p.consumer = {_literal(consumer)} AND p.source = r._source "
                    "AND p.part = r._partition")
            where = "p.next_offset IS NULL OR r._offset >= p.next_offset"
        picked = ", ".join(f"r.{self.quote_ident(c)}" for c in full.names)
        insert = f"INSERT INTO {quoted} ({columns}) SELECT {picked} FROM {staged} AS r{join} WHERE {where}"
        values = ", ".join(f"({_literal(consumer)}, {_literal(topic)}, {int(part)}, {int(offset)})"
                           for (topic, part), offset in sorted((positions or {}).items()))
        store = [f"INSERT INTO {stored} (consumer, source, part, next_offset) VALUES {values} "
                 "ON CONFLICT (consumer, source, part) DO UPDATE SET "
                 f"next_offset = greatest({stored}.next_offset, excluded.next_offset)"] if values else []
        return create, insert, store

    def _positions_sql(self, consumer: str, partitions: list[tuple[str, int]]) -> str:
        pairs = " OR ".join(f"(source = {_literal(t)} AND part = {int(p)})" for t, p in partitions) or "false"
        return (f"SELECT source, part, next_offset FROM {self.quote(POSITIONS)} "
                f"WHERE consumer = {_literal(consumer)} AND ({pairs})")

    def _check_columns(self, table: str, schema: Schema) -> None:
        check_columns(self.columns(table), table, schema, self.quote(table), self.timestamp_type)

    def slice(self, query: str, ids: list[str], parts: int, index: int) -> str:
        """``query`` limited to part ``index`` of ``parts`` disjoint parts, by a hash of its ``ids`` columns.

        Together the parts hold every row once, provided the query gives the
        same rows each time it runs (no ``random()``, no bare ``LIMIT``).
        """
        texts = [f"coalesce(CAST({self.quote_ident(c)} AS {self.text_type}), '')" for c in ids]  # NULL ids too
        bucket = self.bucket_sql.format(key=" || '|' || ".join(texts), parts=int(parts))
        return f"SELECT * FROM (\n{query.strip().rstrip(';')}\n) AS q WHERE {bucket} = {int(index)}"

    def count(self, table: str, logical_date: Period | None = None, *, run_id: str | None = None) -> int:
        """Rows in ``table``, or in one period of it, or those one run published."""
        where = []
        if logical_date is not None:
            column, value = period_column(logical_date)
            kind = "DATE" if column == "_logical_date" else self.timestamp_type
            where.append(f"{column} = CAST('{value.isoformat()}' AS {kind})")  # a date or an instant: no text
        if run_id is not None:
            where.append("_run_id = '" + run_id.replace("'", "''") + "'")
        sql = f"SELECT count(*) AS n FROM {self.quote(table)}" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self.read(sql) as reader:
            return reader.read_all()["n"][0].as_py()

    def preview(self, table: str, limit: int = 10) -> pa.Table:
        """The first ``limit`` rows of ``table``, newest logical date first."""
        with self.read(f"SELECT * FROM {self.quote(table)} ORDER BY _logical_date DESC "
                       f"LIMIT {int(limit)}") as reader:
            return reader.read_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Stream:
    """Batches handed to a driver, counted; keeps what the producer raised."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self.batches, self.rows, self.error = batches, 0, None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self.batches:
                self.rows += batch.num_rows
                yield batch
        except GeneratorExit:  # the driver stopped reading: not the producer's error
            raise
        except BaseException as exc:  # a KeyboardInterrupt too: drivers wrap it as a failed read
            self.error = exc
            raise


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (a consumer group or a topic name, both checked before)."""
    return "'" + text.replace("'", "''") + "'"
