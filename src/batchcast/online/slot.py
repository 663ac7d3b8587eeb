"""The model being served, held in one place: a swap replaces one reference.

A request (or a batch of records) takes ``slot.served`` once and keeps it,
so it sees the old model or the new one, never a mix.
"""

from __future__ import annotations

from batchcast.online.loading import Served
from batchcast.online.metrics import Metrics


class Slot:
    """The model being served; :meth:`swap` replaces it in one assignment."""

    def __init__(self, served: Served | None = None, metrics: Metrics | None = None):
        self.metrics = metrics or Metrics()
        self.served = None
        if served is not None:
            self.swap(served)

    def swap(self, served: Served) -> None:
        self.served = served
        self.metrics.serving(served)
