"""Inputs of the Python contract as streams of Arrow record batches.

An input is a SQL query on the warehouse or Parquet/CSV files on any fsspec
URL; both are templated with the logical date first (``{{ ds }}``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
import pyarrow as pa

from batchcast.errors import InputError, QueryError, SpecError
from batchcast.scheduling import periods
from batchcast.scheduling.periods import Period

if TYPE_CHECKING:  # the data plane sits below the spec and the warehouses: it is handed both
    from batchcast.spec import InputSpec
    from batchcast.warehouses import Warehouse

_VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def template_vars(period: Period, interval: tuple[dt.datetime, dt.datetime] | None = None) -> dict[str, str]:
    """The variables a query or path may use, named as in Airflow.

    ``ds`` is the period's day (a sub-daily period's UTC day); ``ts``, ``interval_start`` and ``interval_end``
    are ISO instants in UTC (``interval`` as the action's schedule gives it; without it a day's UTC midnights).
    """
    day = periods.day(period)
    start, end = interval or periods.interval(period, None)
    values = {"ds": day.isoformat(), "ds_nodash": day.strftime("%Y%m%d"), "logical_date": periods.key(period),
              "year": f"{day.year:04d}", "month": f"{day.month:02d}", "day": f"{day.day:02d}",
              "ts": start.isoformat(), "ts_nodash": start.strftime("%Y%m%dT%H%M%S"),
              "interval_start": start.isoformat(), "interval_end": end.isoformat(), "hour": f"{start.hour:02d}"}
    return values


def render(template: str, period: Period, where: str,
           interval: tuple[dt.datetime, dt.datetime] | None = None) -> str:
    """Replace ``{{ var }}``; the values are dates and instants, so nothing can inject SQL."""
    values = template_vars(period, interval)

    def sub(match: re.Match) -> str:
        if match.group(1) not in values:
            raise SpecError(f"{where}: unknown template variable '{match.group(1)}'",
                            f"use one of {', '.join('{{ ' + v + ' }}' for v in values)}")
        return values[match.group(1)]

    return _VAR.sub(sub, template)


def open_input(spec: InputSpec, warehouse: Warehouse, root: Path, logical_date: Period,
               batch_size: int, where: str,
               interval: tuple[dt.datetime, dt.datetime] | None = None) -> tuple[pa.RecordBatchReader, str]:
    """The input as a record-batch stream, and a description of it for messages."""
    if spec.query:
        query = render(spec.query, logical_date, f"{where} query", interval)
        try:
            return warehouse.read(query, batch_size), f"query on {warehouse.url.split('://')[0]}"
        except QueryError as exc:  # the query is at fault; a warehouse that cannot open says so itself
            raise InputError(f"{where} query: {exc.message}", f"correct the query in {where}") from None
    path = render(spec.path, logical_date, f"{where} path", interval)
    return _open_files(path, spec.format, root, batch_size, where), path


def matching(path: str, root: Path) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The filesystem of ``path`` (relative to ``root`` unless a URL) and the files it names, sorted."""
    url = path if "://" in path else str(root / path)
    fs, pattern = fsspec.core.url_to_fs(url)
    files = sorted(fs.glob(pattern)) if any(c in pattern for c in "*?[") else (
        [pattern] if fs.exists(pattern) else [])
    return fs, files


def _open_files(path: str, fmt: str | None, root: Path, batch_size: int, where: str) -> pa.RecordBatchReader:
    fs, files = matching(path, root)
    if not files:
        raise InputError(f"{where} path: no files match '{path}'", "check the path and the logical date")
    fmt = fmt or ("csv" if files[0].endswith(".csv") else "parquet")
    import pyarrow.dataset as pads  # imported here: it imports pandas, a cost a warehouse input never needs
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    try:
        dataset = pads.dataset(files, format=fmt, filesystem=PyFileSystem(FSSpecHandler(fs)))
        return dataset.scanner(batch_size=batch_size).to_reader()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{where} path: cannot read '{path}' as {fmt}: {exc}",
                         "check the files' format, or set format") from None


def non_empty(reader: pa.RecordBatchReader, what: str, required: bool = True) -> Iterator[pa.RecordBatch]:
    """Yield ``reader``'s non-empty batches; InputError at the end if there were none and rows are ``required``."""
    rows = 0
    for batch in reader:
        if batch.num_rows:
            rows += batch.num_rows
            yield batch
    if rows == 0 and required:
        raise InputError(f"{what} returned no rows", "check the input and the logical date")
