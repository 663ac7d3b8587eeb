"""The application scored by Apache Beam: shards of the input, each scored in whole Arrow batches.

- Shards: each file of a Parquet/CSV glob, or a warehouse query split into N
  disjoint parts by a hash of the ``[model] ids`` (the warehouse's ``slice``).
- Each worker loads the model once (``DoFn.setup``): from the folder the run
  fetched and verified when the workers share this machine, else from the
  artifact store itself, checksums verified first. It reads its shard in
  batches, predicts, and writes one Parquet file of output rows and a sidecar
  with its row count and sha256 into the run's folder in the store.
- The run then publishes the shards in one transaction, as any run: a
  shard that failed means nothing is published.
"""

from __future__ import annotations

import difflib
import json
import logging
import tempfile
import uuid
from pathlib import Path

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq

from batchcast.data.schema import is_identifier
from batchcast.errors import ModelError, RunTimeout, SpecError
from batchcast.runs.store import sha256_file

log = logging.getLogger("batchcast")


class Score(beam.DoFn):
    """Score one shard into ``{out}/shard-NNNNN-<attempt>.parquet`` and its sidecar ``shard-NNNNN.json``."""

    def __init__(self, job: dict):
        self.job = job  # plain data: it is pickled to every worker

    def setup(self):
        model, folder = self.job["model"], self.job["model"].get("dir")
        if folder is None:  # a worker of a cluster: the model comes from the store, verified
            from batchcast.runs.store import ArtifactStore

            self._fetched = tempfile.TemporaryDirectory(prefix="batchcast-model-")
            store = ArtifactStore(model["store"])
            store.fetch_run(model["run"], Path(self._fetched.name))
            folder = self._fetched.name
        from batchcast.model.loading import from_folder

        # A worker on this machine reads the folder the run fetched and verified (load_run); a cluster's worker
        # has just fetched and verified it from the store.
        self.scorer, _ = from_folder(Path(folder), Path(self.job["model_path"]), model.get("run"))

    def teardown(self):
        if getattr(self, "_fetched", None) is not None:
            self._fetched.cleanup()

    def process(self, shard: dict):
        from batchcast.data.schema import Schema

        schema = Schema.parse(self.job["schema"])
        name = f"shard-{shard['index']:05d}"
        try:
            with tempfile.TemporaryDirectory(prefix="batchcast-shard-") as tmp:
                # Named per attempt: a retried or duplicated bundle never writes over another's file;
                # the sidecar, written last, says which one counts.
                local = Path(tmp) / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
                rows = self._score(shard, schema, local)
                sidecar = {"index": shard["index"], "what": shard["what"], "file": local.name, "rows": rows,
                           "sha256": sha256_file(local)}
                fs, out = fsspec.core.url_to_fs(self.job["out"])
                fs.makedirs(out, exist_ok=True)
                fs.put_file(str(local), f"{out}/{local.name}")
                fs.pipe_file(f"{out}/{name}.json", json.dumps(sidecar).encode())  # written last: the shard is whole
        except Exception as exc:
            raise RuntimeError(f"shard {shard['index']} ({shard['what']}): {exc}") from exc
        yield sidecar

    def _score(self, shard: dict, schema, path: Path) -> int:
        from batchcast.data.schema import conform

        rows = 0
        with pq.ParquetWriter(path, schema.to_arrow()) as writer:
            for batch in _read(shard, self.job["batch_size"]):
                out = self.scorer.score(batch, schema, shard["what"])
                writer.write_batch(conform(out, schema, shard["what"]))  # cast as inline runs cast
                rows += batch.num_rows
        return rows


def _read(shard: dict, batch_size: int):
    if shard["kind"] == "file":
        import pyarrow.dataset as ds

        path, fs = shard["path"], None
        if "://" in path:  # through fsspec; a local file is read by Arrow's own filesystem, which is faster
            fs, path = fsspec.core.url_to_fs(path)
        yield from ds.dataset(path, format=shard["format"], filesystem=fs).to_batches(batch_size=batch_size)
        return
    from batchcast.warehouses import open_warehouse

    warehouse = open_warehouse(shard["warehouse"])
    try:
        yield from warehouse.read(shard["query"], batch_size)
    finally:
        warehouse.close()


