"""Progress of long work as plain log lines: at most one per ``every`` seconds, with the count and the rate.

Lines, not a bar: a run's log is a file, and its process writes there (the terminal that follows a run shows
the same lines). The CLI draws its bars itself, where it knows its output is a terminal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

EVERY_S = 10.0


class Pace:
    """Counts ``unit`` done and logs ``verb N unit so far (R unit/s)`` once ``every`` seconds have passed."""

    def __init__(self, log: logging.Logger, verb: str, unit: str = "rows", every: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.log, self.verb, self.unit, self.every, self.clock = log, verb, unit, every, clock
        self.started = self.said = clock()
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if now - self.said >= self.every:
            self.said = now
            rate = self.done / max(now - self.started, 1e-9)
            self.log.info("%s %s %s so far (%s %s/s)", self.verb, f"{self.done:,}", self.unit, f"{rate:,.0f}",
                          self.unit)
