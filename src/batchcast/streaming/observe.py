"""What an operator watches of a stream: Prometheus metrics and health probes, on a small HTTP port.

``/metrics`` has the online core's model metrics (the run being used, its
swaps) and the stream's own: messages consumed, rows scored, records
produced, dead letters, lag per partition and the time per batch. The probes
answer ``/health/live`` (the loop has turned within ``stale`` seconds) and
``/health/ready`` (a model is loaded and the source has started). The port
binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import Counter, Gauge, Histogram

from batchcast.online.metrics import LATENCY_BUCKETS, Metrics

BATCH_BUCKETS = LATENCY_BUCKETS + (5, 10, 30)


class StreamMetrics(Metrics):
    """The online core's metrics and the stream's, in one registry."""

    def __init__(self):
        super().__init__()
        r = self.registry
        self.consumed = Counter("batchcast_stream_messages", "Messages read from the source.", registry=r)
        self.scored = Counter("batchcast_stream_rows_scored", "Rows scored.", ["model_run"], registry=r)
        self.produced = Counter("batchcast_stream_records_produced", "Prediction records sent to the topic.",
                                registry=r)
        self.delivered = Counter("batchcast_stream_rows_delivered", "Rows added to the table (a repeat adds none).",
                                 registry=r)
        self.dead = Counter("batchcast_stream_dead_letters", "Messages refused (sent to the dead-letter topic, or "
                            "logged without one).", ["reason"], registry=r)
        self.retries = Counter("batchcast_stream_batch_retries", "Batches delivered again after a transient "
                               "failure.", registry=r)
        self.lag = Gauge("batchcast_stream_lag", "Messages not yet read, by partition.", ["partition"], registry=r)
        self.batch = Histogram("batchcast_stream_batch_seconds",
                               "Time from a batch's poll to its delivery (an at-least-once topic's: to its send).",
                               buckets=BATCH_BUCKETS, registry=r)
        self.turned = time.monotonic()  # the loop's last turn, for the liveness probe

    def set_lag(self, lags: dict[str, int]) -> None:
        self.lag.clear()
        for partition, lag in lags.items():
            self.lag.labels(partition).set(lag)


class Probes:
    """The HTTP port: ``/metrics``, ``/health/live`` and ``/health/ready``, on a thread of its own."""

    def __init__(self, metrics: StreamMetrics, ready, host: str = "127.0.0.1", port: int = 9464,
                 stale: float = 120.0):
        metrics_, ready_ = metrics, ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path == "/metrics":
                    body, kind = metrics_.exposition()
                    return self._answer(200, body, kind)
                if self.path == "/health/live":
                    alive = time.monotonic() - metrics_.turned < stale
                    return self._answer(200 if alive else 503, json.dumps({"live": alive}).encode())
                if self.path == "/health/ready":
                    ok = bool(ready_())
                    return self._answer(200 if ok else 503, json.dumps({"ready": ok}).encode())
                return self._answer(404, b'{"error": "no such route"}')

            def _answer(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # a probe every few seconds must not fill the log
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="batchcast-probes", daemon=True)

    def start(self) -> Probes:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
