"""What Spark's executors run: each task scores the shards its partition names, in Arrow batches.

It is imported on the executors, in the packed environment, so it imports no
more than the scoring needs (pyspark's worker brings pyarrow's batches).
"""

from __future__ import annotations

import json

import pyarrow as pa

from batchcast.executors.shards import ShardScorer

# One per Python worker, for the run whose shards it scores: Spark reuses its Python workers across tasks, so the
# model is loaded (and, on a cluster, fetched and verified) once per worker, not once per shard.
_scorer: dict[str, ShardScorer] = {}


def score_batches(job: dict, shards: list[dict], batches):
    """``mapInArrow``'s function over ``spark.range``: the shard of every ``id`` scored; one ``sidecar`` (JSON)
    each."""
    for batch in batches:
        for index in batch.column("id").to_pylist():
            sidecar = _for(job).score(shards[index])
            yield pa.RecordBatch.from_pydict({"sidecar": [json.dumps(sidecar)]})


def _for(job: dict) -> ShardScorer:
    if job["out"] not in _scorer:
        for old in _scorer.values():  # an earlier run's model, in a reused worker
            old.close()
        _scorer.clear()
        _scorer[job["out"]] = ShardScorer(job)
    return _scorer[job["out"]]
