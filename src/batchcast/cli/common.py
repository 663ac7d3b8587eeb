"""What every command shares: the group that turns library errors into one line, and the service to call."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchcast.errors import BatchcastError

if TYPE_CHECKING:
    from batchcast.service import Service


class Group(click.Group):
    """Turns a library error into one line plus its fix, and a non-zero exit.

    Under ``--json`` (:data:`json_option`) the error is also the JSON on stdout, ``{"error": ..., "fix": ...}``,
    so a script reading stdout gets a document whatever happened.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BatchcastError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc()
            click.echo(f"error: {exc.message}", err=True)
            if exc.fix:
                click.echo(f"fix: {exc.fix}", err=True)
            if ctx.obj and ctx.obj.get("json"):
                click.echo(json.dumps({"error": exc.message, "fix": exc.fix}, indent=2))
            ctx.exit(1)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see run): a run is committed as cancelled
            recorded = "; the run is recorded as cancelled (batchcast runs)" if ctx.invoked_subcommand == "run" else ""
            click.echo(f"\ncancelled: interrupted{recorded}", err=True)
            ctx.exit(130)


def _json_chosen(ctx: click.Context, param, value: bool) -> bool:
    if value and ctx.obj is not None:
        ctx.obj["json"] = True  # for Group.invoke, should the command fail
    return value


json_option = click.option("--json", "as_json", is_flag=True, callback=_json_chosen,
                           help='Print JSON on stdout (a failure too: {"error": ..., "fix": ...}).')


def service_for(ctx: click.Context) -> Service:
    """The service of ``--spec`` (or ``BATCHCAST_SPEC``, or ./batchcast.toml)."""
    from batchcast.service import Service

    return Service(ctx.obj["spec"])


def specs_for(ctx: click.Context, paths: tuple[str, ...]) -> list[Path]:
    """The spec files ``paths`` name (files, service folders, folders of services); else the current spec."""
    from batchcast.spec import find_spec, find_specs

    return find_specs(paths) or [find_spec(ctx.obj["spec"])]


def command_name() -> str:
    """How to run this batchcast again: ``batchcast`` if that is on PATH, else this program's full path.

    ``make demo`` runs ``.venv/bin/batchcast`` without activating the venv; a hint saying only
    ``batchcast`` would be ``command not found`` there.
    """
    import shutil
    import sys

    ran = Path(sys.argv[0]).resolve()
    found = shutil.which("batchcast")
    return "batchcast" if found and Path(found).resolve() == ran else str(ran)
