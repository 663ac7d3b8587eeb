"""The beam executor's child: ``python -m batchcast.executors.beam.child REQUEST.json``, in Beam's environment.

The run is committed as any run; only the scoring differs (:mod:`batchcast.executors.beam.application`).
"""

from __future__ import annotations

import sys

from batchcast.executors.beam import application
from batchcast.executors.sharded import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:], application.run, "Beam"))
