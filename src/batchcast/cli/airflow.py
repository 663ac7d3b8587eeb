"""``batchcast airflow``: services rendered as Airflow 3 DAG files."""

from __future__ import annotations

from pathlib import Path

import click

from batchcast.cli.common import json_option, specs_for
from batchcast.cli.output import wrote

NO_SCHEDULE_FIX = ('add schedule = "0 6 * * *" under [actions.application] (a cron), '
                   "or adopt with --schedule-application")


@click.group()
def airflow() -> None:
    """Render services as Airflow 3 DAG files."""


@airflow.command("render")
@click.argument("specs", nargs=-1, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The DAGs folder to write into.")
@click.option("--from-config", "from_config", type=click.Path(exists=True, file_okay=False),
              help="Render the original JSON graph configs in this folder instead of specs.")
@click.option("--root", type=click.Path(file_okay=False),
              help="With --from-config: what ${ROOT} becomes (default the folder holding configs/).")
@click.option("--batchcast", "batchcast_bin", help="The batchcast executable Airflow tasks call (default this one).")
@json_option
@click.pass_context
def airflow_render(ctx: click.Context, specs: tuple[str, ...], out: str, from_config: str | None,
                   root: str | None, batchcast_bin: str | None, as_json: bool) -> None:
    """Write one DAG file per scheduled action of each SPEC (default the current spec)."""
    from batchcast.airflow.dags import render
    from batchcast.airflow.graphs import render_config
    from batchcast.errors import SpecError

    if from_config:
        written = render_config(Path(from_config), Path(out), Path(root) if root else None)
    else:
        chosen = specs_for(ctx, specs)
        written = render(chosen, Path(out), batchcast_bin)
        if not written:  # exit 0 having written nothing would look like success to a deploy script
            raise SpecError(f"no scheduled action in {', '.join(map(str, chosen))}: no DAG to write",
                            NO_SCHEDULE_FIX)
    wrote(as_json, written)
