"""The process the scheduler starts for one run.

``python -m batchcast.scheduler.child SPEC ACTION DATE RUN_TS RESULT``

It inherits the run's lock (an flock'd file descriptor) from the scheduler
and holds it until it exits, so a restarted scheduler can tell a run still
in flight from one whose process is gone. A run's outcome is its manifest;
an error raised before any run exists (a bad spec, no model) is written to
RESULT as JSON, since there is no manifest to hold it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from batchcast.errors import BatchcastError
from batchcast.service import Service


def main(argv: list[str]) -> int:
    spec, action, date, run_ts, result = argv
    try:
        manifest = Service(spec).run(action, date, run_ts=run_ts)
    except BatchcastError as exc:
        Path(result).write_text(json.dumps({"error": exc.to_dict(), "transient": exc.transient}))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{manifest.run_id} {manifest.status.value}")
    return 0 if manifest.succeeded else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
