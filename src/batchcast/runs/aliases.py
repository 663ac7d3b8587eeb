"""Aliases: named pointers to a run (``champion``, ``latest``), small JSON documents moved atomically.

``{name}/{version}/_aliases/{alias}.json`` holds the target; every move is
also kept under ``_aliases/history/{alias}/``. An alias name is a path part,
so it is checked with a full match before it touches the store: no ``/``,
no ``..``, no glob characters, no newline.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from batchcast.errors import SpecError, StoreError
from batchcast.runs import atomic
from batchcast.runs.manifest import RunStatus, new_run_ts
from batchcast.runs.translate import translated

ALIASES = "_aliases"
ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")


def is_alias(name: str) -> bool:
    return ALIAS.fullmatch(name) is not None


def checked(alias: str) -> str:
    """``alias`` if it is a valid alias name; SpecError naming it otherwise."""
    if not is_alias(alias):
        raise SpecError(f"alias {alias!r} is not a valid alias name",
                        "use a letter, then letters, digits, '_' or '-' (at most 63), e.g. champion")
    return alias


class Aliases:
    """The alias half of :class:`~batchcast.runs.store.ArtifactStore` (it supplies the paths and writes)."""

    @translated
    def alias(self, name: str, version: str, alias: str) -> str | None:
        """The run id ``alias`` points to, or None."""
        checked(alias)
        try:
            raw = self.fs.cat_file(self._path(name, version, ALIASES, f"{alias}.json"))
        except FileNotFoundError:
            return None
        return json.loads(raw)["run_id"]

    @translated
    def aliases(self, name: str, version: str) -> dict[str, str]:
        found = {}
        self._fresh()
        for path in self.fs.glob(self._path(name, version, ALIASES, "*.json")):
            alias = path.rsplit("/", 1)[1][: -len(".json")]
            found[alias] = json.loads(self.fs.cat_file(path))["run_id"]
        return found

    @translated
    def set_alias(self, name: str, version: str, alias: str, run_id: str, by: str = "batchcast promote") -> None:
        """Point ``alias`` at a committed successful run, verified whole, atomically, and record the move."""
        checked(alias)
        manifest = self.verify(self.manifest(run_id), files=True)
        if manifest.status is not RunStatus.SUCCEEDED:
            raise StoreError(f"run {run_id} {manifest.status.value}; only successful runs can be promoted",
                             "promote a run whose status is succeeded")
        now = dt.datetime.now(dt.UTC)
        doc = json.dumps({"alias": alias, "run_id": run_id, "previous": self.alias(name, version, alias),
                          "set_at": now.isoformat(), "by": by}).encode()
        atomic.create_exclusive(self.fs, self._path(name, version, ALIASES, "history", alias,
                                                    f"{new_run_ts(now)}.json"), doc)
        atomic.replace(self.fs, self._path(name, version, ALIASES, f"{alias}.json"), doc)

    @translated
    def alias_history(self, name: str, version: str, alias: str) -> list[dict]:
        checked(alias)
        self._fresh()
        paths = sorted(self.fs.glob(self._path(name, version, ALIASES, "history", alias, "*.json")))
        return [json.loads(raw) for raw in self.fs.cat(paths).values()] if paths else []
