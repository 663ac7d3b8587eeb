"""``executor = "beam"``: an application scored by Apache Beam, then published by batchcast in one transaction.

The run is a child process, as with the local executor, in an environment
of its own: the model's requirements, Apache Beam, and batchcast's runtime
pinned to this process's versions except the libraries Beam pins itself
(pyarrow: Beam 2.77 wants < 26). Beam never enters batchcast's core
environment. The child runs the pipeline (:mod:`batchcast.executors.beam.pipeline`),
which writes Parquet shards, then publishes them like any run.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from batchcast.executors.engine import ShardedExecutor
from batchcast.spec.base import Section

BEAM = "apache-beam{extras}==2.77.0"  # the version tested: a floating one would resolve differently under one key
BEAM_PINS = ("pyarrow",)  # Beam's own bounds decide it in its environment (2.77: < 26)
GRACE_S = 30.0  # before the timeout: time to cancel a cluster's job and commit the run


class BeamSettings(Section):
    """How the beam executor runs an application: Beam's runner and its pipeline options."""

    runner: Literal["DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner"] = Field(
        "DirectRunner", description="DirectRunner: this machine, one process per core.")
    options: dict[str, Any] = Field(default_factory=dict, description="PipelineOptions: project, region, "
                                    "temp_location, num_workers, machine_type, sdk_container_image, ...")
    shards: int | None = Field(None, ge=1, description="Parts a query input is split into (by a hash of the "
                                                      "ids); default twice the workers.")


class BeamExecutor(ShardedExecutor):
    name = "beam"
    engine = "Beam"
    worker = "batchcast.executors.beam.child"  # the application scored by a pipeline, committed as any run

    def grace(self, spec, request) -> float:
        # A cluster's job outlives the child unless it is cancelled (beam.pipeline.run does, on SIGTERM).
        return 0.0 if spec.action(request.action).beam.runner == "DirectRunner" else GRACE_S

    def environment(self, spec, request=None):
        from batchcast.isolation.environments import ensure_environment

        # Submitting to Dataflow needs Beam's Google Cloud clients; the other runners need none.
        dataflow = any(action.beam.runner == "DataflowRunner" for action in spec.actions.values())
        return ensure_environment(spec, True, drop=BEAM_PINS, added=(BEAM.format(extras="[gcp]" if dataflow else ""),))


def pipeline_options(settings: BeamSettings, workers: int | None = None) -> dict[str, Any]:
    """The PipelineOptions keywords for ``settings``: the runner's, then the user's (which win)."""
    if settings.runner == "DirectRunner":
        # The in-process runner, one worker process per core: the default runner would try to download Prism.
        base = {"runner": "FnApiRunner", "direct_running_mode": "multi_processing",
                "direct_num_workers": workers or os.cpu_count() or 1}
    else:
        base = {"runner": settings.runner}
    return {**base, **settings.options}
