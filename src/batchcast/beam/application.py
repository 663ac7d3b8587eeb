"""An application run by the beam executor: the pipeline scores shards, then one transaction publishes them.

The workers write their shards into the run's folder in the artifact store;
on a cluster's runner they also fetch the model from there. The run checks
every shard's sha256 against its worker's sidecar, lists them in the
manifest, and publishes them as any run publishes.
"""

from __future__ import annotations

import os
import re
import time

import fsspec
import pyarrow.parquet as pq

from batchcast.actions.context import RunContext, log
from batchcast.commit import Outcome
from batchcast.errors import BatchcastError, InputError, IntegrityError, ModelError, SpecError
from batchcast.sources import render

SHARDS = "output/shards"
CLUSTERS = ("DataflowRunner", "FlinkRunner", "SparkRunner")  # whose workers cannot see this machine's files
GRACE_S = 30.0  # of the action's timeout, left to cancel the job and commit before the executor kills the run


def run(ctx: RunContext, outcome: Outcome) -> None:
    from batchcast.beam import pipeline
    from batchcast.executors.beam import pipeline_options

    started = time.monotonic()
    settings, out = ctx.action.beam, ctx.action.output
    _refuse_unreachable(ctx)
    options = pipeline.checked(pipeline_options(settings), f"{ctx.where[:-1]}.beam]")
    workers = options.get("direct_num_workers") or options.get("num_workers") or 2
    if settings.runner == "DirectRunner":
        model = {"dir": str(ctx.workdir / "model")}
        ctx.fetch_model(ctx.workdir / "model")  # checksums verified before any worker loads it
    else:  # each worker fetches it from the store and verifies it; a bad model fails here first
        ctx.store.verify(ctx.store.manifest(ctx.request.model_run))
        model = {"store": ctx.store.url, "run": ctx.request.model_run}
    schema = out.schema_.requiring(ctx.spec.model.ids)
    if ctx.action.checks:
        outcome.checks = {"skipped": "input checks do not run under the beam executor yet"}
        log.warning("input checks skipped: %s", outcome.checks["skipped"])
    shard_list = pipeline.shards(*_input(ctx), ctx.spec.model.ids, settings.shards or 2 * workers,
                                 ctx.action.input.format)
    job = {"model": model, "model_path": str(ctx.spec.model_path), "schema": str(schema),
           "out": ctx.store.url_of(ctx.run_id, SHARDS), "batch_size": ctx.action.batch_size}
    _one_pool_per_core(workers)
    outcome.inputs.update({"runner": settings.runner, "shards": len(shard_list)})
    log.info("scoring %d shards with Beam's %s", len(shard_list), settings.runner)
    timeout = ctx.action.timeout
    left = timeout - min(GRACE_S, timeout / 4) - (time.monotonic() - started)
    try:
        sidecars = pipeline.run(shard_list, job, options, seconds=max(left, 1.0),
                                on_submit=lambda job_id: _submitted(outcome, job_id))
    except BatchcastError:  # batchcast's own (a timeout, a missing shard) say what they mean already
        raise
    except Exception as exc:  # Beam wraps the worker's error; its message names the shard
        raise ModelError(f"the Beam pipeline failed: {_first_line(exc)}",
                         "read the run's log; nothing was published") from exc
    outcome.files.update(_verified(ctx, sidecars))  # in the store before the rows are published
    outcome.rows["read"] = sum(s["rows"] for s in sidecars)
    rows = ctx.warehouse.publish(out.table, schema, _batches(ctx, sidecars),
                                 logical_date=ctx.request.logical_date, run_id=ctx.run_id,
                                 model_run=ctx.request.model_run, source="the Beam pipeline's shards",
                                 allow_empty=out.allow_empty)
    outcome.outputs.update({"table": out.table, "shards": sidecars})
    outcome.rows["written"] = rows
    log.info("published %d rows of %s into %s from %d shards", rows, ctx.request.logical_date, out.table,
             len(sidecars))


def _submitted(outcome: Outcome, job_id: str) -> None:
    outcome.inputs["job_id"] = job_id
    log.info("Beam job %s submitted", job_id)


def _refuse_unreachable(ctx: RunContext) -> None:
    """A cluster's workers reach the store and the warehouse over the network, never this machine's files."""
    runner = ctx.action.beam.runner
    if runner not in CLUSTERS:
        return
    if "://" not in ctx.store.url or ctx.store.url.startswith("file://"):
        raise SpecError(f"{ctx.where} beam runner = '{runner}': its workers cannot reach the artifact store "
                        f"{ctx.store.url} on this machine", "set [storage] url to object storage (gs://, s3://)")
    from batchcast.warehouses import local_file

    if ctx.action.input.query and local_file(ctx.spec.warehouse_url) is not None:
        raise SpecError(f"{ctx.where} beam runner = '{runner}': its workers cannot read the query's warehouse "
                        "file on this machine", "use a networked warehouse, or a path input on object storage")


def _verified(ctx: RunContext, sidecars: list[dict]) -> dict:
    """The shards' and sidecars' manifest entries, each shard's sha256 checked against what its worker wrote."""
    entries = {}
    for sidecar in sidecars:
        rel = f"{SHARDS}/{sidecar['file']}"
        entry = ctx.store.entry(ctx.run_id, rel)
        if entry.sha256 != sidecar["sha256"]:
            raise IntegrityError(f"{ctx.store.url_of(ctx.run_id, rel)}: does not match the sha256 its worker "
                                 "wrote", "run the application again")
        entries[rel] = entry
        sidecar_rel = rel.removesuffix(".parquet") + ".json"
        entries[sidecar_rel] = ctx.store.entry(ctx.run_id, sidecar_rel)
    return entries


def _batches(ctx: RunContext, sidecars: list[dict]):
    for sidecar in sidecars:
        with fsspec.open(ctx.store.url_of(ctx.run_id, f"{SHARDS}/{sidecar['file']}"), "rb") as f:
            yield from pq.ParquetFile(f).iter_batches()


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
        path = render(spec.path, day, f"{ctx.where} path")
        url = path if "://" in path else str(ctx.spec.root / path)
        fs, pattern = fsspec.core.url_to_fs(url)
        files = sorted(fs.glob(pattern))
        if not files:
            raise InputError(f"{ctx.where} path: no files match '{path}'", "check the path and the logical date")
        return None, [fs.unstrip_protocol(f) if "://" in url else f for f in files], None
    return render(spec.query, day, f"{ctx.where} query"), [], ctx.spec.warehouse_url


def _first_line(exc: BaseException) -> str:
    """The worker's own message, which names the shard, out of Beam's wrapping of it."""
    text = str(exc)
    found = re.search(r"shard \d+ \([^)]*\): [^\n\[]*", text)
    return (found.group(0) if found else text.splitlines()[0] if text else type(exc).__name__).strip()[:500]
