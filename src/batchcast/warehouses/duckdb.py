"""DuckDB: the embedded default warehouse (``duckdb:///path/to/file.duckdb``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import parse_qsl

import duckdb
import pyarrow as pa

from batchcast.data.schema import Schema
from batchcast.errors import QueryError, SpecError, WarehouseError, WarehouseUnavailable
from batchcast.redaction import first_line, redact, scrub
from batchcast.scheduling.periods import Period
from batchcast.warehouses.base import Warehouse
from batchcast.warehouses.tables import period_column

SQL_TYPES = {"STRING": "VARCHAR", "INT64": "BIGINT", "FLOAT64": "DOUBLE", "BOOL": "BOOLEAN",
             "DATE": "DATE", "TIMESTAMP": "TIMESTAMP WITH TIME ZONE"}
FROM_SQL = {v: k for k, v in SQL_TYPES.items()}
PREFIX = "duckdb:///"
log = logging.getLogger("batchcast")


# DuckDB keeps every page it reads cached up to its memory limit, which by
# default is most of the machine: application memory would then grow with the
# input. A small limit keeps it flat; DuckDB spills to disk beyond it.
# Raise it per warehouse with duckdb:///file.duckdb?memory_limit=4GB.
DEFAULT_CONFIG = {"memory_limit": "256MB"}
# One process at a time may write a DuckDB file. A second run waits for the lock this
# many seconds (?lock_wait=N, batchcast's own parameter) before it fails, as the scheduler's
# runs wait: two manual runs for two dates should both succeed, one after the other.
LOCK_WAIT_S = 120.0


class DuckDBWarehouse(Warehouse):
    """A DuckDB file; ``duckdb:///rel/path``, ``duckdb:////abs/path`` or ``duckdb:///:memory:``.

    Query parameters are DuckDB settings: ``?memory_limit=4GB&threads=4``, and
    ``lock_wait``: seconds to wait for another process's lock on the file.
    """

    streams = True

    def __init__(self, url: str):
        super().__init__(url)
        location, _, query = url[len(PREFIX):].partition("?")
        self.path = location or ":memory:"
        self.config = {**DEFAULT_CONFIG, **dict(parse_qsl(query))}
        self.lock_wait = _seconds(self.config.pop("lock_wait", LOCK_WAIT_S), url)
        self._con: duckdb.DuckDBPyConnection | None = None
        # A reader left open keeps the file locked, even after the connection closes.
        self._readers: list[tuple[pa.RecordBatchReader, duckdb.DuckDBPyConnection]] = []

    @classmethod
    def reading_url(cls, url: str) -> str:
        # Read-only: many processes may open the file at once, and they wait for a writer's lock as runs do.
        return url + ("&" if "?" in url else "?") + "access_mode=READ_ONLY"

    @classmethod
    def resolve_url(cls, url: str, root: Path) -> str:
        # duckdb:///rel/path is relative to the spec; duckdb:////abs/path is absolute.
        rest = url[len(PREFIX):] if url.startswith(PREFIX) else ""
        if rest.partition("?")[0] in ("", ":memory:"):  # a service's predictions must outlive its process
            raise SpecError(f"[warehouse] url '{redact(url)}' is an in-memory database: every run's rows would "
                            "vanish when its process ends", "name a file, e.g. duckdb:///.batchcast/warehouse.duckdb")
        if not rest.startswith("/"):
            return PREFIX + str((root / rest).resolve())
        return url

    @classmethod
    def local_file(cls, url: str) -> Path | None:
        location = url[len(PREFIX):].partition("?")[0]
        return None if location in ("", ":memory:") else Path(location)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = _quiet(self._connect())
        return self._con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline, pause, waiting = time.monotonic() + self.lock_wait, 0.1, False
        while True:
            try:
                return duckdb.connect(self.path, config=self.config)
            except duckdb.InvalidInputException as exc:
                raise SpecError(f"warehouse url {self.shown}: {scrub(first_line(exc), self.url)}",
                                "use DuckDB setting names and values, e.g. ?memory_limit=4GB") from None
            except duckdb.IOException as exc:
                error = _open_error(self.path, exc)
                if not error.transient or time.monotonic() + pause > deadline:
                    if error.transient:
                        error.message += f" (waited {self.lock_wait:g} s for its lock)"
                    raise error from None
                if not waiting:
                    log.info("%s is locked by another process; waiting up to %g s", self.path, self.lock_wait)
                    waiting = True
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def read(self, query: str, batch_size: int = 65536) -> pa.RecordBatchReader:
        cursor = _quiet(self.con.cursor())
        try:
            reader = cursor.sql(query).to_arrow_reader(batch_size)
        except duckdb.Error as exc:
            cursor.close()
            raise QueryError(f"query failed on {self.path}: {first_line(exc)}",
                                 "check the SQL and the tables it names") from None
        self._readers.append((reader, cursor))
        return reader

    def columns(self, table: str) -> dict[str, str] | None:
        schema, _, name = table.rpartition(".")
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = ? ORDER BY ordinal_position",
            [name, schema or "main"]).fetchall()
        return {col: FROM_SQL.get(kind, kind) for col, kind in rows} or None

    def _replace_date(self, table: str, schema: Schema, logical_date: Period | None,
                      stream: pa.RecordBatchReader) -> None:
        quoted = self.quote(table)
        cur = self.con
        try:
            cur.execute("BEGIN TRANSACTION")
            self._create(cur, table, schema)
            if logical_date is not None:  # None appends
                column, value = period_column(logical_date)
                cur.execute(f"DELETE FROM {quoted} WHERE {column} = ?", [value])
            # One INSERT over a stream: DuckDB writes large inserts straight to
            # disk, where per-batch INSERTs kept every batch in memory until COMMIT.
            cur.register("_batchcast_stream", stream)
            cur.execute(f"INSERT INTO {quoted} BY NAME SELECT * FROM _batchcast_stream")
            cur.unregister("_batchcast_stream")
            cur.execute("COMMIT")
        except BaseException as exc:
            self._failed(cur, exc, table)
            raise

    def _create(self, cur, table: str, schema: Schema) -> None:
        if "." in table:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote_ident(table.split('.')[0])}")
        cols = ", ".join(f"{self.quote_ident(c.name)} {SQL_TYPES[c.type]}" for c in schema)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.quote(table)} ({cols})")

    def _failed(self, cur, exc: BaseException, table: str) -> None:
        """Roll back a failed write, and raise its error as the port's (the caller re-raises anything else)."""
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:  # a COMMIT that failed (a full disk) has rolled back already: its error counts
            pass
        if _interrupted(exc):  # DuckDB saw the Ctrl-C before Python did
            raise KeyboardInterrupt from exc
        if isinstance(exc, duckdb.Error):
            raise WarehouseError(f"writing {table} in {self.path} failed: {first_line(exc)}",
                                 _write_fix(exc, self.path)) from None

    def _deliver(self, table, schema, rows, consumer, positions) -> int:
        create, insert, store = self._delivery(table, schema, "_batchcast_rows", consumer, positions)
        cur = self.con
        try:
            cur.execute("BEGIN TRANSACTION")
            self._create(cur, table, schema)
            for sql in create:
                cur.execute(sql)
            cur.register("_batchcast_rows", rows)
            added = cur.execute(insert).fetchone()[0]
            cur.unregister("_batchcast_rows")
            for sql in store:
                cur.execute(sql)
            cur.execute("COMMIT")
            return added
        except BaseException as exc:
            self._failed(cur, exc, table)
            raise

    def _positions(self, consumer, partitions):
        from batchcast.warehouses.base import POSITIONS

        if self.columns(POSITIONS) is None:
            return {}
        rows = self.con.execute(self._positions_sql(consumer, partitions)).fetchall()
        return {(source, part): offset for source, part, offset in rows}

    def close(self) -> None:
        for reader, cursor in self._readers:
            reader.close()
            cursor.close()
        self._readers.clear()
        if self._con is not None:
            self._con.close()
            self._con = None


