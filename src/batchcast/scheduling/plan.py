"""Cron schedules as logical dates, through croniter (no hand-written cron maths)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from croniter import croniter

from batchcast.errors import SpecError


def ticks(schedule: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The logical dates of ``schedule``'s ticks from ``start`` to ``end``, both included, oldest first."""
    if end < start:
        raise SpecError(f"the range {start} .. {end} is empty", "pass --from before --to")
    begin = dt.datetime.combine(start, dt.time.min, dt.timezone.utc) - dt.timedelta(microseconds=1)
    days = []
    for tick in _iterate(schedule, begin):
        if tick.date() > end:
            break
        if not days or days[-1] != tick.date():
            days.append(tick.date())
    return days


def upcoming(schedule: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    """The next ``count`` ticks strictly after ``after``."""
    found = []
    for tick in _iterate(schedule, after):
        found.append(tick)
        if len(found) == count:
            break
    return found


def _iterate(schedule: str, after: dt.datetime) -> Iterator[dt.datetime]:
    return croniter(schedule, after, ret_type=dt.datetime)
