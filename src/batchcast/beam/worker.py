"""The beam executor's child: ``python -m batchcast.beam.worker REQUEST.json``, in Beam's environment.

The run is committed as any run; only the scoring differs (:mod:`batchcast.beam.application`).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from batchcast import process
from batchcast.actions import execute
from batchcast.beam import application
from batchcast.runs import RunRequest


def main(argv: list[str]) -> int:
    request = RunRequest.model_validate_json(Path(argv[0]).read_text())
    signal.signal(signal.SIGTERM, process.interrupt)  # the executor's stop: the job is cancelled on its runner
    return 0 if execute(request, runner=application.run).succeeded else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
