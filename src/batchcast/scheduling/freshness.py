"""Freshness: whether an action's newest due period has a successful run, ``fresh_within`` after its tick.

``[actions.X] fresh_within = "2h"`` says how late a period's success may be.
The period judged is the newest one whose deadline (its first tick plus
``fresh_within``) has passed; it is *stale* when no run of it succeeded.
The embedded scheduler alerts once per stale period (at every pass, so a
restart after a stop sees the periods it was down for); ``batchcast check
--fresh`` exits 1 on one, for a monitor that watches without the scheduler.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import croniter

from batchcast.scheduling import periods
from batchcast.scheduling.periods import Period
from batchcast.scheduling.plan import first_ticks, period_of

_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` as a timedelta; ValueError otherwise."""
    if not re.fullmatch(r"(\d+[smhd])+", text or ""):
        raise ValueError(text)
    return sum((dt.timedelta(**{_UNITS[unit]: int(n)}) for n, unit in _PART.findall(text)), dt.timedelta())


@dataclass(frozen=True)
class Freshness:
    """The judgement of one action at ``now``: its period, when it was due and expected, and the newest success."""

    action: str
    period: Period | None  # None: no period is past its deadline yet
    due_at: dt.datetime | None
    expected_by: dt.datetime | None
    succeeded: bool
    last_success: dict | None  # the newest successful run's summary, of any period

    @property
    def fresh(self) -> bool:
        return self.period is None or self.succeeded

    def late(self, now: dt.datetime) -> dt.timedelta:
        return max(now - self.expected_by, dt.timedelta()) if self.expected_by and not self.fresh else dt.timedelta()

    def describe(self, now: dt.datetime) -> str:
        """One line: fresh, or which period is how late and the last success."""
        if self.period is None:
            return f"{self.action} is fresh: no period is past its deadline yet"
        if self.succeeded:
            return f"{self.action} is fresh: {periods.key(self.period)} succeeded"
        last = (f"{self.last_success['logical_date']} (run {self.last_success['run_id']})" if self.last_success
                else "never")
        return (f"{self.action} is stale: {periods.key(self.period)} (due {self.due_at:%Y-%m-%d %H:%M %Z}, expected by "
                f"{self.expected_by:%H:%M %Z}) has no successful run, {_hours(self.late(now))} late; "
                f"last success: {last}")

    def document(self, now: dt.datetime) -> dict:
        return {"action": self.action, "fresh": self.fresh, "period": self.period and periods.key(self.period),
                "due_at": self.due_at and self.due_at.isoformat(),
                "expected_by": self.expected_by and self.expected_by.isoformat(),
                "late_s": self.late(now).total_seconds(), "last_success": self.last_success,
                "message": self.describe(now)}


def judge(name: str, action, runs: list[dict], now: dt.datetime) -> Freshness:
    """``action``'s freshness at ``now`` from its runs' summaries (``Service.runs(...)``'s, oldest first)."""
    within = duration(action.fresh_within)
    zone = ZoneInfo(action.timezone)
    before = (now - within).astimezone(zone)
    tick = croniter(action.schedule, before, ret_type=dt.datetime).get_prev(dt.datetime)
    day = period_of(action.schedule, tick)
    successes = [r for r in runs if r["status"] == "succeeded"]
    last = successes[-1] if successes else None
    if action.start_date is not None and periods.day(day) < action.start_date:
        return Freshness(name, None, None, None, True, last)
    first = next(first_ticks(action.schedule, day, action.timezone))[1]
    succeeded = any(r["logical_date"] == periods.key(day) for r in successes)
    return Freshness(name, day, first, first + within, succeeded, last)


def _hours(late: dt.timedelta) -> str:
    minutes = int(late.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def of(service, name: str, now: dt.datetime | None = None) -> Freshness:
    """The freshness of ``service``'s action ``name`` now; SpecError when it declares no ``fresh_within``."""
    from batchcast.errors import SpecError

    action = service.spec.action(name)
    if not action.fresh_within:
        raise SpecError(f"{service.spec.file.name} [actions.{name}] has no fresh_within to judge it by",
                        f"add fresh_within = \"2h\" (and a schedule) to [actions.{name}]")
    return judge(name, action, [m.summary() for m in service.runs(name)], now or dt.datetime.now(dt.UTC))
