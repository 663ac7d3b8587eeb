"""The embedded scheduler's commands: ``pause``, ``resume``, ``scheduler`` and its dashboard, ``ui``."""

from __future__ import annotations

import click

from batchcast.cli.common import json_option, service_for, specs_for
from batchcast.cli.output import said


def _switch(verb: str, done: str, doc: str):
    """``pause`` and ``resume``: the same command but for the Service method it calls and what it says."""

    @click.command(verb, help=doc)
    @click.argument("action")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, action: str, as_json: bool) -> None:
        getattr(service_for(ctx), verb)(action)
        said(as_json, {"action": action, "paused": verb == "pause"}, lambda _: f"{action} {done}")

    return command


pause = _switch("pause", "paused", "Stop the scheduler from queueing or starting ACTION (runs in flight finish).")
resume = _switch("resume", "resumed", "Let the scheduler run ACTION again; missed dates follow its catchup policy.")


@click.command()
@click.argument("specs", nargs=-1, type=click.Path(exists=True))
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes over the schedules.")
@click.option("--parallelism", default=2, show_default=True, help="Runs at once, across every service.")
@click.option("--exit-when-idle", is_flag=True, help="Exit once nothing is queued, waiting, retrying or running.")
@click.pass_context
def scheduler(ctx: click.Context, specs: tuple[str, ...], interval: float, parallelism: int,
              exit_when_idle: bool) -> None:
    """Run the scheduled actions of each SPEC (files or folders of services) until stopped."""
    from batchcast.scheduler import Scheduler

    code = Scheduler(specs_for(ctx, specs), interval=interval, parallelism=parallelism,
                     exit_when_idle=exit_when_idle).run()
    ctx.exit(code)


@click.command()
@click.argument("specs", nargs=-1, type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port to listen on.")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="A file whose first line is the password that unlocks actions (else $BATCHCAST_UI_PASSWORD; "
                   "without either the dashboard only reads, on 127.0.0.1).")
@click.pass_context
def ui(ctx: click.Context, specs: tuple[str, ...], host: str, port: int, password_file: str | None) -> None:
    """Serve the dashboard of each SPEC: an overview, grids of runs, models compared, plots, and actions."""
    from batchcast.ui import serve

    serve(specs_for(ctx, specs), host, port, password_file)
