"""The dashboard's pages, its routes and its HTTP server.

Pages are built per request from the library calls the CLI makes
(:mod:`~batchcast.ui.views`), so the dashboard shows exactly what the
commands show; its actions are the CLI's calls too
(:mod:`~batchcast.ui.operations`). It listens on 127.0.0.1 unless told
otherwise, and acts only for a logged-in user of a dashboard started with a
credential (:mod:`~batchcast.ui.auth`). Every page forbids scripts (its
Content-Security-Policy): it needs none, and an injected one cannot run.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from batchcast.errors import BatchcastError, ServeError
from batchcast.service import Service
from batchcast.ui import auth, views
from batchcast.ui.operations import Operations
from batchcast.ui.plots import plots
from batchcast.ui.runview import run_view

log = logging.getLogger("batchcast")
MAX_FORM = 64 * 1024
HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}

templates = Environment(loader=PackageLoader("batchcast.ui"), autoescape=select_autoescape(["html"]))


def render(name: str, **context) -> str:
    context.setdefault("user", None)
    context.setdefault("csrf", "")
    context.setdefault("acting", False)
    context.setdefault("flash", None)
    return templates.get_template(name).render(css=views.css, shown=views.shown, **context)


def overview(services: list[Service], now: dt.datetime | None = None, **context) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return render("overview.html", rows=[views.overview_row(s, now) for s in services], now=now, **context)


def run_page(services: list[Service], run_id: str, log_page: int | None = None, **context) -> str | None:
    service = next((s for s in services if run_id.startswith(f"{s.name}/{s.version}/")), None)
    if service is None:
        return None
    return render("run.html", **run_view(service, service.show(run_id), log_page), **context)


def service_html(service: Service, **context) -> str:
    return render("service.html", s=views.service_page(service), plots=plots(service), **context)


def grid_html(service: Service, page: int = 1, state: str | None = None, **context) -> str:
    return render("grid.html", key=f"{service.name}/{service.version}", g=views.grid(service, page, state), **context)


def models_html(service: Service, first: str | None = None, second: str | None = None, **context) -> str:
    return render("models.html", m=views.models_page(service, first, second), **context)


@dataclass
class Reply:
    code: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class App:
    """Routes a request to its page or action; knows the services, the credential and the sessions."""

    def __init__(self, services: list[Service], credential: auth.Credential | None):
        self.services = {f"{s.name}/{s.version}": s for s in services}
        self.credential, self.sessions, self.ops = credential, auth.Sessions(), Operations()
        self.flashes: dict[str, str] = {}

    def get(self, target: str, token: str | None) -> Reply:
        parts = urlsplit(target)
        path, query = unquote(parts.path), {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path == "/healthz":
            return Reply(200, "ok", {"Content-Type": "text/plain"})
        if path == "/login":
            return self._login_page(token, query.get("next", "/"))
        user = self.sessions.user(token) if self.credential else None
        if self.credential and not user:
            return Reply(303, headers={"Location": "/login?next=" + quote(target, safe="")})
        context = {"user": user, "csrf": self.sessions.csrf(token) if user else "", "acting": bool(user),
                   "flash": self.flashes.pop(token or "", None)}
        if path == "/":
            return Reply(200, overview(list(self.services.values()), **context))
        if path.startswith("/runs/") and (page := run_page(list(self.services.values()), path[len("/runs/"):],
                                                           _int(query.get("log")), **context)):
            return Reply(200, page)
        if path.startswith("/services/"):
            return self._service_get(path[len("/services/"):], query, context)
        return Reply(404, render("error.html", message="not found", detail=path, **context))

    def _service_get(self, rest: str, query: dict[str, str], context: dict) -> Reply:
        key, _, page = rest.rpartition("/") if rest.count("/") >= 2 else (rest, "", "")
        service = self.services.get(key)
        if service is None:
            return Reply(404, render("error.html", message="no such service", detail=rest, **context))
        if page == "":
            return Reply(200, service_html(service, **context))
        if page == "grid":
            return Reply(200, grid_html(service, _int(query.get("page")) or 1, query.get("state") or None, **context))
        if page == "models":
            return Reply(200, models_html(service, query.get("a"), query.get("b"), **context))
        return Reply(404, render("error.html", message="not found", detail=rest, **context))

    def post(self, target: str, form: dict[str, str], token: str | None) -> Reply:
        path = unquote(urlsplit(target).path)
        if path == "/login":
            return self._login(form, token)
        if not self.credential:
            return Reply(403, render("error.html", message="actions are off: this dashboard was started without a "
                                     "credential", detail=f"set {auth.ENV} (or pass --password-file) and restart it"))
        user = self.sessions.user(token)
        if not user:
            return Reply(403, render("error.html", message="not logged in", detail="log in first"))
        if not self.sessions.csrf_ok(token, form.get("csrf")):
            return Reply(403, render("error.html", message="this form has no valid CSRF token",
                                     detail="reload the page and submit the form again"))
        if path == "/logout":
            self.sessions.close(token)
            return Reply(303, headers={"Location": "/login", "Set-Cookie": auth.cookie_header("", clear=True)})
        key, _, verb = path[len("/services/"):].rpartition("/do/") if path.startswith("/services/") else ("", "", "")
        service = self.services.get(key)
        if service is None:
            return Reply(404, render("error.html", message="no such service", detail=path))
        try:
            self.flashes[token] = self.ops.do(service, verb, form, user)
        except BatchcastError as exc:
            return Reply(400, render("error.html", message=exc.message, detail=exc.fix or "", user=user))
        return Reply(303, headers={"Location": _local(form.get("back"), f"/services/{key}/grid")})

    def _login_page(self, token: str | None, after: str, failed: bool = False) -> Reply:
        if not self.credential:
            return Reply(200, render("login.html", off=True, env=auth.ENV))
        headers = {}
        if self.sessions.user(token) is None:  # a session before login, for the login form's CSRF token
            token = self.sessions.open("")
            headers["Set-Cookie"] = auth.cookie_header(token)
        return Reply(401 if failed else 200, render("login.html", off=False, failed=failed, next=_local(after, "/"),
                                                    csrf=self.sessions.csrf(token)), headers)

    def _login(self, form: dict[str, str], token: str | None) -> Reply:
        if not self.credential or self.sessions.user(token) is None or not self.sessions.csrf_ok(
                token, form.get("csrf")):
            return Reply(403, render("error.html", message="this login form has no valid CSRF token",
                                     detail="open the login page again"))
        user = form.get("user", "").strip()
        if not auth.USER.fullmatch(user) or not self.credential.matches(form.get("password", "")):
            time.sleep(0.5)  # a guess costs time
            log.warning("dashboard: a login as '%s' was refused", user[:64] if auth.USER.fullmatch(user) else "?")
            return self._login_page(token, form.get("next", "/"), failed=True)
        self.sessions.close(token)  # a new session at login: one fixed before it is worth nothing
        fresh = self.sessions.open(user)
        log.info("dashboard: %s logged in", user)
        return Reply(303, headers={"Location": _local(form.get("next"), "/"), "Set-Cookie": auth.cookie_header(fresh)})


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 9 else None


def _local(target: str | None, default: str) -> str:
    """``target`` if it is a path on this server (never another site's URL), else ``default``."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
            and all(32 < ord(c) < 127 for c in target):
        return target
    return default


def serve(specs: list[Path], host: str = "127.0.0.1", port: int = 8765, password_file: str | None = None) -> None:
    credential = auth.Credential.load(password_file)
    auth.refuse_open_bind(host, credential)
    app = App([Service(spec) for spec in specs], credential)
    server = _bind(host, port, _handler(app))
    # A browser's idle preconnected sockets must not keep the server from stopping.
    server.daemon_threads, server.block_on_close = True, False
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell ignores it for background jobs
        signal.signal(sig, signal.default_int_handler)
    log.info("dashboard on http://%s:%d/ for %s (%s)", host, server.server_address[1], ", ".join(app.services),
             "actions on, behind a login" if credential else f"read-only: no credential in {auth.ENV}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.ops.close()


def _bind(host: str, port: int, handler) -> ThreadingHTTPServer:
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         "pass another --port, or stop what listens there") from None


def _handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # seconds a connection may stay silent

        def do_GET(self) -> None:
            self._answer(lambda token: app.get(self.path, token))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_FORM:
                return self._send(Reply(413, "form too large"))
            raw = self.rfile.read(length).decode(errors="replace")
            form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            self._answer(lambda token: app.post(self.path, form, token))

        def _answer(self, call) -> None:
            token = auth.session_of(self.headers.get("Cookie"))
            try:
                reply = call(token)
            except BatchcastError as exc:
                reply = Reply(404, render("error.html", message=exc.message, detail=exc.fix or ""))
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            data = reply.body.encode()
            self.send_response(reply.code)
            for name, value in {"Content-Type": "text/html; charset=utf-8", **HEADERS, **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            log.debug("ui: " + format, *args)

    return Handler
