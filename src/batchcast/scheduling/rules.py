"""The scheduler's rules, pure: which dates are due, which start next, when to retry, how long to wait.

No I/O, no processes and no clock: the time is a parameter, the ledger's
rows and the runs in flight arrive as plain data (the rows may come as
streams the caller reads only as far as a pass asks), and decisions leave
as plain data for :mod:`batchcast.scheduler` to carry out.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from batchcast.scheduling import periods
from batchcast.scheduling.periods import Period

KIND_ORDER = {"training": 0, "evaluation": 1, "application": 2}
READY = ("queued", "waiting", "retrying")


# -- what is due --------------------------------------------------------------

def first_date(start_date: dt.date | None, newest: Period | None, today: dt.date) -> Period:
    """Where to look for due periods from.

    The action's ``start_date``, else today (in the action's timezone); never
    a period the ledger already holds (``newest``, whatever its state): for
    days the day after it, for sub-daily periods the instant after it.
    """
    if newest is None:
        return start_date or today
    following = periods.after(newest)
    if start_date is None or periods.order(following) >= periods.order(start_date):
        return following
    return start_date


def catchup(policy: str, ticks: list[tuple[Period, dt.datetime]],
            started_at: dt.datetime) -> tuple[list[Period], list[Period]]:
    """(dates to queue, dates to skip) among the due ``ticks`` (date, first tick), oldest first.

    ``all`` queues every one; ``latest`` only the newest; ``none`` only those
    that ticked while the scheduler was watching (at or after ``started_at``).
    """
    if policy == "all":
        run, skip = ticks, []
    elif policy == "latest":
        run, skip = ticks[-1:], ticks[:-1]
    else:  # none (the spec allows no other): what was missed stays missed
        run = [t for t in ticks if t[1] >= started_at]
        skip = [t for t in ticks if t[1] < started_at]
    return [day for day, _ in run], [day for day, _ in skip]


# -- what starts next ---------------------------------------------------------

@dataclass(frozen=True)
class Ready:
    """A ledger date that may start, with what the rules need to know of its action and service."""

    service: int  # which of the scheduler's services (its position): the last tie-break of the order
    action: str
    day: Period  # a logical date, or a sub-daily period's start
    kind: str
    state: str = "queued"
    max_active_runs: int = 1
    slot: Path | None = None  # the one-writer warehouse file (DuckDB) its service writes, if any
    needs_model: bool = False  # it applies a trained model (application, evaluation)
    model: str | None = None  # [actions.X] model: the alias or run id it applies
    waiting_since: dt.datetime | None = None
    wait_limit: float = 0.0  # [actions.X] wait_for_training, seconds
    waiting_for: str = "training"  # what a waiting date waits for: "training" or "data"
    wait_data: bool = False  # [actions.X.wait_for] names input that must arrive first
    poll: float = 0.0  # its poll, seconds
    data_limit: float = 0.0  # its timeout, seconds


@dataclass(frozen=True)
class Running:
    """A run in flight, as far as the limits care."""

    service: int
    action: str
    slot: Path | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with one ready date: ``start`` it, record it ``wait``-ing, or ``fail`` it.

    ``waits_for`` is what is missing, ``training`` or ``data``; ``reason`` says why no trained model can be
    applied, or which input is not there (wait and fail); ``since`` is when its wait began, ``next_at``
    when to look for the data again (wait).
    """

    verb: str
    ready: Ready
    reason: str | None = None
    since: dt.datetime | None = None
    waits_for: str = "training"
    next_at: dt.datetime | None = None


