"""What an operator watches of a served model: its Prometheus metrics, in a registry of its own.

The transport counts its requests into them (``batchcast serve``'s
middleware, :class:`batchcast.serving.observe.Observe`); the slot records
the model being served, the watcher its swaps, the online log its rows written and dropped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (.001, .0025, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .25, .5, 1, 2.5)


class Metrics:
    """One server's metrics, in a registry of its own (tests and workers never share counters)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("batchcast_requests", "HTTP requests answered.", ["route", "status", "model_run"],
                                registry=self.registry)
        self.latency = Histogram("batchcast_request_seconds", "Time from request to response.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rows = Counter("batchcast_rows_predicted", "Rows scored.", ["model_run"], registry=self.registry)
        self.calls = Gauge("batchcast_model_calls", "Model calls made (micro-batching puts many requests "
                           "in one).", registry=self.registry)
        self.model = Gauge("batchcast_model_info", "The model being served (value 1).", ["model_run", "alias"],
                           registry=self.registry)
        self.log_written = Counter("batchcast_online_log_rows", "Rows appended to [serve] log_table.",
                                   registry=self.registry)
        self.log_dropped = Counter("batchcast_online_log_dropped_rows", "Rows dropped from [serve] log_table "
                                   "(too many waiting, a table that cannot hold them, not written by shutdown).",
                                   registry=self.registry)
        self.swaps = Counter("batchcast_model_swaps", "New models checked: swapped in, or refused.", ["outcome"],
                             registry=self.registry)

    def serving(self, served) -> None:
        self.model.clear()
        self.model.labels(served.run_id, served.alias or "").set(1)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