def shards(query: str | None, files: list[str], warehouse_url: str | None, ids: list[str], parts: int,
           fmt: str | None) -> list[dict]:
    """The input's shards: its files, or ``parts`` hash slices of its query by ``ids``.

    The query runs once per slice, so it must give the same rows each time
    (no ``random()``, no ``LIMIT`` without ``ORDER BY``).
    """
    if files:
        fmt = fmt or ("csv" if files[0].endswith(".csv") else "parquet")  # as inline runs infer it
        return [{"index": i, "kind": "file", "path": f, "format": fmt, "what": f} for i, f in enumerate(files)]
    if not ids:
        raise SpecError("a query input is split by a hash of [model] ids, which is empty",
                        "set [model] ids, e.g. [\"player_id\"]")
    bad = [c for c in ids if not is_identifier(c)]
    if bad:
        raise SpecError(f"[model] ids: '{bad[0]}' is not a column name", "use letters, digits and underscores")
    from batchcast.warehouses import backend_for

    backend = backend_for(warehouse_url)
    warehouse = backend(warehouse_url)  # only to write SQL: nothing is opened
    reading = backend.reading_url(warehouse_url)
    return [{"index": i, "kind": "query", "warehouse": reading, "what": f"part {i + 1} of {parts} of the query",
             "query": warehouse.slice(query, ids, parts, i)} for i in range(parts)]


def checked(options: dict, where: str = "[actions.application.beam]") -> dict:
    """``options`` if Beam knows every key: Beam drops an unknown one without a word (``num_worker = 8``)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    known = set(PipelineOptions().get_all_options(retain_unknown_options=False))
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise SpecError(f"{where} options.{key}: Beam's PipelineOptions have no such option",
                            f"did you mean '{close[0]}'?" if close else "see Beam's pipeline options reference")
    return options


def run(shard_list: list[dict], job: dict, options: dict, *, seconds: float | None = None,
        on_submit=None) -> list[dict]:
    """Score every shard; the sidecars, in shard order. Raises naming the first shard that failed.

    ``on_submit(job_id)`` hears the runner's job id as soon as there is one.
    A job still running after ``seconds``, or interrupted (Ctrl-C, the
    executor's SIGTERM), is cancelled on its runner: a cluster's job would
    otherwise run on, unseen. The local runner returns only when it is done;
    its workers die with this process.
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import PipelineState

    pipeline = beam.Pipeline(options=PipelineOptions(**options))
    _ = (pipeline | beam.Create(shard_list) | beam.Reshuffle() | beam.ParDo(Score(job)))
    result = pipeline.run()
    job_id = _job_id(result)
    if on_submit and job_id:
        on_submit(job_id)
    try:
        state = result.wait_until_finish(duration=int(seconds * 1000) if seconds else None)
    except BaseException:  # a stop (KeyboardInterrupt, RunTimeout from the worker's SIGTERM) or a lost runner
        _cancel(result, job_id)
        raise
    if not PipelineState.is_terminal(state):
        _cancel(result, job_id)
        raise RunTimeout(f"the Beam job {job_id} was still {state} after {seconds:.0f} s, and was cancelled",
                         "raise [actions.*] timeout, or give the job more workers")
    if state != PipelineState.DONE:
        raise ModelError(f"the Beam job {job_id} ended {state}", "read the runner's log of the job")
    return collect(job["out"], len(shard_list))


def collect(out: str, count: int) -> list[dict]:
    """The sidecars under ``out``, in shard order; every shard's must be there."""
    fs, root = fsspec.core.url_to_fs(out)
    fs.invalidate_cache(root)  # object stores' listings are cached per process; the workers wrote behind it
    paths = sorted(fs.glob(f"{root}/shard-*.json"))
    sidecars = sorted((json.loads(raw) for raw in fs.cat(paths).values()) if paths else [],
                      key=lambda s: s["index"])
    if [s["index"] for s in sidecars] != list(range(count)):  # a shard scored nowhere must not pass
        missing = sorted(set(range(count)) - {s["index"] for s in sidecars})
        raise ModelError(f"the pipeline ended without shards {missing} in {out}", "run the application again")
    return sidecars


def _job_id(result) -> str | None:
    found = getattr(result, "job_id", None) or getattr(result, "_job_id", None)
    return str(found() if callable(found) else found) if found else None


def _cancel(result, job_id: str | None) -> None:
    from apache_beam.runners.runner import PipelineState

    try:
        if PipelineState.is_terminal(result.state):  # failed or done: nothing runs on
            return
        result.cancel()
        log.warning("cancelled the Beam job %s on its runner", job_id)
    except Exception as exc:  # noqa: BLE001 - the interrupt is what the caller must see
        log.error("could not cancel the Beam job %s: %s; cancel it on the runner", job_id, exc)


__all__ = ["Score", "checked", "collect", "run", "shards"]
