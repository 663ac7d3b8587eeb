"""What a published table must look like, and which of its rows a period owns: the rules every backend shares."""

from __future__ import annotations

import datetime as dt

from batchcast.data.schema import Schema
from batchcast.errors import SchemaError
from batchcast.scheduling.periods import Period


def period_column(period: Period) -> tuple[str, dt.date | dt.datetime]:
    """(column, value) a period's rows are found by: ``_logical_date`` for a day, ``_interval_start`` for a
    sub-daily period (:meth:`Warehouse.publish`)."""
    return ("_interval_start", period) if isinstance(period, dt.datetime) else ("_logical_date", period)


def check_columns(existing: dict[str, str] | None, table: str, schema: Schema, quoted: str,
                  timestamp_type: str) -> None:
    """SchemaError unless the table is new (``existing`` None) or has exactly ``schema``'s columns.

    A daily table that a sub-daily action now writes lacks ``_interval_start`` alone: that is named, with the
    one statement that migrates it (its daily rows keep NULL there, and no period of the new kind owns them).
    """
    declared = {c.name: c.type for c in schema}
    if existing is None or existing == declared:
        return
    if "_interval_start" not in existing and {**existing, "_interval_start": "TIMESTAMP"} == declared:
        raise SchemaError(f"table {table} holds the rows of daily periods, and this action's schedule ticks more "
                          "than once a day: its rows need the column _interval_start",
                          f"migrate the table once: ALTER TABLE {quoted} ADD COLUMN _interval_start "
                          f"{timestamp_type} (its daily rows keep NULL there), or deliver into a new table")
    raise SchemaError(f"table {table} has columns {_fmt(existing)}, but the declared schema is {_fmt(declared)}",
                      "migrate the table, or deliver into a new table name")


def _fmt(columns: dict[str, str]) -> str:
    return ",".join(f"{k}:{v}" for k, v in columns.items())
