"""The model being served, held in one place: a swap replaces one reference.

A request (or a batch of records) takes ``slot.served`` once and keeps it,
so it sees the old model or the new one, never a mix.
"""

from __future__ import annotations

from batchcast.model.scoring import Slices
from batchcast.online.loading import Served
from batchcast.online.metrics import Metrics


class Slot:
    """The model being served; :meth:`swap` replaces it in one assignment.

    Each model swapped in scores a large batch on up to ``threads`` threads
    (:class:`~batchcast.model.scoring.Slices`), judging what is large by its own calls.
    """

    def __init__(self, served: Served | None = None, metrics: Metrics | None = None, threads: int = 1):
        self.metrics = metrics or Metrics()
        self.threads = threads
        self.served = None
        if served is not None:
            self.swap(served)

    def swap(self, served: Served) -> None:
        served.slices = Slices(self.threads)
        self.served = served
        self.metrics.serving(served)
