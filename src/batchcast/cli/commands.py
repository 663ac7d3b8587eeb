"""The ``batchcast`` group and its commands; groups of their own (airflow, kubernetes, the scheduler's) join it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
from pathlib import Path

import click

from batchcast import registry
from batchcast.cli.airflow import airflow
from batchcast.cli.common import Group, command_name, json_option, service_for
from batchcast.cli.kubernetes import kubernetes
from batchcast.cli.listings import models, runs, show
from batchcast.cli.output import (
    backfill_document,
    backfill_progress,
    document,
    emit,
    moved,
    rows_table,
    said,
    setup_logging,
    status,
)
from batchcast.cli.scheduling import pause, resume, scheduler, ui


@click.group(cls=Group)
@click.option("--spec", type=click.Path(dir_okay=True), envvar="BATCHCAST_SPEC",
              help="The service spec (default ./batchcast.toml, or BATCHCAST_SPEC).")
@click.option("--verbose", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="batchcast")
@click.pass_context
def main(ctx: click.Context, spec: str | None, verbose: bool) -> None:
    """batchcast: retrain and apply a predictive model on a schedule."""
    ctx.obj = {"spec": spec, "verbose": verbose}
    setup_logging(logging.DEBUG if verbose else logging.INFO)


@main.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="The service name (default the folder's name).")
@json_option
def init(folder: str, name: str | None, as_json: bool) -> None:
    """Write a complete example service (a churn model) into FOLDER."""
    from batchcast.spec import scaffold

    spec = scaffold.init(Path(folder), name)
    said(as_json, {"spec": str(spec), "next": f"cd {folder} && {command_name()} run training"},
         lambda doc: f"wrote {doc['spec']}; next: {doc['next']}")


@main.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True, help="The service name.")
@click.option("--table", required=True, help="The warehouse table for predictions.")
@click.option("--schema", required=True, help="The predictions' columns, e.g. player_id:STRING,label:BOOL.")
@click.option("--version", "version_", default="1", show_default=True, help="The service version.")
@click.option("--force", is_flag=True, help="Replace an existing batchcast.toml.")
@click.option("--override", "overrides", multiple=True, metavar="SPEC",
              help="A requirement replacing the repository's own pin, e.g. 'pandas>=2.2' (repeatable).")
@click.option("--schedule-training", metavar="CRON", help="Retrain on this cron, e.g. '0 3 * * 1'.")
@click.option("--schedule-application", metavar="CRON", help="Apply on this cron, e.g. '0 6 * * *'.")
@json_option
def adopt(path: str, name: str, table: str, schema: str, version_: str, force: bool, overrides: tuple[str, ...],
          schedule_training: str | None, schedule_application: str | None, as_json: bool) -> None:
    """Write ./batchcast.toml for the existing model repository at PATH (left untouched)."""
    from batchcast.spec import scaffold

    spec = scaffold.adopt(Path(path), name, table, schema, version=version_, force=force, overrides=overrides,
                          schedules={"training": schedule_training, "application": schedule_application})
    said(as_json, {"spec": str(spec), "next": f"{command_name()} run training"},
         lambda doc: f"wrote {doc['spec']}; next: {doc['next']}")


@main.command()
@json_option
@click.pass_context
def validate(ctx: click.Context, as_json: bool) -> None:
    """Check the spec and the files it names."""
    service = service_for(ctx)
    service.spec.check_files()
    if as_json:
        emit({"ok": True, "spec": str(service.spec.file), "service": service.name, "version": service.version,
              "actions": list(service.spec.actions)}, True, None)
        return
    click.echo(f"ok: {service.spec.file}: service {service.name}/{service.version}, "
               f"actions {', '.join(service.spec.actions) or 'none'}")


@main.command()
@click.argument("action")
@click.option("--date", help="The period: YYYY-MM-DD (default today, UTC); for a schedule that ticks more than "
              "once a day, a tick, YYYY-MM-DDTHH:MM in the action's time zone or with an offset (default the newest).")
@click.option("--executor", help=f"Override the action's executor: {', '.join(registry.EXECUTORS)}.")
@click.option("--model", help="Apply this run id or alias instead of the default.")
@click.option("--run-ts", hidden=True, help="Fix the run's timestamp (for executors that wait on the run id).")
@json_option
@click.pass_context
def run(ctx: click.Context, action: str, date: str | None, executor: str | None, model: str | None,
        run_ts: str | None, as_json: bool) -> None:
    """Run ACTION once, for one logical date."""
    from batchcast.isolation.process import interrupt

    for sig in (signal.SIGINT, signal.SIGTERM):  # a scheduler's kill cancels as Ctrl-C does, committed
        signal.signal(sig, interrupt)
    with status(f"running {action}..."):
        manifest = service_for(ctx).run(action, date, executor=executor, model=model, run_ts=run_ts)
    if as_json:  # the manifest, as `batchcast show --json` prints it; its error is in it
        emit(document(manifest), True, None)
        ctx.exit(0 if manifest.succeeded else 1)
    built = manifest.environment.get("build_s")
    click.echo(f"{manifest.run_id} {manifest.shown_status()} in {manifest.duration_s:.1f} s"
               f"{f' (+{built:.1f} s building its environment)' if built else ''}; "
               f"rows {json.dumps(manifest.rows)}; metrics {json.dumps(manifest.metrics)}")
    for warning in manifest.warnings():  # exit 0: the rows are published; a warning is said, not raised
        click.echo(f"warning: {warning}", err=True)
    if not manifest.succeeded:
        click.echo(f"error: {manifest.error['message']}", err=True)
        if manifest.error.get("fix"):
            click.echo(f"fix: {manifest.error['fix']}", err=True)
        ctx.exit(1)


@main.command()
@click.argument("run")
@click.option("--alias", default="champion", show_default=True, help="The alias to move.")
@json_option
@click.pass_context
def promote(ctx: click.Context, run: str, alias: str, as_json: bool) -> None:
    """Point an alias (default champion) at a successful training RUN."""
    moved(alias, service_for(ctx).promote(run, alias), as_json)


@main.command()
@click.option("--alias", default="champion", show_default=True, help="The alias to move back.")
@json_option
@click.pass_context
def rollback(ctx: click.Context, alias: str, as_json: bool) -> None:
    """Point an alias (default champion) back at its previous target."""
    moved(alias, service_for(ctx).rollback(alias), as_json)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--model", "ref", help="A run id or alias (default: the champion, else the latest training).")
@click.option("--poll", type=float, help="Seconds between checks of the alias (default [serve] poll; SIGHUP: now).")
@click.option("--workers", type=int, help="Server processes (default [serve] workers).")
@click.option("--inline", is_flag=True, help="Serve in batchcast's own environment, not the model's (as in the "
                                             "image, whose environment is the model's).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, ref: str | None, poll: float | None, workers: int | None,
          inline: bool) -> None:
    """Answer prediction requests over HTTP (MLflow's /invocations, the Open Inference Protocol v2)."""
    service_for(ctx).serve(host, port, ref, poll, workers, inline=inline)


@main.command()
@click.option("--model", "ref", help="A run id or alias (default: the champion, else the latest training).")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address of /metrics and the probes.")
@click.option("--port", type=int, help="Their port (default [stream] port; 0: none).")
@click.option("--guarantee", type=click.Choice(["exactly-once", "at-least-once"]),
              help="Overrides [stream] guarantee (at-least-once: no Kafka transactions, faster, may repeat).")
@click.option("--inline", is_flag=True, help="Run in batchcast's own environment, not the model's (as in the "
                                             "image, whose environment is the model's).")
@click.pass_context
def stream(ctx: click.Context, ref: str | None, host: str, port: int | None, guarantee: str | None,
           inline: bool) -> None:
    """Score the events of [stream] source into its topic and/or table until stopped (SIGTERM, Ctrl-C)."""
    service_for(ctx).stream(ref, host, port, guarantee, inline=inline)


@main.command()
@click.argument("action")
@click.option("--date", help="The period: YYYY-MM-DD, or a tick YYYY-MM-DDTHH:MM of a sub-daily schedule.")
@click.option("--fresh", is_flag=True, help="Instead: exit 1 when ACTION's newest period past fresh_within has "
              "no successful run (for a monitor that watches without the scheduler).")
@click.option("--arrived", is_flag=True, help="Instead: exit 0 when DATE's [actions.ACTION.wait_for] input is "
              "there, 75 while it is not (Airflow's sensor pokes again on 75).")
@json_option
@click.pass_context
def check(ctx: click.Context, action: str, date: str | None, fresh: bool, arrived: bool, as_json: bool) -> None:
    """Exit 0 only if ACTION's newest run for DATE committed a succeeded manifest (or, --fresh, is on time)."""
    if arrived:
        check_arrived(ctx, action, date, as_json)
    if fresh:
        from batchcast.scheduling import freshness

        now = dt.datetime.now(dt.UTC)
        found = freshness.of(service_for(ctx), action, now)
        said(as_json, found.document(now), lambda doc: doc["message"])
        ctx.exit(0 if found.fresh else 1)
    if date is None:
        raise click.UsageError("give --date YYYY-MM-DD, or --fresh")
    manifest = service_for(ctx).check(action, date)
    if as_json:
        emit(manifest.model_dump(mode="json"), True, None)
    else:
        click.echo(f"{manifest.run_id} succeeded")


def check_arrived(ctx: click.Context, action: str, date: str | None, as_json: bool) -> None:
    from batchcast.actions import waiting
    from batchcast.scheduling import periods

    spec = service_for(ctx).spec
    if spec.action(action).wait_for is None:
        raise click.UsageError(f"[actions.{action}] has no wait_for table to check")
    day = spec.action(action).period(date)
    reason = waiting.missing(spec, action, day)
    said(as_json, {"action": action, "logical_date": periods.key(day), "arrived": reason is None, "missing": reason},
         lambda doc: f"{action} {doc['logical_date']}: " + ("its input is there" if doc["arrived"] else reason))
    ctx.exit(0 if reason is None else waiting.TEMPFAIL)


@main.command()
@click.option("--count", default=3, show_default=True, help="How many upcoming runs per action.")
@json_option
@click.pass_context
def schedule(ctx: click.Context, count: int, as_json: bool) -> None:
    """List the next runs of each scheduled action, with their logical dates."""
    service = service_for(ctx)
    upcoming = service.schedule(count)
    if not upcoming and not as_json:
        click.echo(f"no scheduled action in {service.spec.file}; to add one, write schedule = \"0 6 * * *\" "
                   "under [actions.application] (a cron)")
        return
    emit(upcoming, as_json, lambda: rows_table(upcoming))


@main.command()
@click.argument("action")
@click.option("--from", "start", required=True, help="The first period: YYYY-MM-DD (the whole day), or a tick "
              "YYYY-MM-DDTHH:MM of a sub-daily schedule.")
@click.option("--to", "end", required=True, help="The last period, the same way; both included.")
@click.option("--now", is_flag=True, help="Run the dates here, oldest first, instead of only queueing them.")
@json_option
@click.pass_context
def backfill(ctx: click.Context, action: str, start: str, end: str, now: bool, as_json: bool) -> None:
    """Queue (or with --now, run) ACTION for every scheduled date from --from to --to."""
    totals: list[int] = []
    with backfill_progress(as_json, running=now) as report:
        def progress(done: int, total: int, manifest) -> None:
            totals.append(total)
            report(done, total, manifest)

        manifests = service_for(ctx).backfill(action, start, end, now=now, progress=progress)
    if as_json:
        emit(backfill_document(totals[0] if totals else 0, manifests), True, None)
    elif not now:
        click.echo("queued in the ledger; pass --now to run them here")
    if any(not m.succeeded for m in manifests):
        ctx.exit(1)


@main.command()
@click.option("--engine", type=click.Choice(["podman", "docker"]), help="Default: podman if installed, else docker.")
@click.option("--push", is_flag=True, help="Push the image to its registry after building it.")
@json_option
@click.pass_context
def build(ctx: click.Context, engine: str | None, push: bool, as_json: bool) -> None:
    """Build the service's image ({registry}/{project}/{name}:{version}) for the container executors."""
    with status("building the image..."):
        built = service_for(ctx).build(engine, push=push)
    said(as_json, {"tag": built.tag, "image_id": built.image_id, "dockerfile": str(built.dockerfile), "pushed": push},
         lambda doc: f"built {doc['tag']} ({doc['image_id'][:19]}); Dockerfile kept at {doc['dockerfile']}")


@main.command()
@click.argument("action", default="application")
@click.option("--limit", default=10, show_default=True, help="How many rows.")
@json_option
@click.pass_context
def preview(ctx: click.Context, action: str, limit: int, as_json: bool) -> None:
    """Print the newest rows of ACTION's output table."""
    table = service_for(ctx).preview(action, limit)
    emit(table.to_pylist(), as_json, lambda: table)


# Commands of their own modules.
for command in (airflow, kubernetes, models, pause, resume, runs, scheduler, show, ui):
    main.add_command(command)
