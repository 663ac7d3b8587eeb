"""``batchcast kubernetes``: objects to apply to a cluster."""

from __future__ import annotations

from pathlib import Path

import click

from batchcast.cli.common import service_for


@click.group()
def kubernetes() -> None:
    """Render what a Kubernetes cluster runs for this service."""


@kubernetes.command("render-serving")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder to write the YAML into.")
@click.option("--port", default=8080, show_default=True, type=int, help="The port the container listens on.")
@click.pass_context
def render_serving(ctx: click.Context, out: str, port: int) -> None:
    """Write a Deployment, a Service and a HorizontalPodAutoscaler running `batchcast serve` (kubectl apply -f OUT)."""
    from batchcast.serving.kubernetes import render

    for path in render(service_for(ctx).spec, Path(out), port):
        click.echo(f"wrote {path}")
