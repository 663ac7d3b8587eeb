"""The application scored by Apache Beam: shards of the input, each scored in whole Arrow batches.

- Shards: each file of a Parquet/CSV glob, or a query split into N disjoint
  parts by a hash of the ``[model] ids``.
- Each worker loads the model once (``DoFn.setup``) from the folder the run
  fetched and verified, reads its shard in batches, predicts, and writes one
  Parquet file of output rows and a sidecar with its row count and sha256.
- The run then publishes the shards in one transaction, as any run: a
  shard that failed means nothing is published.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from batchcast import models
from batchcast.errors import IntegrityError, ModelError, SpecError
from batchcast.spec.base import IDENT


class Score(beam.DoFn):
    """Score one shard into ``out/shard-NNNNN.parquet``."""

    def __init__(self, job: dict):
        self.job = job  # plain data: it is pickled to every worker

    def setup(self):
        self.model, self.meta = models.load(Path(self.job["model_dir"]), Path(self.job["model_path"]))

    def process(self, shard: dict):
        from batchcast.schema import Schema, conform

        schema = Schema.parse(self.job["schema"])
        path = Path(self.job["out"]) / f"shard-{shard['index']:05d}.parquet"
        rows = 0
        try:
            with pq.ParquetWriter(path, schema.to_arrow()) as writer:
                for batch in _read(shard, self.job):
                    features = models.choose_features(batch.schema.names, self.meta["features"], None, [], "input")
                    y = models.call(self.model, "predict",
                                    models.as_input(batch, features, self.meta["input_format"]))
                    out = models.predictions_batch(batch, y, schema, "the model's predictions")
                    writer.write_batch(conform(out, schema, shard["what"]))  # cast as inline runs cast
                    rows += batch.num_rows
        except Exception as exc:
            raise RuntimeError(f"shard {shard['index']} ({shard['what']}): {exc}") from exc
        sidecar = {"index": shard["index"], "what": shard["what"], "file": path.name, "rows": rows,
                   "sha256": digest(path)}
        path.with_suffix(".json").write_text(json.dumps(sidecar))
        yield sidecar


def _read(shard: dict, job: dict):
    if shard["kind"] == "file":
        import pyarrow.dataset as ds

        yield from ds.dataset(shard["path"], format=shard["format"]).to_batches(batch_size=job["batch_size"])
        return
    import duckdb

    with duckdb.connect(shard["database"], read_only=True) as con:  # many workers read; nobody writes now
        reader = con.execute(shard["query"]).to_arrow_reader(job["batch_size"])
        yield from reader


def digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # streamed: a shard may be larger than memory


def shards(query: str | None, files: list[str], database: str | None, ids: list[str], parts: int,
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
    bad = [c for c in ids if not IDENT.match(c)]
    if bad:
        raise SpecError(f"[model] ids: '{bad[0]}' is not a column name", "use letters, digits and underscores")
    key = " || '|' || ".join(f'CAST("{c}" AS VARCHAR)' for c in ids)
    body = query.strip().rstrip(";")
    return [{"index": i, "kind": "query", "database": database, "what": f"part {i + 1} of {parts} of the query",
             "query": f"SELECT * FROM (\n{body}\n) AS q WHERE hash({key}) % {parts} = {i}"} for i in range(parts)]


def run(shard_list: list[dict], job: dict, options: dict) -> list[dict]:
    """Score every shard; the sidecars, in shard order. Raises naming the first shard that failed."""
    from apache_beam.options.pipeline_options import PipelineOptions

    with beam.Pipeline(options=PipelineOptions(**options)) as pipeline:
        _ = (pipeline | beam.Create(shard_list) | beam.Reshuffle() | beam.ParDo(Score(job)))
    out = Path(job["out"])
    sidecars = sorted((json.loads(p.read_text()) for p in out.glob("shard-*.json")), key=lambda s: s["index"])
    if [s["index"] for s in sidecars] != list(range(len(shard_list))):  # a shard scored nowhere must not pass
        missing = sorted(set(range(len(shard_list))) - {s["index"] for s in sidecars})
        raise ModelError(f"the pipeline ended without shards {missing} in {out}", "run the application again")
    return sidecars


def batches(out: Path, sidecars: list[dict]):
    """The output rows, shard by shard, each file's sha256 checked against its sidecar first."""
    for sidecar in sidecars:
        path = out / sidecar["file"]
        if digest(path) != sidecar["sha256"]:
            raise IntegrityError(f"{path}: does not match the sha256 its worker wrote", "run the application again")
        yield from pq.ParquetFile(path).iter_batches()


__all__ = ["Score", "batches", "pa", "run", "shards"]
