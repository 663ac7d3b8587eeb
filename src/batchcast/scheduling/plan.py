"""Cron schedules as periods, through croniter (no hand-written cron maths).

A schedule that ticks at most once a day has one period per day, its logical
date; one that ticks more often has one per tick (:mod:`.periods`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from croniter import croniter

from batchcast.errors import SpecError
from batchcast.scheduling import periods
from batchcast.scheduling.periods import Period

MAX_DAYS = 3660  # ten years of daily runs in one backfill
MAX_PERIODS = 100_000  # of a sub-daily schedule in one backfill: a year and more of 15-minute periods


def ticks(schedule: str, start: str | Period, end: str | Period, timezone: str = "UTC") -> list[Period]:
    """The periods of ``schedule`` from ``start`` to ``end``, both included, oldest first.

    A day as a bound covers the whole day (in the action's zone); a sub-daily schedule also takes ticks.
    """
    first, last = _bound(start, schedule, timezone, "--from"), _bound(end, schedule, timezone, "--to")
    if periods.order(last) < periods.order(first):
        raise SpecError(f"the range {periods.key(first)} .. {periods.key(last)} is empty", "pass --from before --to")
    span = (periods.day(last) - periods.day(first)).days
    if span >= MAX_DAYS:  # a typo in a year (0026, 20266) must not walk millions of ticks
        raise SpecError(f"the range {periods.key(first)} .. {periods.key(last)} spans {span + 1:,} days; a backfill "
                        f"covers at most {MAX_DAYS:,}", "check the years in --from and --to, or split the range")
    found = []
    for period, _ in first_ticks(schedule, first, timezone, until_period=last):
        found.append(period)
        if len(found) > MAX_PERIODS:
            raise SpecError(f"the range {periods.key(first)} .. {periods.key(last)} holds more than "
                            f"{MAX_PERIODS:,} periods of '{schedule}'", "split the range")
    return found


def _bound(value: str | Period, schedule: str, timezone: str, where: str) -> Period:
    """A range's end as a period: a day, or (a sub-daily schedule only) one of its ticks."""
    if isinstance(value, dt.date):
        return value
    return periods.parse(value, schedule if "T" in value else None, timezone, where=where)


def due(schedule: str, start: Period, now: dt.datetime, timezone: str = "UTC") -> list[tuple[Period, dt.datetime]]:
    """Each period from ``start`` whose (first) tick is at or before ``now``, with that tick."""
    return list(first_ticks(schedule, start, timezone, until=now))


def first_ticks(schedule: str, start: Period, timezone: str, *, until: dt.datetime | None = None,
                until_period: Period | None = None) -> Iterator[tuple[Period, dt.datetime]]:
    """(period, its tick) from ``start`` on: one per tick of a sub-daily schedule, else one per day that ticks.

    ``start`` is a day (from its midnight, in the zone) or an instant (inclusive). For a daily schedule the
    search jumps to the next midnight after each day's tick, so a year costs a year of days. ``until_period``
    stops after that period (a day as a bound for a sub-daily schedule: after that day's ticks).
    """
    zone = ZoneInfo(timezone)
    subdaily = periods.subdaily(schedule)
    if isinstance(start, dt.datetime):
        begin = start.astimezone(zone) - dt.timedelta(microseconds=1)
    else:
        begin = dt.datetime.combine(start, dt.time.min, zone) - dt.timedelta(microseconds=1)
    it = croniter(schedule, begin, ret_type=dt.datetime)
    while True:
        tick = it.get_next(dt.datetime)
        period = period_of(schedule, tick) if subdaily else tick.date()
        if (until is not None and tick > until) or _beyond(period, until_period, zone):
            return
        yield period, tick
        if not subdaily:
            it = croniter(schedule, dt.datetime.combine(tick.date() + dt.timedelta(days=1), dt.time.min, zone)
                          - dt.timedelta(microseconds=1), ret_type=dt.datetime)


def _beyond(period: Period, last: Period | None, zone: ZoneInfo) -> bool:
    if last is None:
        return False
    if isinstance(period, dt.datetime) and not isinstance(last, dt.datetime):
        return period.astimezone(zone).date() > last  # a day as the bound of ticks: its last tick is in
    return periods.order(period) > periods.order(last)


def period_of(schedule: str, tick: dt.datetime) -> Period:
    """The period a tick of ``schedule`` starts: its day, or (sub-daily) the tick itself, in UTC."""
    return tick.astimezone(dt.UTC) if periods.subdaily(schedule) else tick.date()


def upcoming(schedule: str, after: dt.datetime, count: int, timezone: str = "UTC") -> list[dt.datetime]:
    """The next ``count`` ticks strictly after ``after``."""
    it = croniter(schedule, after.astimezone(ZoneInfo(timezone)), ret_type=dt.datetime)
    return [it.get_next(dt.datetime) for _ in range(count)]
