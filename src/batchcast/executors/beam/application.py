"""An application run by the beam executor: the pipeline scores shards, then one transaction publishes them.

The workers write their shards into the run's folder in the artifact store;
on a cluster's runner they also fetch the model from there. The run checks
every shard's sha256 against its worker's sidecar, lists them in the
manifest, and publishes them as any run publishes.
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
from batchcast.errors import BatchcastError, InputError, IntegrityError, ModelError, SpecError
from batchcast.redaction import first_line, without_password
from batchcast.runs.commit import Outcome

SHARDS = "output/shards"
CLUSTERS = ("DataflowRunner", "FlinkRunner", "SparkRunner")  # whose workers cannot see this machine's files
SHARD_FILE = re.compile(r"shard-\d{5}-[0-9a-f]{8}\.parquet")  # what a worker names its shard (pipeline.Score)


def run(ctx: RunContext, outcome: Outcome) -> None:
    from batchcast.executors.beam import pipeline
    from batchcast.executors.beam.executor import pipeline_options

    settings, out = ctx.action.beam, ctx.action.output
    ctx.store.refuse_committed(ctx.run_id)  # workers write into the run's folder: it must not be a committed run's
    _refuse_unreachable(ctx)
    options = pipeline.checked(pipeline_options(settings), f"{ctx.where[:-1]}.beam]")
    workers = options.get("direct_num_workers") or options.get("num_workers") or 2
    schema = out.schema_.requiring(ctx.spec.model.ids)
    if ctx.action.checks:
        outcome.checks = {"skipped": "input checks do not run under the beam executor yet"}
        log.warning("input checks skipped: %s", outcome.checks["skipped"])
    query, files, warehouse = _input(ctx)
    shard_list = pipeline.shards(query, files, warehouse, ctx.spec.model.ids, settings.shards or 2 * workers,
                                 ctx.action.input.format)
    job = {"model": _model(ctx), "model_path": str(ctx.spec.model_path), "schema": str(schema),
           "out": ctx.store.url_of(ctx.run_id, SHARDS), "batch_size": ctx.action.batch_size}
    _one_pool_per_core(workers)
    outcome.inputs.update({"runner": settings.runner, "shards": len(shard_list)})
    log.info("scoring %d shards with Beam's %s", len(shard_list), settings.runner)
    sidecars = _score(ctx, outcome, shard_list, job, options)
    _hold_signals()  # from here a stop would leave published rows under a manifest saying otherwise
    local = ctx.workdir / "shards"
    outcome.files.update(_fetched(ctx, sidecars, local))  # in the store, and verified, before any row is published
    outcome.rows["read"] = sum(s["rows"] for s in sidecars)
    ctx.store.refuse_committed(ctx.run_id)  # again: the job ran for a while
    outcome.outputs["shards"] = sidecars
    ctx.publish(outcome, schema, _batches(local, sidecars), "the Beam pipeline's shards")


def _model(ctx: RunContext) -> dict:
    """Where the workers find the model, every file's sha256 checked here first."""
    if ctx.action.beam.runner == "DirectRunner":
        ctx.load_model()  # verified, and loadable here before any worker starts
        return {"dir": str(ctx.workdir / "model")}
    # A cluster's workers fetch it from the store themselves (and verify it again); a bad file fails here,
    # before any worker starts.
    ctx.store.verify(ctx.store.manifest(ctx.request.model_run), files=True)
    # The store's full URL: a worker's working folder is not this run's, so a relative folder would miss.
    return {"store": ctx.store.fs.unstrip_protocol(ctx.store.root), "run": ctx.request.model_run}


def _score(ctx: RunContext, outcome: Outcome, shard_list: list[dict], job: dict, options: dict) -> list[dict]:
    from batchcast.executors.beam import pipeline
    from batchcast.executors.beam.executor import GRACE_S

    # The executor's deadline, building the environment included; the margin is for cancelling and committing.
    deadline = float(os.environ.get("BATCHCAST_DEADLINE") or time.time() + ctx.action.timeout)
    left = deadline - min(GRACE_S, ctx.action.timeout / 4) - time.time()
    try:
        return pipeline.run(shard_list, job, options, seconds=max(left, 1.0),
                            on_submit=lambda job_id: _submitted(outcome, job_id))
    except BatchcastError:  # batchcast's own (a timeout, a missing shard) say what they mean already
        raise
    except Exception as exc:  # Beam wraps the worker's error; its message names the shard
        raise ModelError(f"the Beam pipeline failed: {_worker_message(exc)}",
                         "read the run's log; nothing was published") from exc


def _submitted(outcome: Outcome, job_id: str) -> None:
    outcome.inputs["job_id"] = job_id
    log.info("Beam job %s submitted", job_id)


def _hold_signals() -> None:
    """Ignore SIGTERM and SIGINT while publishing and committing; the executor's SIGKILL stays the last word."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _refuse_unreachable(ctx: RunContext) -> None:
    """A cluster's workers reach the input, the store and the warehouse over the network, never this machine."""
    runner = ctx.action.beam.runner
    if runner not in CLUSTERS:
        return
    fix = "use object storage (gs://, s3://) and a networked warehouse, or runner = \"DirectRunner\""
    path = ctx.action.input.path
    if path and _on_this_machine(path):
        raise SpecError(f"{ctx.where} beam runner = '{runner}': its workers cannot read the input path "
                        f"'{path}' on this machine", fix)
    if _on_this_machine(ctx.store.url):
        raise SpecError(f"{ctx.where} beam runner = '{runner}': its workers cannot reach the artifact store "
                        f"{ctx.store.url} on this machine", "set [storage] url to object storage (gs://, s3://)")
    from batchcast.warehouses import local_file

    if ctx.action.input.query and local_file(ctx.spec.warehouse_url) is not None:
        raise SpecError(f"{ctx.where} beam runner = '{runner}': its workers cannot read the query's warehouse "
                        "file on this machine", fix)


def _on_this_machine(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


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


def _one_pool_per_core(workers: int) -> None:
    """Give each worker process its share of the cores for the model's own threads (OpenMP, BLAS).

    A model such as HistGradientBoosting predicts on every core; two workers
    each doing so ran 2.2x slower than one (measured, 2 cores). A value the
    user set is kept.
    """
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)  # the workers are started after this, and inherit it


def _input(ctx: RunContext) -> tuple:
    """(query, files, warehouse URL) of the action's input for the logical date."""
    spec, day = ctx.action.input, ctx.request.logical_date
    if spec.path:
        path = render(spec.path, day, f"{ctx.where} path", ctx.interval)
        fs, files = matching(path, ctx.spec.root)
        if not files:
            raise InputError(f"{ctx.where} path: no files match '{path}'", "check the path and the logical date")
        return None, [fs.unstrip_protocol(f) if "://" in path else f for f in files], None
    url = ctx.spec.warehouse_url
    # The shards travel in the job's graph to the runner: a cluster's workers use their own credentials
    # (PGPASSWORD, a service account), never a password of the spec's URL.
    shipped = url if ctx.action.beam.runner == "DirectRunner" else without_password(url)
    return render(spec.query, day, f"{ctx.where} query", ctx.interval), [], shipped


def _worker_message(exc: BaseException) -> str:
    """The worker's own message, which names the shard, out of Beam's wrapping of it."""
    text = str(exc)
    found = re.search(r"shard \d+ \([^)]*\): [^\n\[]*", text)
    return (found.group(0) if found else first_line(exc)).strip()[:500]
