"""Formatting for the CLI: JSON for machines, rich tables for people, log lines for both.

rich is imported on first use, not with this module, so that ``batchcast --help``
starts fast.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


@cache
def console() -> Console:
    """The console on stdout, made on first use."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=240)  # pipes and CI logs: never cut a run id


@cache
def err_console() -> Console:
    """The console on stderr, made on first use."""
    from rich.console import Console

    return Console(stderr=True)


def status(message: str) -> AbstractContextManager:
    """A spinner showing ``message`` on a terminal; nothing in pipes and CI logs."""
    return console().status(message) if console().is_terminal else nullcontext()


def setup_logging(level: int) -> None:
    """Library log lines on stderr: rich on a terminal, plain lines otherwise."""
    logger = logging.getLogger("batchcast")
    logger.setLevel(level)
    if err_console().is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=err_console(), show_path=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(level)
    if level > logging.DEBUG:
        _without_tracebacks(handler)
    logger.handlers = [h for h in logger.handlers if getattr(h, "_batchcast_cli", False) is False]
    handler._batchcast_cli = True
    logger.addHandler(handler)


def _without_tracebacks(handler: logging.Handler) -> None:
    """Make ``handler`` print a record's message but not its traceback: that is for the run's log and --verbose.

    The record is copied, not changed: the run's own log file, a handler after this one, keeps the traceback.
    """
    emit = handler.emit

    def quiet(record: logging.LogRecord) -> None:
        if record.exc_info or record.exc_text or record.stack_info:
            record = copy.copy(record)
            record.exc_info = record.exc_text = record.stack_info = None
        emit(record)

    handler.emit = quiet


def emit(data: Any, as_json: bool, table: Callable[[], Any] | None) -> None:
    if as_json:
        print(json.dumps(_json_ready(data), indent=2, default=str, allow_nan=False))
    else:
        from rich.table import Table

        rendered = table()
        console().print(rendered if isinstance(rendered, Table) else _arrow_table(rendered))


def _json_ready(data: Any) -> Any:
    """``data`` with each non-finite float as the manifest stores it ("NaN", "Infinity"): JSON has no NaN."""
    if isinstance(data, float) and not math.isfinite(data):
        return "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")
    if isinstance(data, dict):
        return {k: _json_ready(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_json_ready(v) for v in data]
    return data


def backfill_line(done: int, total: int, manifest, err: bool = False) -> None:
    """One line as a backfill queues its dates, then one per date as its run ends, flushed at once (to stderr
    with ``err``: under --json, stdout holds the JSON alone)."""
    import click

    if manifest is None:
        click.echo(f"queued {total} date{'s' if total != 1 else ''} of the range", err=err)
        return
    click.echo(_date_line(done, total, manifest), err=err)


def _date_line(done: int, total: int, m) -> str:
    from batchcast.scheduling import periods

    return f"[{done}/{total}] {periods.key(m.logical_date)} {m.run_id} {m.status.value} rows {json.dumps(m.rows)}"


@contextmanager
def backfill_progress(as_json: bool, running: bool) -> Iterator[Callable[[int, int, Any], None]]:
    """The ``progress`` a backfill reports to: on a terminal, while it runs the dates, a bar of dates done of total
    (each date's line printed above it); otherwise :func:`backfill_line`'s lines, to stderr under --json (stdout
    holds the JSON)."""
    if not running or not err_console().is_terminal:
        yield lambda done, total, manifest: backfill_line(done, total, manifest, err=as_json)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TextColumn("dates"), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=err_console()) as bar:  # the log lines of the runs print above it
        task = None

        def report(done: int, total: int, manifest) -> None:
            nonlocal task
            if manifest is None:
                task = bar.add_task("backfill", total=total)
                return
            bar.console.print(_date_line(done, total, manifest), markup=False, highlight=False)
            bar.update(task, completed=done)

        yield report


