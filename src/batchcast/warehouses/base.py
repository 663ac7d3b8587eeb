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
from batchcast.data.schema import STAMPS, Schema, conform, is_identifier
from batchcast.errors import InputError, SchemaError, SpecError
from batchcast.redaction import redact


class Warehouse(abc.ABC):
    """Where predictions are delivered, one logical date at a time."""

    quote_char = '"'
    # How one part of a query split by a hash of its id columns is selected (``slice``):
    # the type ids are cast to, and a bucket in 0..parts-1 of the text ``key``.
    text_type = "VARCHAR"
    bucket_sql = "hash({key}) % {parts}"

    def __init__(self, url: str):
        self.url = url
        self.shown = redact(url)  # what messages and logs may say of the URL: its secrets masked

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
    def _replace_date(self, table: str, schema: Schema, logical_date: dt.date | None,
                      stream: pa.RecordBatchReader) -> None:
        """In one transaction: create the table if needed, delete the date's rows, insert ``stream``.

        ``logical_date`` None appends: nothing is deleted. If anything raises,
        nothing of it may be visible.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

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
                logical_date: dt.date, run_id: str, model_run: str | None, source: str,
                allow_empty: bool = False, append: bool = False, prepare: Callable[[int], None] | None = None) -> int:
        """Replace ``logical_date``'s rows of ``table`` with ``batches``, stamped; with ``append``, add them.

        Every batch is conformed to ``schema`` first; a mismatch raises
        SchemaError and the transaction leaves the table as it was. No rows
        at all raises InputError the same way, unless ``allow_empty``: an
        empty result is far more often a broken model than an empty day.
        ``prepare(rows)`` is called once every row is written and before the
        transaction commits: if it raises, nothing is published.
        """
        self.quote(table)  # a hostile name stops here, before any backend sees it
        full = schema + STAMPS
        self._check_columns(table, full)
        stamps = {"_logical_date": logical_date, "_run_id": run_id, "_model_run": model_run,
                  "_predicted_at": dt.datetime.now(dt.UTC)}

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
                        longest[:] = [pa.repeat(pa.scalar(stamps[c.name], c.arrow), n) for c in STAMPS]
                    rows += n
                    yield pa.RecordBatch.from_arrays(batch.columns + [c.slice(0, n) for c in longest], schema=arrow)
            finally:  # on the producer's thread, before the publish returns: the source's own cleanup
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
            if rows == 0 and not (allow_empty or append):
                raise InputError(f"{source} holds no rows for {logical_date}; publishing it would delete the "
                                 f"date's rows in {table}", "check the model's output; if no predictions is a "
                                 "legitimate result, set allow_empty = true in the action's output table")
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

    def _check_columns(self, table: str, schema: Schema) -> None:
        existing = self.columns(table)
        declared = {c.name: c.type for c in schema}
        if existing is not None and existing != declared:
            raise SchemaError(
                f"table {table} has columns {_fmt(existing)}, but the declared schema is {_fmt(declared)}",
                "migrate the table, or deliver into a new table name")

    def slice(self, query: str, ids: list[str], parts: int, index: int) -> str:
        """``query`` limited to part ``index`` of ``parts`` disjoint parts, by a hash of its ``ids`` columns.

        Together the parts hold every row once, provided the query gives the
        same rows each time it runs (no ``random()``, no bare ``LIMIT``).
        """
        texts = [f"coalesce(CAST({self.quote_ident(c)} AS {self.text_type}), '')" for c in ids]  # NULL ids too
        bucket = self.bucket_sql.format(key=" || '|' || ".join(texts), parts=int(parts))
        return f"SELECT * FROM (\n{query.strip().rstrip(';')}\n) AS q WHERE {bucket} = {int(index)}"

    def count(self, table: str, logical_date: dt.date | None = None, *, run_id: str | None = None) -> int:
        """Rows in ``table``, or in one logical date of it, or those one run published."""
        where = [f"_logical_date = DATE '{logical_date.isoformat()}'"] if logical_date else []
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


def _fmt(columns: dict[str, str]) -> str:
    return ",".join(f"{k}:{v}" for k, v in columns.items())
