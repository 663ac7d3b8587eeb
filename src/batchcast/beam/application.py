"""An application run by the beam executor: the pipeline scores shards, then one transaction publishes them.

Work in progress (issue 15): local files and DuckDB queries only; no input
checks; the shards are written on this machine (a DataflowRunner would need
them on the store's URL and the model fetched by each worker).
"""

from __future__ import annotations

import os
import re

import fsspec

from batchcast.actions.context import RunContext, log
from batchcast.commit import Outcome
from batchcast.errors import InputError, ModelError, SpecError
from batchcast.sources import render


def run(ctx: RunContext, outcome: Outcome) -> None:
    from batchcast.beam import pipeline
    from batchcast.executors.beam import pipeline_options

    model_dir = ctx.workdir / "model"
    ctx.fetch_model(model_dir)  # checksums verified before any worker loads it
    output = ctx.workdir / "output"
    shards_dir = output / "shards"
    shards_dir.mkdir(parents=True)
    out = ctx.action.output
    schema = out.schema_.requiring(ctx.spec.model.ids)
    options = pipeline_options(ctx.action.beam)
    workers = options.get("direct_num_workers") or options.get("num_workers") or 2
    if options["runner"] != "FnApiRunner":
        raise SpecError(f"{ctx.where} beam runner = '{ctx.action.beam.runner}': only the local runner is built so "
                        "far (a cluster's workers need the shards and the model on the store's URL)",
                        "use runner = \"DirectRunner\", or executor = \"local\"")
    if ctx.action.checks:
        outcome.checks = {"skipped": "input checks do not run under the beam executor yet"}
        log.warning("input checks skipped: %s", outcome.checks["skipped"])
    shard_list = pipeline.shards(*_input(ctx), ctx.spec.model.ids, ctx.action.beam.shards or 2 * workers,
                                 ctx.action.input.format)
    job = {"model_dir": str(model_dir), "model_path": str(ctx.spec.model_path), "schema": str(schema),
           "out": str(shards_dir), "batch_size": ctx.action.batch_size}
    _one_pool_per_core(workers)
    log.info("scoring %d shards with Beam's %s", len(shard_list), options["runner"])
    try:
        sidecars = pipeline.run(shard_list, job, options)
    except Exception as exc:  # Beam wraps the worker's error; its message names the shard
        raise ModelError(f"the Beam pipeline failed: {_first_line(exc)}",
                         "read the run's log; nothing was published") from exc
    outcome.inputs.update({"runner": options["runner"], "shards": len(shard_list)})
    outcome.rows["read"] = sum(s["rows"] for s in sidecars)
    outcome.files.update(ctx.store.put_dir(ctx.run_id, "output", output))  # stored before the rows are published
    rows = ctx.warehouse.publish(out.table, schema, pipeline.batches(shards_dir, sidecars),
                                 logical_date=ctx.request.logical_date, run_id=ctx.run_id,
                                 model_run=ctx.request.model_run, source="the Beam pipeline's shards",
                                 allow_empty=out.allow_empty)
    outcome.outputs.update({"table": out.table, "shards": sidecars})
    outcome.rows["written"] = rows
    log.info("published %d rows of %s into %s from %d shards", rows, ctx.request.logical_date, out.table,
             len(sidecars))


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
    """(query, files, DuckDB file) of the action's input for the logical date."""
    spec, day = ctx.action.input, ctx.request.logical_date
    if spec.path:
        path = render(spec.path, day, f"{ctx.where} path")
        url = path if "://" in path else str(ctx.spec.root / path)
        fs, pattern = fsspec.core.url_to_fs(url)
        files = sorted(fs.glob(pattern))
        if not files:
            raise InputError(f"{ctx.where} path: no files match '{path}'", "check the path and the logical date")
        return None, [fs.unstrip_protocol(f) if "://" in url else f for f in files], None
    from batchcast.warehouses import backend_for

    database = backend_for(ctx.spec.warehouse_url).local_file(ctx.spec.warehouse_url)
    if database is None:
        raise SpecError(f"{ctx.where}: the beam executor reads queries from DuckDB only, so far",
                        "use a path input, or executor = \"local\"")
    return render(spec.query, day, f"{ctx.where} query"), [], str(database)


def _first_line(exc: BaseException) -> str:
    """The worker's own message, which names the shard, out of Beam's wrapping of it."""
    text = str(exc)
    found = re.search(r"shard \d+ \([^)]*\): [^\n\[]*", text)
    return (found.group(0) if found else text.splitlines()[0] if text else type(exc).__name__).strip()[:500]
