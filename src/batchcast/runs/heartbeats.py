"""Heartbeats: which ``serve`` and ``stream`` processes answer with which model, for the dashboard.

Layout, beside the aliases::

    {name}/{version}/_heartbeats/{kind}-{host}-{pid}.json   one per process, replaced at every beat

A process beats when it starts and at every check of its alias (each
``poll`` seconds), and removes its file when it stops. A file whose beat is
older than ``LATE`` polls is a process that died or hangs: the dashboard
shows it as silent, with when it was last heard from. Writing a beat never
fails the process that beats (it logs once and goes on).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from batchcast.runs import atomic

if TYPE_CHECKING:
    from batchcast.runs.store import ArtifactStore

FOLDER = "_heartbeats"
LATE = 3  # polls without a beat before a process counts as silent
log = logging.getLogger("batchcast")


class Heart:
    """One process's heartbeat file: ``kind`` is serve or stream, ``where`` its address or topic."""

    def __init__(self, store: ArtifactStore, name: str, version: str, kind: str, where: str, every: float):
        self.store, self.kind, self.where, self.every = store, kind, where, every
        self.path = store._path(name, version, FOLDER, f"{kind}-{socket.gethostname()}-{os.getpid()}.json")
        self.started = _now()
        self.failing = False

    def beat(self, run_id: str) -> None:
        doc = {"kind": self.kind, "where": self.where, "run_id": run_id, "host": socket.gethostname(),
               "pid": os.getpid(), "started_at": self.started, "at": _now(), "every_s": self.every}
        try:
            atomic.replace(self.store.fs, self.path, json.dumps(doc).encode())
            self.failing = False
        except Exception as exc:  # noqa: BLE001 - the dashboard's view must never stop what serves
            if not self.failing:
                log.warning("heartbeat not written to %s: %s (the dashboard will show this process as silent)",
                            self.path, exc)
            self.failing = True

    def stop(self) -> None:
        try:
            self.store.fs.rm(self.path)
        except Exception:  # noqa: BLE001, S110 - a beat left behind turns silent on its own
            pass


def heartbeats(store: ArtifactStore, name: str, version: str, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every process's last beat, newest first, each with ``silent`` (no beat for ``LATE`` polls)."""
    now = now or dt.datetime.now(dt.UTC)
    folder = store._path(name, version, FOLDER)
    found = []
    try:
        store._fresh()  # an object store's listing is cached per process; the beats change behind it
        paths = store.fs.glob(f"{folder}/*.json")
    except Exception:  # noqa: BLE001 - no folder yet, or a store that cannot list: nothing is known to serve
        return []
    for path in paths:
        try:
            doc = json.loads(store.fs.cat_file(path))
            age = (now - dt.datetime.fromisoformat(doc["at"])).total_seconds()
        except Exception:  # noqa: BLE001, S112 - a beat half written or removed meanwhile: the next one will do
            continue
        found.append({**doc, "age_s": age, "silent": age > LATE * float(doc.get("every_s") or 10)})
    return sorted(found, key=lambda doc: doc["at"], reverse=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
