"""Scale-out scoring's worker side, whatever the engine (Beam, Spark): shards of the input, each scored whole.

- Shards: each file of a Parquet/CSV glob, or a warehouse query split into N
  disjoint parts by a hash of the ``[model] ids`` (the warehouse's ``slice``).
- A worker loads the model once (:class:`ShardScorer`): from the folder the run
  fetched and verified when the workers share this machine, else from the
  artifact store itself, checksums verified first. It reads its shard in Arrow
  batches, scores them with the scorer every path uses, and writes one Parquet
  file of output rows and a sidecar with its row count and sha256 into the
  run's folder in the store.
- The run then collects the sidecars (:func:`collect`) and publishes the
  shards in one transaction (:mod:`batchcast.executors.sharded`): a shard that
  failed means nothing is published.

Nothing here imports an engine: the engine only decides where a shard is scored.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import uuid
from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from batchcast.data.schema import is_identifier
from batchcast.errors import ModelError, SpecError
from batchcast.runs.store import sha256_file

SHARDS = "output/shards"
SHARD_FILE = re.compile(r"shard-\d{5}-[0-9a-f]{8}\.parquet")  # what a worker names its shard (ShardScorer.score)


class ShardScorer:
    """The model, loaded once on a worker, and the scoring of whole shards into the store.

    ``job`` is plain data (it is pickled to every worker): ``model`` (a
    folder, or a store and a run), ``model_path``, ``schema``, ``out`` (the
    shards' folder URL) and ``batch_size``.
    """

    def __init__(self, job: dict):
        self.job = job
        self.scorer = None
        self._fetched = None

    def open(self) -> None:
        model, folder = self.job["model"], self.job["model"].get("dir")
        if folder is None:  # a worker of a cluster: the model comes from the store, verified
            from batchcast.runs.store import ArtifactStore

            self._fetched = tempfile.TemporaryDirectory(prefix="batchcast-model-")
            ArtifactStore(model["store"]).fetch_run(model["run"], Path(self._fetched.name))
            folder = self._fetched.name
        from batchcast.model.loading import from_folder

        # A worker on this machine reads the folder the run fetched and verified (load_run); a cluster's worker
        # has just fetched and verified it from the store.
        self.scorer, _ = from_folder(Path(folder), Path(self.job["model_path"]), model.get("run"))

    def close(self) -> None:
        if self._fetched is not None:
            self._fetched.cleanup()
            self._fetched = None

    def score(self, shard: dict, worker: str | None = None) -> dict:
        """Score ``shard`` into the store; its sidecar. Raises naming the shard."""
        from batchcast.data.schema import Schema

        if self.scorer is None:
            self.open()
        schema = Schema.parse(self.job["schema"])
        name = f"shard-{shard['index']:05d}"
        try:
            with tempfile.TemporaryDirectory(prefix="batchcast-shard-") as tmp:
                # Named per attempt: a retried or duplicated task never writes over another's file;
                # the sidecar, written last, says which one counts.
                local = Path(tmp) / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
                rows = self._score(shard, schema, local)
                sidecar = {"index": shard["index"], "what": shard["what"], "file": local.name, "rows": rows,
                           "sha256": sha256_file(local), "worker": worker or f"{socket.gethostname()}:{os.getpid()}"}
                fs, out = fsspec.core.url_to_fs(self.job["out"])
                fs.makedirs(out, exist_ok=True)
                fs.put_file(str(local), f"{out}/{local.name}")
                fs.pipe_file(f"{out}/{name}.json", json.dumps(sidecar).encode())  # written last: the shard is whole
        except Exception as exc:
            raise RuntimeError(f"shard {shard['index']} ({shard['what']}): {exc}") from exc
        return sidecar

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


def plan(query: str | None, files: list[str], warehouse_url: str | None, ids: list[str], parts: int,
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


def collect(out: str, count: int) -> list[dict]:
    """The sidecars under ``out``, in shard order; every shard's must be there."""
    fs, root = fsspec.core.url_to_fs(out)
    fs.invalidate_cache(root)  # object stores' listings are cached per process; the workers wrote behind it
    paths = sorted(fs.glob(f"{root}/shard-*.json"))
    sidecars = sorted((json.loads(raw) for raw in fs.cat(paths).values()) if paths else [],
                      key=lambda s: s["index"])
    if [s["index"] for s in sidecars] != list(range(count)):  # a shard scored nowhere must not pass
        missing = sorted(set(range(count)) - {s["index"] for s in sidecars})
        raise ModelError(f"the job ended without shards {missing} in {out}", "run the application again")
    return sidecars
