"""PostgreSQL through ADBC: ``postgresql://user@host:port/db?schema=analytics``.

Bulk loads go through ``adbc_ingest`` (COPY underneath), streamed from the
batches, inside the same transaction as the DELETE of the logical date, so a
publish that fails or is killed half-way leaves the table as it was. The
password comes from the environment (``PGPASSWORD``, ``~/.pgpass``) as libpq
reads it; the ``schema`` parameter is batchcast's, not libpq's.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa

from batchcast.data.schema import Schema
from batchcast.errors import QueryError, WarehouseError, WarehouseUnavailable
from batchcast.redaction import first_line
from batchcast.scheduling.periods import Period
from batchcast.warehouses.base import Warehouse
from batchcast.warehouses.tables import period_column

SQL_TYPES = {"STRING": "TEXT", "INT64": "BIGINT", "FLOAT64": "DOUBLE PRECISION", "BOOL": "BOOLEAN",
             "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ"}
FROM_SQL = {"text": "STRING", "bigint": "INT64", "double precision": "FLOAT64", "boolean": "BOOL",
            "date": "DATE", "timestamp with time zone": "TIMESTAMP"}

log = logging.getLogger("batchcast")


class PostgresWarehouse(Warehouse):
    text_type = "TEXT"
    streams = True
    bucket_sql = "abs(hashtext({key})::bigint) % {parts}"  # hashtext is an int4: abs of its minimum overflows

    def __init__(self, url: str):
        super().__init__(url)
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        self.schema = params.pop("schema", "public")
        self.uri = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(params)))
        self._conn = None
        # Each read streams on its own connection: libpq cannot interleave a
        # streaming SELECT with the COPY of a publish on one connection.
        self._readers: list = []

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self):
        try:
            conn = pg.connect(self.uri)
            with conn.cursor() as cur:  # unqualified names in queries mean ?schema=
                cur.execute(f"SET search_path TO {self.quote_ident(self.schema)}, public")
            conn.commit()
            return conn
        except adbc_driver_manager.Error as exc:
            raise WarehouseUnavailable(f"cannot connect to {self.shown}: {first_line(exc)}",
                                       "check that PostgreSQL is up and the URL and PGPASSWORD are right") from None

    def _qualified(self, table: str) -> tuple[str, str]:
        schema, _, name = table.rpartition(".")
        return schema or self.schema, name

    def quote(self, name: str) -> str:
        if name.count(".") > 1:
            return super().quote(name)  # refused there, with the message
        return ".".join(self.quote_ident(part) for part in self._qualified(name))

    def read(self, query: str, batch_size: int = 65536) -> pa.RecordBatchReader:
        conn = self._connect()
        cur = conn.cursor()
        try:
            cur.execute(query)
            reader = cur.fetch_record_batch()
        except adbc_driver_manager.Error as exc:
            cur.close()
            conn.close()
            raise QueryError(f"query failed on {self.shown}: {first_line(exc)}",
                                 "check the SQL and the tables it names") from None
        self._readers.append((reader, cur, conn))
        # The driver sizes batches in bytes (16 MB); callers asked for rows.
        return pa.RecordBatchReader.from_batches(reader.schema, _sliced(reader, batch_size))

    def columns(self, table: str) -> dict[str, str] | None:
        schema, name = self._qualified(table)
        with self.conn.cursor() as cur:
            cur.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position", (schema, name))
            rows = cur.fetchall()
        self.conn.rollback()  # end the read's transaction
        return {col: FROM_SQL.get(kind, kind) for col, kind in rows} or None

    def _replace_date(self, table: str, schema: Schema, logical_date: Period | None,
                      stream: pa.RecordBatchReader) -> None:
        db_schema, name = self._qualified(table)
        cur = self.conn.cursor()
        try:
            self._create(cur, table, schema)
            if logical_date is not None:  # None appends
                column, value = period_column(logical_date)
                cur.execute(f"DELETE FROM {self.quote(table)} WHERE {column} = $1", (value,))
            cur.adbc_ingest(name, stream, mode="append", db_schema_name=db_schema)
            self.conn.commit()
        except BaseException as exc:
            self._failed(exc, table)
            raise
        finally:
            _close_quietly(cur)

    def _deliver(self, table, schema, rows, consumer, positions) -> int:
        create, insert, store = self._delivery(table, schema, "_batchcast_rows", consumer, positions)
        cur = self.conn.cursor()
        try:
            # One delivery into a table at a time: two replicas (or a zombie and its successor) reading the same
            # positions or message ids under READ COMMITTED could otherwise both insert. Released at COMMIT.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", (f"batchcast-stream:{self.quote(table)}",))
            self._create(cur, table, schema)
            for sql in create:
                cur.execute(sql)
            if positions is None:  # Pub/Sub's message ids are looked up per batch: an index, not a scan
                index = self.quote_ident(f"{self._qualified(table)[1]}_message_ids"[:63])
                cur.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {self.quote(table)} (_message_id, _source)")
            # COPY into a temporary table, then one INSERT of the rows not delivered yet.
            cur.adbc_ingest("_batchcast_rows", rows, mode="replace", temporary=True)
            cur.execute(insert)
            added = cur.rowcount
            for sql in store:
                cur.execute(sql)
            cur.execute("DROP TABLE _batchcast_rows")
            self.conn.commit()
            return added
        except BaseException as exc:
            self._failed(exc, table)
            raise
        finally:
            _close_quietly(cur)

    def _positions(self, consumer, partitions):
        from batchcast.warehouses.base import POSITIONS

        if self.columns(POSITIONS) is None:
            return {}
        with self.conn.cursor() as cur:
            cur.execute(self._positions_sql(consumer, partitions))
            rows = cur.fetchall()
        self.conn.rollback()
        return {(source, part): offset for source, part, offset in rows}

    def _create(self, cur, table: str, schema: Schema) -> None:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote_ident(self._qualified(table)[0])}")
        cols = ", ".join(f"{self.quote_ident(c.name)} {SQL_TYPES[c.type]}" for c in schema)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.quote(table)} ({cols})")

    def _failed(self, exc: BaseException, table: str) -> None:
        """Roll back a failed write, and raise its error as the port's (the caller re-raises anything else)."""
        connected = self._rollback()
        if isinstance(exc, adbc_driver_manager.Error) and not connected:
            # The server died or dropped the connection mid-write: what it had is rolled back by the
            # server itself, and the failed ROLLBACK's own message says nothing about why.
            raise WarehouseUnavailable(f"writing {table} in {self.shown}: the connection was lost "
                                       f"({first_line(exc)}); nothing was committed",
                                       "run it again when the server is back (the scheduler retries)") from None
        if isinstance(exc, adbc_driver_manager.Error):
            raise WarehouseError(f"writing {table} in {self.shown} failed: {first_line(exc)}",
                                 "see the message; nothing was written") from None

    def _rollback(self) -> bool:
        """Roll back the open transaction; False (and the connection dropped) if the connection is gone."""
        try:
            self.conn.rollback()
            return True
        except adbc_driver_manager.Error as exc:
            log.warning("rollback on %s failed (%s); dropping the connection", self.shown, first_line(exc))
            _close_quietly(self._conn)
            self._conn = None
            return False

    def close(self) -> None:
        for reader, cur, conn in self._readers:
            reader.close()
            cur.close()
            conn.close()
        self._readers.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _close_quietly(closable) -> None:
    try:
        closable.close()
    except adbc_driver_manager.Error:  # already closed by a lost connection
        pass


def _sliced(reader: pa.RecordBatchReader, rows: int):
    for batch in reader:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)
