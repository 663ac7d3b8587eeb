"""The child-process entry point: ``python -m batchcast.executors.child REQUEST.json``.

Exit 0 when the run succeeded, 1 when it failed and committed a manifest
saying so; the parent reads the manifest, not this code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from batchcast.actions import execute
from batchcast.runs.manifest import RunRequest


def main(argv: list[str]) -> int:
    request = RunRequest.model_validate_json(Path(argv[0]).read_text())
    return 0 if execute(request).succeeded else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
