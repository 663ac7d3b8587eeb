"""What an operator watches: Prometheus metrics at ``GET /metrics`` and one JSON access-log line per request.

Both come from one ASGI middleware, so every route (and every refused
request) is counted the same way. A handler tells it the model run and the
rows it scored through the request's state. The metrics themselves are the
online core's (:class:`batchcast.online.metrics.Metrics`).
"""

from __future__ import annotations

import json
import logging
import time

from batchcast.online.metrics import Metrics

access = logging.getLogger("batchcast.access")


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
