"""What the scheduling rules ask of the world, looked up only for the dates a pass reaches, once per pass.

Each is a mapping the pure rules read (:func:`batchcast.scheduling.rules.dispatch`): a key the pass never
reaches costs nothing, and one it reaches twice is looked at once.
"""

from __future__ import annotations

from batchcast.actions import waiting
from batchcast.errors import RunNotFound
from batchcast.scheduler.supervise import Tracked
from batchcast.scheduling.periods import Period


class _Lookup(dict):
    def __init__(self, tracked: list[Tracked]):
        super().__init__()
        self.tracked = tracked

    def __missing__(self, key: tuple) -> str | None:
        self[key] = self.look(self.tracked[key[0]], *key[1:])
        return self[key]

    def look(self, tracked: Tracked, *key) -> str | None:
        raise NotImplementedError


class MissingModels(_Lookup):
    """(service, model ref) -> why no trained model can be applied, or None."""

    def look(self, tracked: Tracked, ref: str | None) -> str | None:
        try:
            tracked.service.model_for(ref)
        except RunNotFound as exc:
            return exc.message
        return None


class AbsentData(_Lookup):
    """(service, action, period) -> which ``[actions.X.wait_for]`` input is not there yet, or None."""

    def look(self, tracked: Tracked, action: str, day: Period) -> str | None:
        return waiting.missing(tracked.service.spec, action, day)
