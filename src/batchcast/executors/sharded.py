"""Scale-out scoring's run side, whatever the engine: the shards planned, then verified and published at once.

An engine's executor (Beam, Spark) is the local executor with a child of its
own; that child runs the application through :func:`child_main`, and its
runner calls :func:`prepare`, has its engine score every shard
(:class:`batchcast.executors.shards.ShardScorer`), then :func:`publish`. The
workers write their shards into the run's folder in the artifact store; the
run checks every shard's sha256 against its worker's sidecar, lists them in
the manifest, and publishes them as any run publishes.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from batchcast.actions.context import RunContext, log
from batchcast.data.inputs import matching, render
from batchcast.errors import InputError, IntegrityError, RunTimeout, SpecError
from batchcast.executors.shards import SHARD_FILE, SHARDS, plan
from batchcast.redaction import first_line, without_password
from batchcast.runs.commit import Outcome


def child_main(argv: list[str], runner, engine: str) -> int:
    """An engine's child: ``python -m ... REQUEST.json`` in the engine's environment, committed as any run."""
    from batchcast.actions import execute
    from batchcast.runs.manifest import RunRequest

    request = RunRequest.model_validate_json(Path(argv[0]).read_text())
    deadline = float(os.environ.get("BATCHCAST_DEADLINE") or "inf")
    signal.signal(signal.SIGTERM, lambda signum, frame: _stopped(deadline, engine))
    return 0 if execute(request, runner=runner).succeeded else 1


def _stopped(deadline: float, engine: str) -> None:
    """The executor's SIGTERM: at the run's deadline a timeout, before it a stop (Ctrl-C, a scheduler's kill).

    Either way the runner cancels its job on the engine, and the run is
    committed with the status that says why.
    """
    if time.time() >= deadline - 1:
        raise RunTimeout(f"the run reached its timeout; its {engine} job was cancelled",
                         "raise [actions.*] timeout, or give the job more workers")
    raise KeyboardInterrupt


def prepare(ctx: RunContext, outcome: Outcome, *, who: str, remote: bool, from_store: bool, shipped: bool,
            parts: int, workers: int | None) -> tuple[list[dict], dict, object]:
    """(shards, job, output schema) of the run; refused first when a remote engine could not reach its input.

    ``who`` names the setting in messages (``beam runner = 'FlinkRunner'``);
    ``remote``: the engine's workers are not on this machine; ``from_store``:
    they fetch the model from the store rather than from the run's folder;
    ``shipped``: the job leaves this process (to a job service, a cluster),
    so it carries no password.
    """
    out = ctx.action.output
    ctx.store.refuse_committed(ctx.run_id)  # workers write into the run's folder: it must not be a committed run's
    if remote:
        _refuse_unreachable(ctx, who)
    schema = out.schema_.requiring(ctx.spec.model.ids)
    if ctx.action.checks:
        outcome.checks = {"skipped": f"input checks do not run under the {ctx.action.executor} executor yet"}
        log.warning("input checks skipped: %s", outcome.checks["skipped"])
    query, files, warehouse = _input(ctx, shipped)
    shard_list = plan(query, files, warehouse, ctx.spec.model.ids, parts, ctx.action.input.format)
    job = {"model": _model(ctx, from_store), "model_path": str(ctx.spec.model_path), "schema": str(schema),
           "out": ctx.store.url_of(ctx.run_id, SHARDS), "batch_size": ctx.action.batch_size}
    if workers:  # processes of this machine; Spark gives each task its share itself (OMP_NUM_THREADS)
        one_pool_per_core(workers)
    outcome.inputs["shards"] = len(shard_list)
    return shard_list, job, schema


def seconds_left(ctx: RunContext, grace: float) -> float:
    """Seconds the engine's job may run: the executor's deadline (the environment's build included), less the
    margin for cancelling it and committing the run."""
    deadline = float(os.environ.get("BATCHCAST_DEADLINE") or time.time() + ctx.action.timeout)
    return max(deadline - min(grace, ctx.action.timeout / 4) - time.time(), 1.0)


def publish(ctx: RunContext, outcome: Outcome, sidecars: list[dict], schema, what: str) -> None:
    """Verify every shard against its sidecar, then publish them all in one transaction."""
    hold_signals()  # from here a stop would leave published rows under a manifest saying otherwise
    local = ctx.workdir / "shards"
    outcome.files.update(_fetched(ctx, sidecars, local))  # in the store, and verified, before any row is published
    outcome.rows["read"] = sum(s["rows"] for s in sidecars)
    ctx.store.refuse_committed(ctx.run_id)  # again: the job ran for a while
    outcome.outputs["shards"] = sidecars
    ctx.publish(outcome, schema, _batches(local, sidecars), what)


def worker_message(exc: BaseException) -> str:
    """The worker's own message, which names the shard (ShardScorer.score), out of the engine's wrapping of it."""
    found = re.search(r"shard \d+ \([^)]*\): [^\n\[]*", str(exc))
    return (found.group(0) if found else first_line(exc)).strip()[:500]


def hold_signals() -> None:
    """Ignore SIGTERM and SIGINT while publishing and committing; the executor's SIGKILL stays the last word."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def on_this_machine(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def one_pool_per_core(workers: int) -> None:
    """Give each worker process its share of the cores for the model's own threads (OpenMP, BLAS).

    A model such as HistGradientBoosting predicts on every core; two workers
    each doing so ran 2.2x slower than one (measured, 2 cores). A value the
    user set is kept.
    """
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)  # the workers are started after this, and inherit it


def _model(ctx: RunContext, from_store: bool) -> dict:
    """Where the workers find the model, every file's sha256 checked here first."""
    if not from_store:
        ctx.load_model()  # verified, and loadable here before any worker starts
        return {"dir": str(ctx.workdir / "model")}
    # The workers fetch it from the store themselves (and verify it again); a bad file fails here,
    # before any worker starts.
    ctx.store.verify(ctx.store.manifest(ctx.request.model_run), files=True)
    # The store's full URL: a worker's working folder is not this run's, so a relative folder would miss.
    return {"store": ctx.store.fs.unstrip_protocol(ctx.store.root), "run": ctx.request.model_run}


def _refuse_unreachable(ctx: RunContext, who: str) -> None:
    """A remote engine's workers reach the input, the store and the warehouse over the network, never this machine."""
    fix = "use object storage (gs://, s3://) and a networked warehouse, or run the engine on this machine"
    path = ctx.action.input.path
    if path and on_this_machine(path):
        raise SpecError(f"{ctx.where} {who}: its workers cannot read the input path '{path}' on this machine", fix)
    if on_this_machine(ctx.store.url):
        raise SpecError(f"{ctx.where} {who}: its workers cannot reach the artifact store {ctx.store.url} on this "
                        "machine", "set [storage] url to object storage (gs://, s3://)")
    from batchcast.warehouses import local_file

    if ctx.action.input.query and local_file(ctx.spec.warehouse_url) is not None:
        raise SpecError(f"{ctx.where} {who}: its workers cannot read the query's warehouse file on this machine",
                        fix)


def _fetched(ctx: RunContext, sidecars: list[dict], local: Path) -> dict:
    """Copy every shard and sidecar into ``local`` once, each shard's sha256 checked against its worker's.

    The rows are published from these copies: a late writer (a retried
    worker of a cancelled job) cannot change what was verified.
    """
    local.mkdir(parents=True, exist_ok=True)
    entries = {}
    for sidecar in sidecars:
        name = sidecar["file"]
        if not SHARD_FILE.fullmatch(name):
            raise IntegrityError(f"{ctx.store.url_of(ctx.run_id, SHARDS)}: a sidecar names the file '{name}'",
                                 "run the application again")
        rel = f"{SHARDS}/{name}"
        entries[rel] = ctx.store.copy_out(ctx.run_id, rel, local / name)
        if entries[rel].sha256 != sidecar["sha256"]:
            raise IntegrityError(f"{ctx.store.url_of(ctx.run_id, rel)}: does not match the sha256 its worker "
                                 "wrote", "run the application again")
        sidecar_rel = f"{SHARDS}/shard-{sidecar['index']:05d}.json"
        entries[sidecar_rel] = ctx.store.copy_out(ctx.run_id, sidecar_rel, None)
    return entries


def _batches(local: Path, sidecars: list[dict]):
    for sidecar in sidecars:
        yield from pq.ParquetFile(local / sidecar["file"]).iter_batches()


def _input(ctx: RunContext, shipped: bool) -> tuple:
    """(query, files, warehouse URL) of the action's input for the logical date."""
    spec, day = ctx.action.input, ctx.request.logical_date
    if spec.path:
        path = render(spec.path, day, f"{ctx.where} path", ctx.interval)
        fs, files = matching(path, ctx.spec.root)
        if not files:
            raise InputError(f"{ctx.where} path: no files match '{path}'", "check the path and the logical date")
        return None, [fs.unstrip_protocol(f) if "://" in path else f for f in files], None
    url = ctx.spec.warehouse_url
    # The shards travel in the job to a remote engine: its workers use their own credentials
    # (PGPASSWORD, a service account), never a password of the spec's URL.
    return render(spec.query, day, f"{ctx.where} query", ctx.interval), [], without_password(url) if shipped else url
