"""What an operator watches: Prometheus metrics at ``GET /metrics`` and one JSON access-log line per request.

Both come from one ASGI middleware, so every route (and every refused
request) is counted the same way. A handler tells it the model run and the
rows it scored through the request's state.
"""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

access = logging.getLogger("batchcast.access")
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
        self.log_dropped = Counter("batchcast_online_log_dropped_rows", "Rows dropped from [serve] log_table "
                                   "(too many waiting).", registry=self.registry)
        self.swaps = Counter("batchcast_model_swaps", "New models checked: swapped in, or refused.", ["outcome"],
                             registry=self.registry)

    def serving(self, served) -> None:
        self.model.clear()
        self.model.labels(served.run_id, served.alias or "").set(1)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Observe:
    """ASGI middleware: count, time and log each HTTP request."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self._cache: dict[tuple, tuple] = {}

    def _children(self, route: str, status: int, run: str) -> tuple:
        """The labelled metrics of one (route, status, run), looked up once: labels() costs a lock and checks."""
        key = (route, status, run)
        found = self._cache.get(key)
        if found is None:
            m = self.metrics
            found = self._cache[key] = (m.requests.labels(route, str(status), run), m.latency.labels(route),
                                        m.rows.labels(run))
        return found

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._record(scope, state, status, time.perf_counter() - started)

    def _record(self, scope, state: dict, status: int, elapsed: float) -> None:
        route = state.get("route", "other")  # a template (/v2/models/{name}/infer), so labels stay few
        run = state.get("model_run", "")
        counted, timed, rows = self._children(route, status, run)
        counted.inc()
        timed.observe(elapsed)
        if state.get("rows"):
            rows.inc(state["rows"])
        if access.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("", 0)
            access.info(json.dumps({"method": scope["method"], "path": scope["path"], "status": status,
                                    "ms": round(elapsed * 1000, 2), "rows": state.get("rows", 0),
                                    "model_run": run, "client": client[0]}))