def _write_fix(exc: Exception, path: str) -> str:
    if "No space left" in str(exc) or "disk is full" in str(exc).lower():
        return f"free space on the disk that holds {path}; nothing was written, and the table is as it was"
    return "see the message; nothing was written"


def _interrupted(exc: BaseException) -> bool:
    # A Ctrl-C that DuckDB takes while it waits for the stream's next batch (read on the publish's
    # producer thread) comes out as a plain RuntimeError, not as InterruptException.
    return isinstance(exc, duckdb.InterruptException) or (
        type(exc) is RuntimeError and str(exc).strip() == "Query interrupted")


def _quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    # DuckDB draws a progress bar on stdout for long queries; stdout belongs to the CLI.
    con.execute("SET enable_progress_bar = false")
    return con


def _open_error(path: str, exc: Exception) -> WarehouseError:
    """Why a DuckDB file would not open: another process's lock is worth waiting for; a bad file is not."""
    if Path(path).is_dir():
        return WarehouseError(f"cannot open {path}: it is a folder, not a DuckDB file",
                              "point [warehouse] url at a file, e.g. duckdb:///.batchcast/warehouse.duckdb")
    if "not a valid DuckDB database" in str(exc):
        return WarehouseError(f"cannot open {path}: it is not a DuckDB database (corrupt, or another format)",
                              "move it away and run again to start an empty warehouse, or restore it from a backup")
    # Another process holds the file's write lock: worth retrying later.
    return WarehouseUnavailable(f"cannot open {path}: {first_line(exc)}",
                                "wait for the other process using it to finish, or raise ?lock_wait=SECONDS "
                                "in [warehouse] url")


def _seconds(value, url: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise SpecError(f"warehouse url {redact(url)}: lock_wait={value} is not a number of seconds",
                        "write e.g. ?lock_wait=300")
    return seconds
