"""``batchcast kubernetes``: objects to apply to a cluster."""

from __future__ import annotations

from pathlib import Path

import click

from batchcast.cli.common import json_option
from batchcast.cli.output import wrote


@click.group()
def kubernetes() -> None:
    """Render what a Kubernetes cluster runs for this service."""


def _spec(ctx: click.Context):
    """The spec alone: rendering reads no store (opening a gs:// one off Google Cloud waits 16 s for credentials)."""
    from batchcast.spec import load_spec

    return load_spec(ctx.obj["spec"])


@kubernetes.command("render-serving")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder to write the YAML into.")
@click.option("--port", default=8080, show_default=True, type=int, help="The port the container listens on.")
@json_option
@click.pass_context
def render_serving(ctx: click.Context, out: str, port: int, as_json: bool) -> None:
    """Write a Deployment, a Service and a HorizontalPodAutoscaler running `batchcast serve` (kubectl apply -f OUT)."""
    from batchcast.serving.kubernetes import render

    wrote(as_json, render(_spec(ctx), Path(out), port))


@kubernetes.command("render-streaming")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder to write the YAML into.")
@click.option("--autoscaler", type=click.Choice(["keda", "hpa"]), default="keda", show_default=True,
              help="keda: a KEDA ScaledObject on the source's backlog; hpa: a HorizontalPodAutoscaler on CPU.")
@json_option
@click.pass_context
def render_streaming(ctx: click.Context, out: str, autoscaler: str, as_json: bool) -> None:
    """Write a Deployment running `batchcast stream` and its autoscaler (kubectl apply -f OUT)."""
    from batchcast.streaming.kubernetes import render

    wrote(as_json, render(_spec(ctx), Path(out), autoscaler))
