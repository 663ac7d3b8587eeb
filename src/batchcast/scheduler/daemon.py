"""``batchcast scheduler``: the embedded scheduler, one process for one or more services.

Each pass: settle the runs that ended, record the dates that became due
(by each action's catchup policy), then start what the ledger says is
ready, oldest date first, within ``max_active_runs`` and the scheduler's
parallelism.

What is due, what starts next and when a failure is retried are
:mod:`batchcast.scheduling.rules` (pure); the runs' processes and lock
files, and why a crash of the scheduler loses no date, are
:mod:`batchcast.scheduler.supervise`. This module runs the loop, carries
out the rules' decisions and records how each run ended.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from batchcast import alerts
from batchcast.errors import BatchcastError, RunNotFound, RunTimeout, SchedulerError, is_transient
from batchcast.executors import executor_class
from batchcast.runs.commit import ensure_committed, now as utcnow
from batchcast.runs.manifest import Manifest, RunRequest, RunStatus
from batchcast.scheduler import supervise
from batchcast.scheduler.lookups import AbsentData, MissingModels
from batchcast.scheduler.supervise import Active, Tracked
from batchcast.scheduling import freshness, periods, rules
from batchcast.scheduling.periods import Period
from batchcast.scheduling.plan import due
from batchcast.service import APPLIES_MODEL, Service

log = logging.getLogger("batchcast")
WATCH_EVERY = dt.timedelta(minutes=1)  # how often each service's freshness is judged
GRACE_S = 30  # beyond an action's timeout, for an executor's own kill to commit first


class Scheduler:
    def __init__(self, specs: list[str | Path], *, interval: float = 5.0, parallelism: int = 2,
                 exit_when_idle: bool = False):
        self.tracked = [supervise.track(Service(path)) for path in specs]
        self.interval = interval
        self.parallelism = parallelism
        self.exit_when_idle = exit_when_idle
        self.active: dict[str, Active] = {}
        self.started_at = utcnow()
        self.stopping = False
        self.failures = 0
        self.watched_at: dict[int, dt.datetime] = {}  # when each service's freshness was last judged

    # -- the loop ---------------------------------------------------------

    def run(self) -> int:
        """Run until stopped (SIGTERM, SIGINT) or, with ``exit_when_idle``, until nothing is left to do."""
        for tracked in self.tracked:
            supervise.take_charge(tracked)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        self.adopt()
        log.info("scheduler: %s", ", ".join(f"{t.service.name}/{t.service.version}" for t in self.tracked))
        try:
            while not self.stopping:
                self.step(utcnow())
                if self.exit_when_idle and self.idle():
                    break
                time.sleep(min(self.interval, 0.5) if self.active else self.interval)
        finally:
            for tracked in self.tracked:
                tracked.lease.release()
        if self.active:
            log.info("stopping with %d run(s) in flight; they finish on their own and the next start records them",
                     len(self.active))
        return 1 if self.failures else 0

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def step(self, now: dt.datetime) -> None:
        for tracked in self.tracked:
            tracked.lease.renew()
        self.reap(now)
        for tracked in self.tracked:
            paused = tracked.ledger.paused(*tracked.key)
            for name, action in tracked.service.spec.actions.items():
                if action.schedule and name not in paused:
                    self.plan(tracked, name, now)
            self.watch(tracked, now)
        self.dispatch(now)

    def watch(self, tracked: Tracked, now: dt.datetime) -> None:
        """Alert once for each stale period of an action with ``fresh_within``; judged at the first pass (which
        sees the periods the scheduler was down for), then every minute. A paused action is judged too."""
        if now - self.watched_at.get(id(tracked), dt.datetime.min.replace(tzinfo=dt.UTC)) < WATCH_EVERY:
            return
        self.watched_at[id(tracked)] = now
        for name, action in tracked.service.spec.actions.items():
            if not action.fresh_within:
                continue
            try:
                found = freshness.of(tracked.service, name, now)
            except BatchcastError as exc:  # a store that does not answer must not stop the scheduling
                log.warning("%s/%s %s: freshness not judged: %s", *tracked.key, name, exc.message)
                continue
            if not found.fresh and tracked.ledger.first_stale(*tracked.key, name, found.period):
                log.warning("%s/%s %s", *tracked.key, found.describe(now))
                self._alert(tracked, "stale", name, found.period, "late", None, found.describe(now),
                            f"start the scheduler (or the run) for {found.period}, or check why it did not succeed")

    def idle(self) -> bool:
        if self.active:
            return False
        for tracked in self.tracked:
            if tracked.ledger.actions_in(*tracked.key, rules.READY) - tracked.ledger.paused(*tracked.key):
                return False
        return True

    # -- deciding what is due and what starts -----------------------------

    def plan(self, tracked: Tracked, name: str, now: dt.datetime) -> None:
        """Record the dates of ``name`` that became due, queued or skipped by its catchup policy."""
        action, ledger = tracked.service.spec.actions[name], tracked.ledger
        today = now.astimezone(ZoneInfo(action.timezone)).date()
        start = rules.first_date(action.start_date, ledger.newest(*tracked.key, name), today)
        ticks = due(action.schedule, start, now, action.timezone)
        if not ticks:
            return
        run, skip = rules.catchup(action.catchup, ticks, self.started_at)
        ledger.add(*tracked.key, name, skip, "skipped")
        ledger.add(*tracked.key, name, run, "queued")
        for day in run:
            log.info("queued %s/%s %s %s", *tracked.key, name, periods.key(day))

    def dispatch(self, now: dt.datetime) -> None:
        slots = {id(t): t.slot for t in self.tracked}  # a service's warehouse file, worked out once a pass
        running = [rules.Running(self.tracked.index(a.tracked), a.action, slots[id(a.tracked)])
                   for a in self.active.values()]
        missing, absent = MissingModels(self.tracked), AbsentData(self.tracked)
        for decision in rules.dispatch_streams(self._ready(now, slots), running, self.parallelism, missing, now,
                                               absent):
            self._carry_out(decision)

    def _ready(self, now: dt.datetime, slots: dict[int, Path | None]) -> list[Iterator[rules.Ready]]:
        """Per action in the spec and not paused: its ledger dates that may start now, read as the rules ask.

        Within a service the streams go by action name, the order the ledger gives a date's rows.
        """
        streams = []
        for index, tracked in enumerate(self.tracked):
            paused = tracked.ledger.paused(*tracked.key)
            streams += [self._dates(index, tracked, name, slots[id(tracked)], now)
                        for name in sorted(tracked.service.spec.actions) if name not in paused]
        return streams

    def _dates(self, index: int, tracked: Tracked, name: str, slot: Path | None,
               now: dt.datetime) -> Iterator[rules.Ready]:
        action = tracked.service.spec.actions[name]
        wait = action.wait_for
        for entry in tracked.ledger.oldest(*tracked.key, name, rules.READY):
            if rules.startable(entry.state, entry.next_at, now):
                yield rules.Ready(index, name, entry.logical_date, action.kind, entry.state, action.max_active_runs,
                                  slot, action.kind in APPLIES_MODEL, action.model, entry.waiting_since,
                                  action.wait_for_training, entry.waiting_for, wait is not None,
                                  wait.seconds("poll") if wait else 0.0, wait.seconds("timeout") if wait else 0.0)

    def _carry_out(self, decision: rules.Decision) -> None:
        ready, tracked = decision.ready, self.tracked[decision.ready.service]
        if decision.verb == "start":
            active = supervise.launch(tracked, ready.action, ready.day)
            self.active[active.run_id] = active
        elif decision.verb == "wait":
            if ready.state != "waiting" or ready.waiting_for != decision.waits_for:  # once, not at every look
                log.info("%s/%s %s %s waiting for %s: %s", *tracked.key, ready.action, ready.day, decision.waits_for,
                         decision.reason)
            tracked.ledger.set(*tracked.key, ready.action, ready.day, "waiting", next_at=decision.next_at,
                               error=f"waiting for {decision.waits_for}: {decision.reason}",
                               waiting_since=decision.since)
        elif decision.waits_for == "data":
            wait = tracked.service.spec.actions[ready.action].wait_for
            error = (f"waited {wait.timeout} ([actions.{ready.action}.wait_for] timeout) for its input, which never "
                     f"came: {decision.reason}")
            self._final(tracked, ready.action, ready.day, "failed", None, error,
                        "deliver the input, then queue the date again (batchcast backfill), or raise the timeout")
        else:
            error = (f"waited {ready.wait_limit:g} s for a trained model, the limit "
                     f"([actions.{ready.action}] wait_for_training): {decision.reason}")
            self._final(tracked, ready.action, ready.day, "failed", None, error,
                        "run training, then queue the date again")

    # -- watching and settling runs ---------------------------------------

    def adopt(self) -> None:
        """Take back the runs a previous scheduler left ``running``."""
        for tracked in self.tracked:
            for active in supervise.adopt(tracked):
                self.active[active.run_id] = active

    def reap(self, now: dt.datetime) -> None:
        for active in list(self.active.values()):
            ended, code = supervise.poll(active)
            action = active.tracked.service.spec.actions[active.action]
            # The inline executor has no timeout of its own: the scheduler's kill is its timeout.
            grace = GRACE_S if executor_class(action.executor).kills_on_timeout else 0
            if not ended and (now - active.started).total_seconds() > action.timeout + grace:
                self._kill(active, action.timeout)
                continue
            if ended:
                self.settle(active, code)

    def _kill(self, active: Active, timeout: float) -> None:
        supervise.kill(active)
        error = RunTimeout(f"the run ran longer than its timeout of {timeout:g} s and was killed with its children",
                           "raise [actions.*] timeout, or make the job faster")
        self._commit_for(active, RunStatus.TIMED_OUT, error)  # its own manifest stands if it had committed
        self.settle(active, -signal.SIGKILL)

    def settle(self, active: Active, code: int | None) -> None:
        """Record how ``active`` ended: from its manifest, its pre-run error, or its disappearance."""
        del self.active[active.run_id]
        tracked = active.tracked
        try:
            manifest = tracked.service.store.manifest(active.run_id)  # supervise's fact 3
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
        supervise.clean(active.paths)

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
        attempts = tracked.ledger.entry(*tracked.key, active.action, active.day).attempts
        delay = rules.backoff(status, is_transient(error_type), attempts, action.retries, action.retry_delay)
        if delay is None:
            self._final(tracked, active.action, active.day, status, rid, message, fix)
            return
        log.warning("%s failed on a transient error, retry %d/%d in %g s: %s", rid or active.run_id, attempts,
                    action.retries, delay, message)
        tracked.ledger.set(*tracked.key, active.action, active.day, "retrying", run_id=rid, error=message,
                           next_at=utcnow() + dt.timedelta(seconds=delay))

    def _final(self, tracked: Tracked, name: str, day: Period, status: str, rid: str | None,
               message: str | None, fix: str | None) -> None:
        log.error("%s/%s %s %s %s: %s", *tracked.key, name, day, status, message)
        self.failures += 1
        tracked.ledger.mark_health(*tracked.key, name, failing=True)
        self._alert(tracked, "failure", name, day, status, rid, message, fix)
        tracked.ledger.set(*tracked.key, name, day, status, run_id=rid, error=message)

    def _alert(self, tracked: Tracked, kind: str, name: str, day: Period, status: str, rid: str | None,
               message: str | None = None, fix: str | None = None) -> None:
        config = tracked.service.spec.alerts
        if config.webhook or config.email:
            alerts.send(config, alerts.Alert(kind, *tracked.key, name, periods.key(day), status, rid, message, fix))

    def _commit_for(self, active: Active, status: RunStatus, error) -> Manifest:
        """Commit the manifest its process could not: timed out, or died."""
        spec = active.tracked.service.spec
        request = RunRequest(name=spec.service.name, version=spec.service.version, action=active.action,
                             run_ts=active.run_ts, run_id=active.run_id, spec_path=str(spec.file),
                             logical_date=active.day, executor=spec.actions[active.action].executor,
                             log_path=str(active.paths["log"]))
        return ensure_committed(spec, request, status, active.started, error)