def backfill_document(queued: int, manifests: list) -> dict:
    """What ``backfill --json`` prints: how many dates were queued, and each run of them (with ``--now``)."""
    from batchcast.scheduling import periods

    return {"queued": queued, "ran": [{"logical_date": periods.key(m.logical_date), "run_id": m.run_id,
                                       "status": m.status.value, "rows": m.rows,
                                       "error": (m.error or {}).get("message")} for m in manifests]}


def moved(alias: str, manifest, as_json: bool) -> None:
    """What ``promote`` and ``rollback`` print: where the alias points now."""
    import click

    if as_json:
        emit({"alias": alias, "run_id": manifest.run_id, "metrics": manifest.metrics}, True, None)
    else:
        click.echo(f"{alias} -> {manifest.run_id}")


PAGE = 50  # rows a listing prints by default: more is for --limit 0, or --json


def newest(rows: list, limit: int) -> list:
    """The last ``limit`` of ``rows`` (listings run oldest first), or all of them for 0."""
    return rows[-limit:] if limit else rows


def hidden_line(total: int, shown: int) -> None:
    """Say how many rows a page left out, and how to see them; nothing when it left out none."""
    import click

    if total > shown:
        click.echo(f"{total - shown:,} earlier row{'s' if total - shown != 1 else ''} not shown; "
                   "--limit N shows the newest N, --limit 0 all of them")


def said(as_json: bool, doc: dict, line: Callable[[dict], str]) -> None:
    """A command's result: ``doc`` as JSON, or the one line ``line`` makes of it."""
    import click

    if as_json:
        emit(doc, True, None)
    else:
        click.echo(line(doc))


def wrote(as_json: bool, paths) -> None:
    """The files a render wrote: ``{"written": [...]}``, or one ``wrote PATH`` line each."""

    written = [str(path) for path in paths]
    said(as_json, {"written": written}, lambda doc: "\n".join(f"wrote {path}" for path in doc["written"]))


def document(manifest) -> dict:
    """A manifest as ``show --json`` and ``run --json`` print it: its fields, and its ``warnings`` (derived)."""
    return {**manifest.model_dump(mode="json"), "warnings": manifest.warnings()}


def runs_table(runs: list[dict]) -> Table:
    from batchcast.runs.manifest import with_warnings

    table = _table("run", "status", "logical date", "duration", "rows", "model")
    for r in runs:
        duration = f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else ""
        table.add_row(r.get("summary") or r["run_id"] or "", _status(with_warnings(r["status"], r.get("warnings"))),
                      r["logical_date"], duration,
                      " ".join(f"{k}={v}" for k, v in r["rows"].items()), r["model_run"] or "")
    return table


def manifest_table(m) -> Table:
    table = _table("field", "value", show_header=False)
    table.add_row("shown as", _status(m.shown_status()))  # a warning is not a plain success
    for warning in m.warnings():
        table.add_row("warning", warning)
    for key, value in m.model_dump(mode="json", exclude={"files"}).items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    for rel, entry in m.files.items():
        table.add_row(f"file {rel}", f"{entry.size} B sha256 {entry.sha256[:16]}")
    return table


def models_table(models: list[dict]) -> Table:
    table = _table("run", "aliases", "logical date", "metrics")
    for m in models:
        table.add_row(m["run_id"], ", ".join(m["aliases"]), m["logical_date"],
                      " ".join(f"{k}={'null' if v is None else format(v, '.4g')}" for k, v in m["metrics"].items()))
    return table


def rows_table(rows: list[dict]) -> Table:
    table = _table(*(rows[0] if rows else ["nothing"]))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table


def _arrow_table(arrow) -> Table:
    table = _table(*arrow.column_names)
    for row in arrow.to_pylist():
        table.add_row(*(str(v) for v in row.values()))
    return table


def _table(*columns: str, **options: Any) -> Table:
    from rich.table import Table

    return Table(*columns, **options)


def _status(value: str) -> str:
    # "succeeded, 1 warning" is yellow: only a plain success is green
    color = {"succeeded": "green", "failed": "red", "timed out": "red", "cancelled": "red"}.get(value, "yellow")
    return f"[{color}]{value}[/{color}]"