def startable(state: str, next_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a ready date may start at ``now``: a retry waits out its backoff, a wait for data its poll."""
    return not (state in ("retrying", "waiting") and next_at is not None and next_at > now)


def order_key(ready: Ready) -> tuple:
    """Oldest period first (days and sub-daily periods together); on one period training, then evaluation,
    then application; then by service."""
    return periods.order(ready.day), KIND_ORDER.get(ready.kind, len(KIND_ORDER)), ready.service


def order(ready: Iterable[Ready]) -> list[Ready]:
    """``ready`` in :func:`order_key`'s order; ties keep their order."""
    return sorted(ready, key=order_key)


def blocked(ready: Ready, running: Iterable[Running]) -> bool:
    """True if ``max_active_runs`` of its action are in flight, or a run holds its warehouse file."""
    running = list(running)
    same = [r for r in running if r.service == ready.service and r.action == ready.action]
    # A file-based warehouse has one writer process at a time: its services' runs go one by one.
    shared = ready.slot is not None and any(r.slot == ready.slot for r in running)
    return len(same) >= ready.max_active_runs or shared


def keep_waiting(since: dt.datetime, limit: float, now: dt.datetime) -> bool:
    """Whether a date that has waited (for a trained model, or data) since ``since`` may wait on (``limit`` s)."""
    return (now - since).total_seconds() <= limit


def dispatch(ready: Iterable[Ready], running: Iterable[Running], parallelism: int,
             missing: Mapping[tuple[int, str | None], str | None], now: dt.datetime,
             absent: Mapping[tuple[int, str, dt.date], str | None] | None = None) -> list[Decision]:
    """The decisions for this pass, in the order to carry them out.

    ``missing`` maps (service, model ref) to why no trained model can be
    applied, or None when one can; ``absent`` maps (service, action, date) to
    which ``wait_for`` input is not there yet, or None when it is. Both are
    read only for the dates the pass reaches, so the caller may look them up
    lazily. A date already waiting for training that may wait on gets no
    decision: it stays as it is. One waiting for data is recorded again, with
    the time of its next look.
    """
    return dispatch_streams([(r,) for r in ready], running, parallelism, missing, now, absent)


def dispatch_streams(streams: Iterable[Iterable[Ready]], running: Iterable[Running], parallelism: int,
                     missing: Mapping[tuple[int, str | None], str | None], now: dt.datetime,
                     absent: Mapping[tuple[int, str, dt.date], str | None] | None = None) -> list[Decision]:
    """:func:`dispatch` over ``streams``, each read only as far as the pass needs it.

    A stream is one action's ready dates in :func:`order`: one service, action, slot and
    ``max_active_runs``. Its dates are merged with the other streams' in that order (ties go to the
    earlier stream). Runs in flight only grow during a pass, so once one date of a stream is blocked
    every later one is: the stream is read no further, and a backlog behind a run costs one date.
    """
    running, decisions, heads = list(running), [], []
    for index, stream in enumerate(streams):
        _advance(heads, index, iter(stream))
    while heads and len(running) < parallelism:
        _, index, candidate, rest = heapq.heappop(heads)
        if blocked(candidate, running):
            continue  # and so is the rest of its stream
        # Not `absent or {}`: a lookup that has looked nothing up yet is empty, and so falsy.
        decision = _decide(candidate, missing, {} if absent is None else absent, now)
        if decision is not None:
            decisions.append(decision)
        if decision is not None and decision.verb == "start":
            running.append(Running(candidate.service, candidate.action, candidate.slot))
        _advance(heads, index, rest)
    return decisions


def _advance(heads: list, index: int, stream: Iterator[Ready]) -> None:
    """Put the next date of stream ``index`` among the heads, if it has one."""
    following = next(stream, None)
    if following is not None:
        heapq.heappush(heads, (order_key(following), index, following, stream))


def _decide(ready: Ready, missing: Mapping, absent: Mapping, now: dt.datetime) -> Decision | None:
    """Start ``ready``, unless its input has not arrived or no trained model can be applied (looked at in that
    order: the model may be trained from the same data)."""
    reason = absent[(ready.service, ready.action, ready.day)] if ready.wait_data else None
    if reason is not None:
        return _waiting(ready, "data", reason, ready.data_limit, now)
    reason = missing[(ready.service, ready.model)] if ready.needs_model else None
    if reason is not None:
        return _waiting(ready, "training", reason, ready.wait_limit, now)
    return Decision("start", ready)


def _waiting(ready: Ready, what: str, reason: str, limit: float, now: dt.datetime) -> Decision | None:
    """Wait for ``what`` (the clock starts at the first look), or fail once ``limit`` seconds have passed."""
    already = ready.state == "waiting" and ready.waiting_for == what
    since = (ready.waiting_since if already else None) or now
    if not keep_waiting(since, limit, now):
        return Decision("fail", ready, reason, since, what)
    if what == "data":
        return Decision("wait", ready, reason, since, what, now + dt.timedelta(seconds=ready.poll))
    return None if already else Decision("wait", ready, reason, since, what)


# -- after a failure ----------------------------------------------------------

def backoff(status: str, transient: bool, attempts: int, retries: int, retry_delay: float) -> float | None:
    """Seconds before the next attempt of a date that ended ``status``, or None if that end is final.

    Only a failure on a transient error is retried, ``retries`` times, the
    delay doubling each time; ``attempts`` counts the one that just ended.
    """
    if status != "failed" or not transient or attempts > retries:
        return None
    return retry_delay * 2 ** (attempts - 1)
