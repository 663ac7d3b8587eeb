"""``batchcast airflow``: services rendered as Airflow 3 DAG files."""

from __future__ import annotations

from pathlib import Path

import click

from batchcast.cli import _specs, main


@main.group()
def airflow() -> None:
    """Render services as Airflow 3 DAG files."""


@airflow.command("render")
@click.argument("specs", nargs=-1, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The DAGs folder to write into.")
@click.option("--from-config", "from_config", type=click.Path(exists=True, file_okay=False),
              help="Render the original JSON graph configs in this folder instead of specs.")
@click.option("--batchcast", "batchcast_bin", help="The batchcast executable Airflow tasks call (default this one).")
@click.pass_context
def airflow_render(ctx: click.Context, specs: tuple[str, ...], out: str, from_config: str | None,
                   batchcast_bin: str | None) -> None:
    """Write one DAG file per scheduled action of each SPEC (default the current spec)."""
    from batchcast.airflow import render, render_config

    if from_config:
        written = render_config(Path(from_config), Path(out))
    else:
        written = render(_specs(ctx, specs), Path(out), batchcast_bin)
    for path in written:
        click.echo(f"wrote {path}")
