"""The spark executor's child: ``python -m batchcast.executors.spark.child REQUEST.json``: Spark's driver.

The run is committed as any run; only the scoring differs (:mod:`batchcast.executors.spark.application`).
"""

from __future__ import annotations

import sys

from batchcast.executors.sharded import child_main
from batchcast.executors.spark import application

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:], application.run, "Spark"))
