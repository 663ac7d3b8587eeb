"""The dashboard's actions: each the library call the CLI makes, each recorded with who asked and when.

- ``rerun``: :meth:`Service.run_in_ledger` for one period, in a thread of
  this process (the page answers at once; the run appears as ``running``);
- ``backfill``: :meth:`Service.backfill`, queued in the ledger for the
  scheduler, as ``batchcast backfill`` does without ``--now``;
- ``promote`` and ``rollback``: the alias's history records who moved it;
- ``pause`` and ``resume``: the ledger's.

Every other action is recorded in the ledger's ``done_by`` table. An action
name must be one of the spec's; a run id and an alias are checked with their
full-match rules; a date or a tick is parsed by the library's own
(:meth:`ActionSpec.period`, :func:`~batchcast.scheduling.plan.ticks`), which
names the field and the fix. At most ``MAX_RERUNS`` reruns wait or run at once,
and one period is never rerun twice at the same time.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from batchcast.errors import SpecError
from batchcast.runs.aliases import checked
from batchcast.runs.manifest import is_run_id
from batchcast.scheduling import periods
from batchcast.service import CHAMPION, Service

log = logging.getLogger("batchcast")
VERBS = ("rerun", "backfill", "promote", "rollback", "pause", "resume")
MAX_RERUNS = 20  # waiting or running at once: a held-down button must not queue runs without end
FIELD = 200  # characters a form field may have


class Operations:
    def __init__(self, runs_at_once: int = 2):
        self.pool = ThreadPoolExecutor(max_workers=runs_at_once, thread_name_prefix="batchcast-ui-run")
        self.pending: set[tuple] = set()  # (service, version, action, period) of each rerun waiting or running
        self.lock = threading.Lock()

    def do(self, service: Service, verb: str, form: dict[str, str], who: str) -> str:
        """Carry out ``verb`` with ``form``'s fields for ``who``; what to tell them. SpecError on a bad field."""
        if verb not in VERBS:
            raise SpecError(f"unknown action '{verb[:40]}'", f"use one of {', '.join(VERBS)}")
        said = getattr(self, f"_{verb}")(service, form, f"{who} (dashboard)")
        if verb not in ("promote", "rollback"):  # those two are in the alias's own history
            service.ledger.record(service.name, service.version, who, said)
        log.info("dashboard: %s: %s", who, said)
        return said

    def _rerun(self, service: Service, form: dict[str, str], by: str) -> str:
        action = _action(service, form)
        period = service.spec.action(action).period(_field(form, "date"), where="form field 'date'")
        key = (service.name, service.version, action, periods.key(period))
        with self.lock:
            if key in self.pending:
                raise SpecError(f"{action} for {key[3]} is already being rerun", "wait for it to end")
            if len(self.pending) >= MAX_RERUNS:
                raise SpecError(f"{MAX_RERUNS} reruns are already waiting or running", "wait for some to end")
            self.pending.add(key)
        fresh = Service(service.spec.file, service.overrides)  # its own: a run must not share a reader's state
        self.pool.submit(self._run, fresh, action, period, key)
        return f"rerun of {action} for {key[3]} started"

    def _run(self, service: Service, action: str, period, key: tuple) -> None:
        try:
            manifest = service.run_in_ledger(action, period)
            log.info("dashboard rerun %s %s", manifest.run_id, manifest.status.value)
        except Exception:  # a thread's failure is logged: nobody else would hear of it (the ledger says failed)
            log.exception("dashboard rerun of %s for %s failed to start", action, key[3])
        finally:
            with self.lock:
                self.pending.discard(key)

    def _backfill(self, service: Service, form: dict[str, str], by: str) -> str:
        action = _action(service, form)
        start, end = _field(form, "start"), _field(form, "end")
        total: list[int] = []
        service.backfill(action, start, end, progress=lambda done, count, manifest: total.append(count))
        return f"backfill of {action} {start}..{end} queued: {total[0]} periods, for the scheduler to run"

    def _promote(self, service: Service, form: dict[str, str], by: str) -> str:
        run = _field(form, "run")
        if not is_run_id(run):
            raise SpecError(f"run '{run[:80]}' is not a run id", "promote a run from the models table")
        alias = checked(form.get("alias") or CHAMPION)
        service.promote(run, alias, by=by)
        return f"promoted {run} to {alias}"

    def _rollback(self, service: Service, form: dict[str, str], by: str) -> str:
        alias = checked(form.get("alias") or CHAMPION)
        back = service.rollback(alias, by=by)
        return f"rolled {alias} back to {back.run_id}"

    def _pause(self, service: Service, form: dict[str, str], by: str) -> str:
        action = _action(service, form)
        service.pause(action)
        return f"paused {action}"

    def _resume(self, service: Service, form: dict[str, str], by: str) -> str:
        action = _action(service, form)
        service.resume(action)
        return f"resumed {action}"

    def close(self) -> None:
        """Wait for the reruns in flight: a run stopped half-way would leave its period ``running``."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _field(form: dict[str, str], key: str) -> str:
    value = (form.get(key) or "").strip()
    if not value or len(value) > FIELD:
        raise SpecError(f"form field '{key}': '{value[:40]}' is empty or too long", f"fill in '{key}'")
    return value


def _action(service: Service, form: dict[str, str]) -> str:
    name = (form.get("action") or "").strip()
    if name not in service.spec.actions:
        raise SpecError(f"form field 'action': '{name[:40]}' is no action of {service.name}/{service.version}",
                        f"use one of {', '.join(service.spec.actions)}")
    return name

