"""Periods: what one run of an action is for.

A schedule that ticks at most once a day keeps the logical *date* it always
had: the day of its tick, in the action's time zone (a ``datetime.date``).
A schedule that ticks more often (hourly, every 15 minutes, ``0 6,18 * * *``)
gives every tick its own period, named by its start: an aware ``datetime``
in UTC, the interval running to the next tick. As in Airflow 3 (its
``CronTriggerTimetable``), the run of a period is due at the tick that
starts it.

Everything that stores or compares periods goes through here: the ledger's
text (:func:`key`), its order across both kinds (:func:`order`), the CLI's
``--date`` (:func:`parse`) and the interval a run is for (:func:`interval`).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from croniter import croniter

from batchcast.errors import SpecError

Period = dt.date | dt.datetime  # a datetime period is aware, in UTC
_FIELD_SIZES = (60, 24)  # what '*' means in a cron's minute and hour fields


def subdaily(schedule: str | None) -> bool:
    """Whether ``schedule`` can tick more than once on one day (its minute and hour fields allow two times)."""
    if not schedule:
        return False
    fields = croniter(schedule).expanded[:2]
    times = 1
    for values, size in zip(fields, _FIELD_SIZES, strict=True):
        times *= size if values == ["*"] else len(values)
    return times > 1


def key(period: Period) -> str:
    """The period as the ledger and the listings write it: ``2026-01-01``, or ``2026-01-01T13:00:00Z``."""
    if isinstance(period, dt.datetime):
        return period.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return period.isoformat()


def from_key(text: str) -> Period:
    """The period :func:`key` wrote."""
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def coerce(value: str | Period) -> Period:
    """A period from its key, or as it is (pydantic's validator for a manifest's ``logical_date``)."""
    if isinstance(value, str):
        return from_key(value) if len(value) == 10 or "T" in value else value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value


def day(period: Period) -> dt.date:
    """The day of a period: the date itself, or a sub-daily period's UTC day (Airflow's ``ds``)."""
    return period.astimezone(dt.UTC).date() if isinstance(period, dt.datetime) else period


def order(period: Period) -> tuple[dt.date, dt.datetime]:
    """A sort key that orders periods of both kinds together: by day, then by start."""
    start = period if isinstance(period, dt.datetime) else dt.datetime.combine(period, dt.time.min, dt.UTC)
    return day(period), start


def after(period: Period) -> Period:
    """Where to look for the period following ``period``: the next day, or the next instant."""
    if isinstance(period, dt.datetime):
        return period + dt.timedelta(microseconds=1)
    return period + dt.timedelta(days=1)


def interval(period: Period, schedule: str | None, timezone: str = "UTC") -> tuple[dt.datetime, dt.datetime]:
    """(start, end) in UTC of the interval ``period`` covers: its tick to the next, or its day (in the zone)."""
    if isinstance(period, dt.datetime):
        following = croniter(schedule, period.astimezone(ZoneInfo(timezone)), ret_type=dt.datetime)
        return period, following.get_next(dt.datetime).astimezone(dt.UTC)
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(period, dt.time.min, zone)
    end = dt.datetime.combine(period + dt.timedelta(days=1), dt.time.min, zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def parse(text: str | Period | None, schedule: str | None, timezone: str = "UTC", *, where: str = "--date",
          now: dt.datetime | None = None) -> Period:
    """The period ``text`` names for an action on ``schedule``.

    A daily action takes ``YYYY-MM-DD`` (default today, UTC). A sub-daily one takes a tick of its schedule,
    ``YYYY-MM-DDTHH:MM`` in the action's time zone or with an offset (``Z``, ``+01:00``); default the newest
    tick that has passed.
    """
    if not subdaily(schedule):
        return _date(text, schedule, where)
    zone = ZoneInfo(timezone)
    if text is None:
        now = now or dt.datetime.now(dt.UTC)
        return croniter(schedule, now.astimezone(zone), ret_type=dt.datetime).get_prev(dt.datetime).astimezone(dt.UTC)
    if isinstance(text, dt.datetime):
        instant = text if text.tzinfo else text.replace(tzinfo=zone)
    else:
        try:
            instant = dt.datetime.fromisoformat(str(text)) if "T" in str(text) else None
        except ValueError:
            instant = None
        if instant is None:
            raise SpecError(f"{where} {text}: the schedule '{schedule}' ticks more than once a day, so a run is "
                            "for a tick, not a day", f"give the tick, e.g. {where} {text}T13:00 (in {timezone}), "
                            "or a range to backfill")
        instant = instant if instant.tzinfo else instant.replace(tzinfo=zone)
    instant = instant.astimezone(dt.UTC)
    if not croniter.match(schedule, instant.astimezone(zone)) or instant.second or instant.microsecond:
        starts = croniter(schedule, instant.astimezone(zone), ret_type=dt.datetime).get_prev(dt.datetime)
        raise SpecError(f"{where} {key(instant)} is not a tick of the schedule '{schedule}' ({timezone})",
                        f"give the start of its period, {key(starts.astimezone(dt.UTC))}")
    return instant


def _date(text: str | Period | None, schedule: str | None, where: str) -> dt.date:
    if text is None:
        return dt.datetime.now(dt.UTC).date()
    if isinstance(text, dt.datetime) or (isinstance(text, str) and "T" in text):
        shown = text if isinstance(text, str) else key(text)
        raise SpecError(f"{where} {shown}: a run of this action is for a day, not a time (its schedule ticks at "
                        "most once a day)", f"give the day, e.g. {where} {shown[:10]}")
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise SpecError(f"logical date '{text}' is not YYYY-MM-DD", f"pass e.g. {where} 2026-01-01") from None
