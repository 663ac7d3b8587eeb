"""In this process, with batchcast's own interpreter: for tests and notebooks.

There is no isolation and no timeout: a command-contract model runs with
the ``python`` next to batchcast's interpreter.
"""

from __future__ import annotations

from batchcast.actions import RunRequest, execute
from batchcast.executors.base import Executor
from batchcast.runs import Manifest
from batchcast.spec import ServiceSpec


class InlineExecutor(Executor):
    name = "inline"

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        return execute(request)
