"""The Executor port: where an action's process runs."""

from __future__ import annotations

import abc

from batchcast.actions import RunRequest
from batchcast.runs import Manifest
from batchcast.spec import ServiceSpec


class Executor(abc.ABC):
    """Runs one :class:`RunRequest` to a committed manifest.

    An executor waits on its platform (a process exit, a container's state)
    and then reads the manifest; it never infers the outcome from log lines.
    If the run's process died before committing, the executor commits a
    failed manifest for it, so every submitted run ends committed.
    """

    name: str

    @abc.abstractmethod
    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        """Run the request and return its committed manifest."""

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        """Stop a submitted run; its ``submit`` then returns it failed. Local processes stop with their caller."""
