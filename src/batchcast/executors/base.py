"""The Executor port: where an action's process runs."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from batchcast.runs.manifest import Manifest, RunRequest

if TYPE_CHECKING:
    from batchcast.spec import ServiceSpec


class Executor(abc.ABC):
    """Runs one :class:`RunRequest` to a committed manifest.

    An executor waits on its platform (a process exit, a container's state)
    and then reads the manifest; it never infers the outcome from log lines.
    If the run's process died before committing, the executor commits a
    failed manifest for it, so every submitted run ends committed.
    """

    name: ClassVar[str]
    # Abilities, read by the core instead of comparing names:
    kills_on_timeout: ClassVar[bool] = True  # False: the caller's process is the run's; its caller must kill it

    @abc.abstractmethod
    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        """Run the request and return its committed manifest; ``spec`` is the request's, parsed by the caller."""

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        """Stop a submitted run; its ``submit`` then returns it failed. Local processes stop with their caller."""
