"""In this process, with batchcast's own interpreter: for tests and notebooks.

There is no isolation and no timeout: a command-contract model runs with
the ``python`` next to batchcast's interpreter.
"""

from __future__ import annotations

from batchcast.actions import execute
from batchcast.executors.base import Executor
from batchcast.runs.manifest import Manifest, RunRequest
from batchcast.spec import ServiceSpec


class InlineExecutor(Executor):
    name = "inline"
    kills_on_timeout = False  # it runs in its caller's process: the caller is its timeout

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        return execute(request, spec=spec)
