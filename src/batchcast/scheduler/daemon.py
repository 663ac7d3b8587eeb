"""``batchcast scheduler``: the embedded scheduler, one process for one or more services.

Each pass: settle the runs that ended, record the dates that became due
(by each action's catchup policy), then start what the ledger says is
ready, oldest date first, within ``max_active_runs`` and the scheduler's
parallelism.

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
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from batchcast import alerts
from batchcast.commit import ensure_committed
from batchcast.errors import RunNotFound, RunTimeout, SchedulerError, is_transient
from batchcast.executors import executor_class
from batchcast.process import kill_tree
from batchcast.runs import Manifest, RunRequest, RunStatus, new_run_ts, run_id
from batchcast.scheduling.ledger import Ledger
from batchcast.scheduling.plan import due
from batchcast.service import APPLIES_MODEL, Service
from batchcast.warehouses import local_file

log = logging.getLogger("batchcast")
GRACE_S = 30  # beyond an action's timeout, for an executor's own kill to commit first
KIND_ORDER = {"training": 0, "evaluation": 1, "application": 2}
READY = ("queued", "waiting", "retrying")


@dataclass
class Tracked:
    """One service the scheduler is in charge of."""

    service: Service
    ledger: Ledger
    state_dir: Path
    lock_fd: int | None = None

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
    day: dt.date
    run_ts: str
    started: dt.datetime
    proc: subprocess.Popen | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return run_id(*self.tracked.key, self.action, self.run_ts)


class Scheduler:
    def __init__(self, specs: list[str | Path], *, interval: float = 5.0, parallelism: int = 2,
                 exit_when_idle: bool = False):
        self.tracked = [_track(Service(path)) for path in specs]
        self.interval = interval
        self.parallelism = parallelism
        self.exit_when_idle = exit_when_idle
        self.active: dict[str, Active] = {}
        self.started_at = _now()
        self.stopping = False
        self.failures = 0

    # -- the loop ---------------------------------------------------------

    def run(self) -> int:
        """Run until stopped (SIGTERM, SIGINT) or, with ``exit_when_idle``, until nothing is left to do."""
        for tracked in self.tracked:
            _take_charge(tracked)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        self.adopt()
        log.info("scheduler: %s", ", ".join(f"{t.service.name}/{t.service.version}" for t in self.tracked))
        while not self.stopping:
            self.step(_now())
            if self.exit_when_idle and self.idle():
                break
            time.sleep(min(self.interval, 0.5) if self.active else self.interval)
        if self.active:
            log.info("stopping with %d run(s) in flight; they finish on their own and the next start records them",
                     len(self.active))
        return 1 if self.failures else 0

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def step(self, now: dt.datetime) -> None:
        self.reap(now)
        for tracked in self.tracked:
            paused = tracked.ledger.paused(*tracked.key)
            for name, action in tracked.service.spec.actions.items():
                if action.schedule and name not in paused:
                    self.plan(tracked, name, now)
        self.dispatch(now)

    def idle(self) -> bool:
        if self.active:
            return False
        for tracked in self.tracked:
            paused = tracked.ledger.paused(*tracked.key)
            if any(row["action"] not in paused for row in tracked.ledger.rows(*tracked.key, states=READY)):
                return False
        return True

    # -- deciding what is due ---------------------------------------------

    def plan(self, tracked: Tracked, name: str, now: dt.datetime) -> None:
        """Record the dates of ``name`` that became due, queued or skipped by its catchup policy."""
        action, ledger = tracked.service.spec.actions[name], tracked.ledger
        newest = ledger.newest(*tracked.key, name)
        start = action.start_date or newest or now.astimezone(ZoneInfo(action.timezone)).date()
        if newest is not None:
            start = max(start, newest + dt.timedelta(days=1))
        ticks = due(action.schedule, start, now, action.timezone)
        if not ticks:
            return
        if action.catchup == "all":
            run, skip = ticks, []
        elif action.catchup == "latest":
            run, skip = ticks[-1:], ticks[:-1]
        else:  # none: only ticks that happen while the scheduler is watching
            run = [t for t in ticks if t[1] >= self.started_at]
            skip = [t for t in ticks if t[1] < self.started_at]
        ledger.add(*tracked.key, name, [d for d, _ in skip], "skipped")
        ledger.add(*tracked.key, name, [d for d, _ in run], "queued")
        for day, _ in run:
            log.info("queued %s/%s %s %s", *tracked.key, name, day)

    def dispatch(self, now: dt.datetime) -> None:
        ready = []
        for tracked in self.tracked:
            paused = tracked.ledger.paused(*tracked.key)
            for row in tracked.ledger.rows(*tracked.key, states=READY):
                action = tracked.service.spec.actions.get(row["action"])
                if action is None or row["action"] in paused:
                    continue
                if row["state"] == "retrying" and row["next_at"] and dt.datetime.fromisoformat(row["next_at"]) > now:
                    continue
                ready.append((row["logical_date"], KIND_ORDER.get(action.kind, 9), id(tracked), tracked, row))
        for *_, tracked, row in sorted(ready, key=lambda r: r[:3]):
            if len(self.active) >= self.parallelism:
                return
            if self._blocked(tracked, row["action"]):
                continue
            if self._needs_model(tracked, row, now):
                continue
            self.launch(tracked, row["action"], dt.date.fromisoformat(row["logical_date"]))

    def _blocked(self, tracked: Tracked, name: str) -> bool:
        limit = tracked.service.spec.actions[name].max_active_runs
        same = [a for a in self.active.values() if a.tracked is tracked and a.action == name]
        shared = tracked.slot and any(a.tracked.slot == tracked.slot for a in self.active.values())
        return len(same) >= limit or bool(shared)

    def _needs_model(self, tracked: Tracked, row: dict, now: dt.datetime) -> bool:
        """True if ``row`` must wait for a trained model; fails it once it has waited too long."""
        action = tracked.service.spec.actions[row["action"]]
        if action.kind not in APPLIES_MODEL:
            return False
        try:
            tracked.service.model_for(action.model)
            return False
        except RunNotFound as exc:
            reason = exc.message
        day = dt.date.fromisoformat(row["logical_date"])
        since = dt.datetime.fromisoformat(row["waiting_since"]) if row["waiting_since"] else now
        if (now - since).total_seconds() > action.wait_for_training:
            error = (f"waited {action.wait_for_training:g} s for a trained model, the limit "
                     f"([actions.{row['action']}] wait_for_training): {reason}")
            self._final(tracked, row["action"], day, "failed", None, error, "run training, then queue the date again")
        elif row["state"] != "waiting":
            log.info("%s/%s %s %s waiting for training: %s", *tracked.key, row["action"], day, reason)
            tracked.ledger.set(*tracked.key, row["action"], day, "waiting", error=f"waiting for training: {reason}",
                               waiting_since=since)
        return True

    # -- starting and settling runs ---------------------------------------

    def launch(self, tracked: Tracked, name: str, day: dt.date) -> None:
        run_ts = new_run_ts()
        active = Active(tracked, name, day, run_ts, _now(), paths=_paths(tracked, run_id(*tracked.key, name, run_ts)))
        tracked.ledger.set(*tracked.key, name, day, "running", run_id=active.run_id, attempt=True)  # fact 1
        fd = os.open(active.paths["lock"], os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fact 2: the child inherits this lock
            argv = [sys.executable, "-m", "batchcast.scheduler.child", str(tracked.service.spec.file), name,
                    day.isoformat(), run_ts, str(active.paths["result"])]
            with open(active.paths["log"], "ab") as out:
                active.proc = subprocess.Popen(argv, pass_fds=(fd,), start_new_session=True, stdin=subprocess.DEVNULL,
                                               stdout=out, stderr=subprocess.STDOUT, cwd=tracked.service.spec.root)
            os.write(fd, str(active.proc.pid).encode())
        finally:
            os.close(fd)
        self.active[active.run_id] = active
        log.info("started %s for %s", active.run_id, day)

    def adopt(self) -> None:
        """Take back the runs a previous scheduler left ``running``."""
        for tracked in self.tracked:
            for row in tracked.ledger.rows(*tracked.key, states=("running",)):
                day = dt.date.fromisoformat(row["logical_date"])
                run_ts = (row["run_id"] or "").rsplit("/", 1)[-1]
                if not run_ts:
                    tracked.ledger.set(*tracked.key, row["action"], day, "queued")
                    continue
                started = dt.datetime.fromisoformat(row["updated_at"])
                active = Active(tracked, row["action"], day, run_ts, started, paths=_paths(tracked, row["run_id"]))
                self.active[active.run_id] = active
                log.info("adopted %s, left running by a previous scheduler", active.run_id)

    def reap(self, now: dt.datetime) -> None:
        for active in list(self.active.values()):
            code = active.proc.poll() if active.proc else None
            ended = code is not None if active.proc else not _lock_held(active.paths["lock"])
            action = active.tracked.service.spec.actions[active.action]
            # The inline executor has no timeout of its own: the scheduler's kill is its timeout.
            grace = GRACE_S if executor_class(action.executor).kills_on_timeout else 0
            if not ended and (now - active.started).total_seconds() > action.timeout + grace:
                self._kill(active, action.timeout)
                continue
            if ended:
                self.settle(active, code)

    def _kill(self, active: Active, timeout: float) -> None:
        pid = active.proc.pid if active.proc else _recorded_pid(active.paths["lock"], active.run_ts)
        if pid:
            kill_tree(pid)
            if active.proc:
                active.proc.wait()
        error = RunTimeout(f"the run ran longer than its timeout of {timeout:g} s and was killed with its children",
                           "raise [actions.*] timeout, or make the job faster")
        self._commit_for(active, RunStatus.TIMED_OUT, error)  # its own manifest stands if it had committed
        self.settle(active, -signal.SIGKILL)

    def settle(self, active: Active, code: int | None) -> None:
        """Record how ``active`` ended: from its manifest, its pre-run error, or its disappearance."""
        del self.active[active.run_id]
        tracked = active.tracked
        try:
            manifest = tracked.service.store.manifest(active.run_id)  # fact 3
        except RunNotFound:
            manifest = None
        if manifest is None and active.paths["result"].exists():
            result = json.loads(active.paths["result"].read_text())
            error = result["error"]
            self._after_failure(active, "failed", error["message"], error.get("fix"), error.get("type"))
        elif manifest is None and code is None:
            log.warning("%s: its process is gone and it committed nothing; queued again", active.run_id)
            tracked.ledger.set(*tracked.key, active.action, active.day, "queued",
                               error="re-queued: its process ended without committing while no scheduler watched")
        else:
            if manifest is None:
                error = SchedulerError(f"the run's process exited with code {code} before committing its run",
                                       f"read its log, {active.paths['log']}")
                manifest = self._commit_for(active, RunStatus.FAILED, error)
            self._record(active, manifest)
        _clean(active.paths)

    def _record(self, active: Active, manifest: Manifest) -> None:
        tracked = active.tracked
        if manifest.succeeded:
            log.info("%s succeeded", manifest.run_id)
            tracked.ledger.set(*tracked.key, active.action, active.day, "succeeded", run_id=manifest.run_id)
            if tracked.ledger.mark_health(*tracked.key, active.action, failing=False):
                self._alert(tracked, "recovery", active.action, active.day, "succeeded", manifest.run_id)
            return
        error = manifest.error or {}
        self._after_failure(active, manifest.status.value, error.get("message"), error.get("fix"), error.get("type"),
                            manifest.run_id)

    def _after_failure(self, active: Active, status: str, message: str | None, fix: str | None,
                       error_type: str | None, rid: str | None = None) -> None:
        tracked = active.tracked
        action = tracked.service.spec.actions[active.action]
        attempts = next(r["attempts"] for r in tracked.ledger.rows(*tracked.key, active.action)
                        if r["logical_date"] == active.day.isoformat())
        if status == "failed" and is_transient(error_type) and attempts <= action.retries:
            delay = action.retry_delay * 2 ** (attempts - 1)
            log.warning("%s failed on a transient error, retry %d/%d in %g s: %s", rid or active.run_id, attempts,
                        action.retries, delay, message)
            tracked.ledger.set(*tracked.key, active.action, active.day, "retrying", run_id=rid, error=message,
                               next_at=_now() + dt.timedelta(seconds=delay))
            return
        self._final(tracked, active.action, active.day, status, rid, message, fix)

    def _final(self, tracked: Tracked, name: str, day: dt.date, status: str, rid: str | None,
               message: str | None, fix: str | None) -> None:
        log.error("%s/%s %s %s %s: %s", *tracked.key, name, day, status, message)
        self.failures += 1
        tracked.ledger.mark_health(*tracked.key, name, failing=True)
        self._alert(tracked, "failure", name, day, status, rid, message, fix)
        tracked.ledger.set(*tracked.key, name, day, status, run_id=rid, error=message)

    def _alert(self, tracked: Tracked, kind: str, name: str, day: dt.date, status: str, rid: str | None,
               message: str | None = None, fix: str | None = None) -> None:
        config = tracked.service.spec.alerts
        if config.webhook or config.email:
            alerts.send(config, alerts.Alert(kind, *tracked.key, name, day.isoformat(), status, rid, message, fix))

    def _commit_for(self, active: Active, status: RunStatus, error) -> Manifest:
        """Commit the manifest its process could not: timed out, or died."""
        spec = active.tracked.service.spec
        request = RunRequest(spec_path=str(spec.file), action=active.action, logical_date=active.day,
                             run_ts=active.run_ts, executor=spec.actions[active.action].executor,
                             log_path=str(active.paths["log"]))
        return ensure_committed(spec, request, status, active.started, error)


# -- helpers ----------------------------------------------------------------

def _track(service: Service) -> Tracked:
    state_dir = service.spec.root / ".batchcast" / "scheduler"
    for sub in ("locks", "logs", "results"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    return Tracked(service, service.ledger, state_dir)


def _take_charge(tracked: Tracked) -> None:
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


def _paths(tracked: Tracked, rid: str) -> dict[str, Path]:
    safe = rid.replace("/", "__")
    return {"lock": tracked.state_dir / "locks" / f"{safe}.lock",
            "result": tracked.state_dir / "results" / f"{safe}.json",
            "log": tracked.state_dir / "logs" / f"{safe}.log"}


def _lock_held(path: Path) -> bool:
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


def _recorded_pid(path: Path, run_ts: str) -> int | None:
    """The pid a lock file records, if that process is still this run's (pids get reused)."""
    try:
        pid = int(path.read_text().strip() or 0)
        return pid if run_ts in Path(f"/proc/{pid}/cmdline").read_text() else None
    except (OSError, ValueError):
        return None


def _clean(paths: dict[str, Path]) -> None:
    for key in ("lock", "result"):
        paths[key].unlink(missing_ok=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
