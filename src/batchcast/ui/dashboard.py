"""The dashboard's pages and its HTTP server.

Pages are built per request from the same library calls the CLI makes
(``runs``, ``schedule``, ``models``, ``show``), so the dashboard shows
exactly what the commands show. It listens on 127.0.0.1 unless told
otherwise and only reads.
"""

from __future__ import annotations

import json
import logging
import signal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from batchcast.errors import BatchcastError, ServeError
from batchcast.scheduling import periods
from batchcast.scheduling.listing import collapsed
from batchcast.service import CHAMPION, Service
from batchcast.ui.charts import line_chart

log = logging.getLogger("batchcast")
LOG_TAIL = 200_000  # characters of a run's log shown on its page
RUNS_SHOWN = 500

templates = Environment(loader=PackageLoader("batchcast.ui"), autoescape=select_autoescape(["html"]))


def overview(services: list[Service]) -> str:
    return templates.get_template("overview.html").render(services=[_service_view(s) for s in services])


def run_page(services: list[Service], run_id: str) -> str | None:
    service = next((s for s in services if run_id.startswith(f"{s.name}/{s.version}/")), None)
    if service is None:
        return None
    manifest = service.show(run_id)
    try:
        log_text = service.log(manifest)[-LOG_TAIL:]
    except BatchcastError as exc:
        log_text = f"(no log: {exc.message})"
    return templates.get_template("run.html").render(
        manifest=manifest, manifest_json=json.dumps(manifest.model_dump(mode="json"), indent=2), log_text=log_text)


def _service_view(service: Service) -> dict:
    history = service.history()
    committed = [r for r in history if r.get("source") != "ledger"]
    durations: dict[str, list] = {}
    for row in committed:
        durations.setdefault(row["action"], []).append((row["logical_date"], row["duration_s"]))
    drift: dict[str, list] = {}  # PSI per feature, by the logical date of each checked application
    for m in sorted(service.runs("application"), key=lambda m: (periods.order(m.logical_date), m.started_at)):
        for name, stats in ((m.checks or {}).get("features") or {}).items():
            if stats.get("psi") is not None:
                drift.setdefault(name, []).append((periods.key(m.logical_date), stats["psi"]))
    metrics: dict[str, list] = {}
    trained = list(reversed(service.models()))  # oldest first
    for model in trained:
        for name, value in model["metrics"].items():
            metrics.setdefault(name, []).append((model["ended_at"][:16], value))
    return {
        "name": service.name, "version": service.version, "spec": str(service.spec.file),
        "actions": [{"name": n, "kind": a.kind, "schedule": a.schedule or "", "timezone": a.timezone,
                     "catchup": a.catchup, "executor": a.executor} for n, a in service.spec.actions.items()],
        "upcoming": service.schedule(3),
        "runs": collapsed(sorted(history, key=lambda r: (r["logical_date"], r["started_at"] or ""), reverse=True),
                          service.spec.actions)[:RUNS_SHOWN],
        "duration_chart": line_chart("run duration by logical date", durations, " s"),
        "metrics_chart": line_chart("training metrics over time", metrics),
        "drift_chart": line_chart("input drift (PSI per feature) by logical date", drift) if drift else "",
        "champions": list(reversed(service.store.alias_history(service.name, service.version, CHAMPION))),
        "decisions": [{"run_id": m.run_id, **m.promotion} for m in reversed(service.runs("training"))
                      if m.promotion][:RUNS_SHOWN],
    }


def serve(specs: list[Path], host: str = "127.0.0.1", port: int = 8765) -> None:
    services = [Service(spec) for spec in specs]
    server = _bind(host, port, _handler(services))
    # A browser's idle preconnected sockets must not keep the server from stopping.
    server.daemon_threads, server.block_on_close = True, False
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell ignores it for background jobs
        signal.signal(sig, signal.default_int_handler)
    log.info("dashboard on http://%s:%d/ for %s", host, server.server_address[1],
             ", ".join(f"{s.name}/{s.version}" for s in services))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _bind(host: str, port: int, handler) -> ThreadingHTTPServer:
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         "pass another --port, or stop what listens there") from None


def _handler(services: list[Service]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # seconds a connection may stay silent

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            try:
                if path == "/":
                    return self._send(200, overview(services))
                if path == "/healthz":
                    return self._send(200, "ok", "text/plain")
                if path.startswith("/runs/") and (page := run_page(services, path[len("/runs/"):])):
                    return self._send(200, page)
                return self._send(404, _error_page("not found", path))
            except BatchcastError as exc:
                return self._send(404, _error_page(exc.message, exc.fix or ""))

        def _send(self, code: int, body: str, kind: str = "text/html; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            log.debug("ui: " + format, *args)

    return Handler


def _error_page(message: str, detail: str) -> str:
    return templates.get_template("error.html").render(message=message, detail=detail)
