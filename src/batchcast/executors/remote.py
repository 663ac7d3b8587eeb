"""The RemoteExecutor: a run's process elsewhere (a container, a pod, a cloud job or VM), seen through an API.

Every remote run goes the same way whatever the platform: start the
workload, wait on it until the action's timeout, save its log, remove what
would otherwise be left behind, and commit a failed manifest for a run that
ended without committing its own. ``ensure_committed`` returns the run's
own manifest when it committed one, so success is read from there, never
from the platform. This base does all of that once; an executor supplies
its platform's calls.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from batchcast.errors import Cancelled, ExecutorError, RunTimeout
from batchcast.executors.base import Executor
from batchcast.runs.commit import ensure_committed, now
from batchcast.runs.manifest import Manifest, RunRequest, RunStatus

if TYPE_CHECKING:
    from batchcast.spec import ServiceSpec

W = TypeVar("W")  # the platform's handle on one started workload


@dataclass
class Ended:
    """How a workload ended, as its platform tells; the run itself may still have committed."""

    error: ExecutorError  # the failed manifest's error, if the run did not commit its own
    log: bool = True  # its log can still be read
    remove: bool = True  # it is still there, and nothing else will remove it


class RemoteExecutor(Executor, Generic[W]):
    """An executor whose run is a workload on a platform: ``submit`` is built from the platform hooks below.

    Required: ``start``, ``wait``, ``save_log``, ``remove``, ``describe``;
    ``stop`` is optional, and ``cancel`` as for every executor.
    """

    removed: ClassVar[str] = "deleted"  # what became of a workload past its timeout, for the message

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        started = now()
        workload = self.start(request, spec)
        try:
            ended = self._wait(workload, spec.action(request.action).timeout)
        except BaseException as exc:  # interrupted: leave nothing running behind
            self.remove(workload)
            if isinstance(exc, KeyboardInterrupt):
                ensure_committed(spec, request, RunStatus.CANCELLED, started, Cancelled())
            raise
        if ended.log:
            self.save_log(workload, request)
        if ended.remove:
            self.remove(workload)
        status = RunStatus.TIMED_OUT if isinstance(ended.error, RunTimeout) else RunStatus.FAILED
        return ensure_committed(spec, request, status, started, ended.error)

    @abc.abstractmethod
    def start(self, request: RunRequest, spec: ServiceSpec) -> W:
        """Create the workload that runs the request; it must leave nothing behind if it raises."""

    @abc.abstractmethod
    def wait(self, workload: W, timeout: float) -> Ended | None:
        """Wait at most about ``timeout`` seconds for the workload to end: how it ended, or None if it still runs."""

    @abc.abstractmethod
    def save_log(self, workload: W, request: RunRequest) -> None:
        """Append what the platform kept of the workload's output to the run's log (``request.log_path``)."""

    @abc.abstractmethod
    def remove(self, workload: W) -> None:
        """Stop the workload if it still runs and delete it; ExecutorError (with how to do it by hand) if it cannot."""

    @abc.abstractmethod
    def describe(self, workload: W) -> str:
        """How messages name the workload: ``container NAME``, ``Kubernetes Job NAMESPACE/NAME``."""

    def stop(self, workload: W) -> None:
        """Stop a workload past its timeout before its log is saved; by default ``remove`` stops it."""

    def _wait(self, workload: W, timeout: float) -> Ended:
        """Until the workload ends, or until ``timeout`` seconds from its start: then it is stopped, timed out."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ended = self.wait(workload, remaining)
            if ended is not None:
                return ended
        self.stop(workload)
        return Ended(RunTimeout(f"{self.describe(workload)} ran longer than its timeout of {timeout:g} s and was "
                                f"{self.removed}", "raise [actions.*] timeout, or make the job faster"))
