"""The commands that list what a service did: ``runs``, ``show`` and ``models``."""

from __future__ import annotations

import click

from batchcast.cli.common import json_option, service_for
from batchcast.cli.output import PAGE, document, emit, hidden_line, manifest_table, models_table, newest, runs_table


@click.command()
@click.option("--action", help="Only this action's runs.")
@click.option("--status", "statuses", multiple=True, metavar="S",
              help="Only runs in this state (succeeded, failed, skipped, queued, ...); repeat for several.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Only runs of this logical date or later.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help=f"Only the newest N rows (default {PAGE} in the table, all with --json); 0 shows all.")
@json_option
@click.pass_context
def runs(ctx: click.Context, action: str | None, statuses: tuple[str, ...], since, limit: int | None,
         as_json: bool) -> None:
    """List committed runs, and the ledger's queued, running or skipped dates: the newest unless --limit says.

    The table folds consecutive skipped dates of an action into one row; --json lists every date.
    """
    from batchcast.scheduling.listing import collapsed, select

    service = service_for(ctx)
    found = select(service.history(action), statuses=statuses, since=since and since.date().isoformat())
    if not as_json:
        found = collapsed(found, service.spec.actions)
    shown = newest(found, (0 if as_json else PAGE) if limit is None else limit)
    emit(shown, as_json, lambda: runs_table(shown))
    if not as_json:
        hidden_line(len(found), len(shown))


@click.command()
@click.argument("run", required=False)
@json_option
@click.option("--log", "with_log", is_flag=True, help="Print the run's log instead.")
@click.pass_context
def show(ctx: click.Context, run: str | None, as_json: bool, with_log: bool) -> None:
    """Show one run's manifest (default the newest run): RUN is a run id, ACTION/RUN_TS, RUN_TS or an alias."""
    service = service_for(ctx)
    manifest = service.show(run) if run else service.newest()
    if with_log:
        click.echo(service.log(manifest), nl=False)
        return
    emit(document(manifest), as_json, lambda: manifest_table(manifest))


@click.command()
@json_option
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List trained models (successful training runs) and their aliases."""
    service = service_for(ctx)
    found = service.models()
    emit(found, as_json, lambda: models_table(found))
    if not as_json:
        for alias, moves in service.alias_history().items():
            click.echo(f"{alias} history: " + "; ".join(
                f"{m['set_at'][:19]} {m['run_id']} ({m.get('by', 'batchcast promote')})" for m in moves))
    for warning in service.warnings():
        click.echo(f"warning: {warning}", err=True)
