"""An application run by the beam executor: the pipeline scores shards, then one transaction publishes them.

The shards, their scoring and their publishing are every engine's
(:mod:`batchcast.executors.sharded`); this module gives them to Beam.
"""

from __future__ import annotations

from batchcast.actions.context import RunContext, log
from batchcast.errors import BatchcastError, ModelError
from batchcast.executors import sharded
from batchcast.runs.commit import Outcome

CLUSTERS = ("DataflowRunner", "FlinkRunner", "SparkRunner")  # whose workers cannot see this machine's files


def run(ctx: RunContext, outcome: Outcome) -> None:
    from batchcast.executors.beam import pipeline
    from batchcast.executors.beam.executor import pipeline_options

    settings = ctx.action.beam
    options = pipeline.checked(pipeline_options(settings), f"{ctx.where[:-1]}.beam]")
    workers = options.get("direct_num_workers") or options.get("num_workers") or 2
    local = settings.runner == "DirectRunner"
    shard_list, job, schema = sharded.prepare(
        ctx, outcome, who=f"beam runner = '{settings.runner}'", remote=settings.runner in CLUSTERS,
        from_store=not local, shipped=not local, parts=settings.shards or 2 * workers, workers=workers)
    outcome.inputs["runner"] = settings.runner
    log.info("scoring %d shards with Beam's %s", len(shard_list), settings.runner)
    sidecars = _score(ctx, outcome, shard_list, job, options)
    sharded.publish(ctx, outcome, sidecars, schema, "the Beam pipeline's shards")


def _score(ctx: RunContext, outcome: Outcome, shard_list: list[dict], job: dict, options: dict) -> list[dict]:
    from batchcast.executors.beam import pipeline
    from batchcast.executors.beam.executor import GRACE_S

    try:
        return pipeline.run(shard_list, job, options, seconds=sharded.seconds_left(ctx, GRACE_S),
                            on_submit=lambda job_id: _submitted(outcome, job_id))
    except BatchcastError:  # batchcast's own (a timeout, a missing shard) say what they mean already
        raise
    except Exception as exc:  # Beam wraps the worker's error; its message names the shard
        raise ModelError(f"the Beam pipeline failed: {sharded.worker_message(exc)}",
                         "read the run's log; nothing was published") from exc


def _submitted(outcome: Outcome, job_id: str) -> None:
    outcome.inputs["job_id"] = job_id
    log.info("Beam job %s submitted", job_id)
