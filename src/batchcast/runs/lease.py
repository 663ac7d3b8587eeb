"""The scheduler's lease: one scheduler per service, wherever its folder is.

Two folders may hold specs of the same service, sharing its store and
warehouse (a colleague's checkout, a second machine); a lock file in each
folder cannot see the other, and both schedulers would run every date. The
lease lives in the artifact store both share, at
``{name}/{version}/_scheduler/lease.json``: who holds it and when it last
renewed it. A scheduler renews it on every pass; one that stops releases
it; one that died lets it expire after ``ttl`` seconds, and the next may
take it then.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from batchcast.errors import SchedulerError
from batchcast.runs import atomic

if TYPE_CHECKING:
    from batchcast.runs.store import ArtifactStore

LEASE = "_scheduler/lease.json"
log = logging.getLogger("batchcast")


class Lease:
    """The right to schedule ``name/version``, held by this process for its spec folder ``folder``.

    Call :meth:`acquire` only while holding the folder's own scheduler lock.
    """

    def __init__(self, store: ArtifactStore, name: str, version: str, folder: Path, ttl: float = 60.0):
        self.store, self.name, self.version, self.ttl = store, name, version, ttl
        self.holder = {"host": socket.gethostname(), "pid": os.getpid(), "folder": str(folder)}
        self.path = store._path(name, version, LEASE)

    def acquire(self) -> None:
        """Take the lease; SchedulerError naming the holder if another live scheduler has it."""
        held = self._read()
        if held is not None and not self._ours(held) and self._age(held) < self.ttl:
            raise SchedulerError(
                f"another scheduler is running {self.name}/{self.version}: pid {held['pid']} on {held['host']}, "
                f"for the spec in {held['folder']} (renewed {self._age(held):.0f} s ago)",
                "stop it first, or schedule this service from that one; a lease it never renews expires "
                f"after {self.ttl:.0f} s")
        if held is None and atomic.create_exclusive(self.store.fs, self.path, self._doc()):
            return
        if held is not None and not self._ours(held):
            log.warning("the scheduler lease of %s/%s (pid %s on %s) expired; taking it over", self.name,
                        self.version, held["pid"], held["host"])
        self.renew()

    def renew(self) -> None:
        atomic.replace(self.store.fs, self.path, self._doc())

    def release(self) -> None:
        """Give the lease up, if this process still holds it."""
        held = self._read()
        if held is not None and self._ours(held):
            self.store.fs.rm_file(self.path)

    def _read(self) -> dict | None:
        try:
            return json.loads(self.store.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except ValueError:  # half a document from a crash mid-write: nobody holds it
            return None

    def _ours(self, held: dict) -> bool:
        # The same folder on the same host: its scheduler holds the folder's lock file, so a lease written
        # from there by another pid is a predecessor that died (SIGKILL, a reboot) without releasing it.
        return held.get("host") == self.holder["host"] and held.get("folder") == self.holder["folder"]

    @staticmethod
    def _age(held: dict) -> float:
        renewed = dt.datetime.fromisoformat(held["renewed_at"])
        return (dt.datetime.now(dt.UTC) - renewed).total_seconds()

    def _doc(self) -> bytes:
        return json.dumps({**self.holder, "renewed_at": dt.datetime.now(dt.UTC).isoformat()}).encode()

