"""The application scored by Apache Beam: each shard (:mod:`batchcast.executors.shards`) one element.

Each worker loads the model once (``DoFn.setup``) and scores whole shards
into the store with the scorer every engine uses; Beam only decides where.
"""

from __future__ import annotations

import difflib
import logging

import apache_beam as beam

from batchcast.errors import ModelError, RunTimeout, SpecError
from batchcast.executors.shards import ShardScorer, collect

log = logging.getLogger("batchcast")


class Score(beam.DoFn):
    """Score one shard into the run's folder (:meth:`ShardScorer.score`); yields its sidecar."""

    def __init__(self, job: dict):
        self.job = job  # plain data: it is pickled to every worker

    def setup(self):
        self.scorer = ShardScorer(self.job)
        self.scorer.open()

    def teardown(self):
        self.scorer.close()

    def process(self, shard: dict):
        yield self.scorer.score(shard)


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


__all__ = ["Score", "checked", "run"]
