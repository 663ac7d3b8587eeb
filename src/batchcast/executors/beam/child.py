"""The beam executor's child: ``python -m batchcast.executors.beam.child REQUEST.json``, in Beam's environment.

The run is committed as any run; only the scoring differs (:mod:`batchcast.executors.beam.application`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from batchcast.actions import execute
from batchcast.errors import RunTimeout
from batchcast.executors.beam import application
from batchcast.runs.manifest import RunRequest


def main(argv: list[str]) -> int:
    request = RunRequest.model_validate_json(Path(argv[0]).read_text())
    deadline = float(os.environ.get("BATCHCAST_DEADLINE") or "inf")
    signal.signal(signal.SIGTERM, lambda signum, frame: _stopped(deadline))
    return 0 if execute(request, runner=application.run).succeeded else 1


def _stopped(deadline: float) -> None:
    """The executor's SIGTERM: at the run's deadline a timeout, before it a stop (Ctrl-C, a scheduler's kill).

    Either way the pipeline cancels its job on the runner, and the run is
    committed with the status that says why.
    """
    if time.time() >= deadline - 1:
        raise RunTimeout("the run reached its timeout; its Beam job was cancelled",
                         "raise [actions.*] timeout, or give the job more workers")
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
