"""Cron schedules as logical dates, through croniter (no hand-written cron maths).

A logical date is a day: a schedule's ticks on one day (every minute, say)
are one logical date, run once unless asked again.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from croniter import croniter

from batchcast.errors import SpecError

MAX_DAYS = 3660  # ten years of daily runs in one backfill


def ticks(schedule: str, start: dt.date, end: dt.date, timezone: str = "UTC") -> list[dt.date]:
    """The logical dates of ``schedule``'s ticks from ``start`` to ``end``, both included, oldest first."""
    if end < start:
        raise SpecError(f"the range {start} .. {end} is empty", "pass --from before --to")
    if (end - start).days >= MAX_DAYS:  # a typo in a year (0026, 20266) must not walk millions of ticks
        raise SpecError(f"the range {start} .. {end} spans {(end - start).days + 1:,} days; a backfill covers at "
                        f"most {MAX_DAYS:,}", "check the years in --from and --to, or split the range")
    return [day for day, _ in first_ticks(schedule, start, timezone, until_date=end)]


def due(schedule: str, start: dt.date, now: dt.datetime, timezone: str = "UTC") -> list[tuple[dt.date, dt.datetime]]:
    """Each logical date from ``start`` whose first tick is at or before ``now``, with that tick."""
    return list(first_ticks(schedule, start, timezone, until=now))


def first_ticks(schedule: str, start: dt.date, timezone: str, *, until: dt.datetime | None = None,
                until_date: dt.date | None = None):
    """(date, first tick of that date) from ``start`` on, one per day that has a tick.

    After a day's first tick the search jumps to the next midnight, so an
    every-minute schedule over a year costs a year of days, not of minutes.
    """
    zone = ZoneInfo(timezone)
    day = start
    while True:
        begin = dt.datetime.combine(day, dt.time.min, zone) - dt.timedelta(microseconds=1)
        tick = croniter(schedule, begin, ret_type=dt.datetime).get_next(dt.datetime)
        if (until is not None and tick > until) or (until_date is not None and tick.date() > until_date):
            return
        yield tick.date(), tick
        day = tick.date() + dt.timedelta(days=1)


def upcoming(schedule: str, after: dt.datetime, count: int, timezone: str = "UTC") -> list[dt.datetime]:
    """The next ``count`` ticks strictly after ``after``."""
    it = croniter(schedule, after.astimezone(ZoneInfo(timezone)), ret_type=dt.datetime)
    return [it.get_next(dt.datetime) for _ in range(count)]
