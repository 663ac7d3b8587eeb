"""The runs' processes and lock files: starting, adopting, watching and killing them.

Crash safety rests on three facts, in this order:

1. the ledger marks a date ``running`` with its run id *before* the run's
   process starts;
2. that process inherits an flock'd lock file named after the run id and
   holds it until it exits (it runs in its own session, so killing the
   scheduler does not kill it);
3. a run's outcome is its committed manifest.

A restarted scheduler therefore knows, for every ``running`` date, whether
its process is still alive (the lock is held: wait for it), finished (a
manifest: record it), or never ran or died without committing (re-queue
it). Nothing is decided from the warehouse.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from batchcast.errors import SchedulerError
from batchcast.isolation.process import kill_tree
from batchcast.runs.commit import now
from batchcast.runs.lease import Lease
from batchcast.runs.manifest import new_run_ts, run_id
from batchcast.scheduling import periods
from batchcast.scheduling.ledger import Ledger
from batchcast.scheduling.periods import Period
from batchcast.service import Service
from batchcast.warehouses import local_file

log = logging.getLogger("batchcast")


@dataclass(eq=False)  # compared by identity: two specs may name the same service
class Tracked:
    """One service the scheduler is in charge of."""

    service: Service
    ledger: Ledger
    state_dir: Path
    lock_fd: int | None = None
    lease: Lease | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.service.name, self.service.version

    @property
    def slot(self) -> Path | None:
        # A file-based warehouse has one writer process at a time: its services' runs go one by one.
        return local_file(self.service.spec.warehouse_url)


@dataclass
class Active:
    """A run in flight: started by this scheduler (``proc``) or adopted after a restart."""

    tracked: Tracked
    action: str
    day: Period
    run_ts: str
    started: dt.datetime
    proc: subprocess.Popen | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return run_id(*self.tracked.key, self.action, self.run_ts)


def track(service: Service) -> Tracked:
    state_dir = service.spec.root / ".batchcast" / "scheduler"
    for sub in ("locks", "logs", "results"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    return Tracked(service, service.ledger, state_dir)


def take_charge(tracked: Tracked) -> None:
    """One scheduler per service: a second would start every date twice."""
    path = tracked.state_dir / "scheduler.lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SchedulerError(f"another scheduler is running {tracked.service.name}/{tracked.service.version} "
                             f"(it holds {path})", "stop it first, or schedule this service from that one") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    tracked.lock_fd = fd  # held until this process exits, however it exits
    # The lock above guards this folder; the lease, in the store, every other folder of the same service.
    tracked.lease = Lease(tracked.service.store, *tracked.key, tracked.service.spec.root)
    try:
        tracked.lease.acquire()
    except SchedulerError:
        os.close(fd)
        tracked.lock_fd = None
        raise


def launch(tracked: Tracked, name: str, day: Period) -> Active:
    """Mark ``day`` running, then start its process holding the run's lock."""
    run_ts = new_run_ts()
    active = Active(tracked, name, day, run_ts, now())
    active.paths = paths(tracked, active.run_id)
    tracked.ledger.set(*tracked.key, name, day, "running", run_id=active.run_id, attempt=True)  # fact 1
    fd = os.open(active.paths["lock"], os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fact 2: the child inherits this lock
        argv = [sys.executable, "-m", "batchcast.scheduler.child", str(tracked.service.spec.file), name,
                periods.key(day), run_ts, str(active.paths["result"])]
        with open(active.paths["log"], "ab") as out:
            active.proc = subprocess.Popen(argv, pass_fds=(fd,), start_new_session=True, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=subprocess.STDOUT, cwd=tracked.service.spec.root)
        os.write(fd, str(active.proc.pid).encode())
    finally:
        os.close(fd)
    log.info("started %s for %s", active.run_id, periods.key(day))
    return active


def adopt(tracked: Tracked) -> list[Active]:
    """The runs a previous scheduler left ``running``; a date marked so without a run id is queued again."""
    adopted = []
    for entry in tracked.ledger.entries(*tracked.key, states=("running",)):
        run_ts = (entry.run_id or "").rsplit("/", 1)[-1]
        if not run_ts:
            tracked.ledger.set(*tracked.key, entry.action, entry.logical_date, "queued")
            continue
        adopted.append(Active(tracked, entry.action, entry.logical_date, run_ts, entry.updated_at,
                              paths=paths(tracked, entry.run_id)))
        log.info("adopted %s, left running by a previous scheduler", adopted[-1].run_id)
    return adopted


def poll(active: Active) -> tuple[bool, int | None]:
    """(whether its process ended, its exit code if this scheduler started it)."""
    if active.proc:
        code = active.proc.poll()
        return code is not None, code
    return not lock_held(active.paths["lock"]), None


def kill(active: Active) -> None:
    """Kill the run's process and everything it started, if it is still this run's."""
    pid = active.proc.pid if active.proc else recorded_pid(active.paths["lock"], active.run_ts)
    if pid:
        kill_tree(pid)
        if active.proc:
            active.proc.wait()


def paths(tracked: Tracked, rid: str) -> dict[str, Path]:
    safe = rid.replace("/", "__")
    return {"lock": tracked.state_dir / "locks" / f"{safe}.lock",
            "result": tracked.state_dir / "results" / f"{safe}.json",
            "log": tracked.state_dir / "logs" / f"{safe}.log"}


def lock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if this call took it


def recorded_pid(path: Path, run_ts: str) -> int | None:
    """The pid a lock file records, if that process is still this run's (pids get reused)."""
    try:
        pid = int(path.read_text().strip() or 0)
        return pid if run_ts in Path(f"/proc/{pid}/cmdline").read_text() else None
    except (OSError, ValueError):
        return None


def clean(paths: dict[str, Path]) -> None:
    for key in ("lock", "result"):
        paths[key].unlink(missing_ok=True)
