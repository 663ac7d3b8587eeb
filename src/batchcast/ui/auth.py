"""The dashboard's credential, its sessions and their CSRF tokens.

Without a credential the dashboard only reads, and only on a loopback
address. With one (``BATCHCAST_UI_PASSWORD``, or the first line of
``--password-file``; never the toml, which is committed), every page asks for
a login; a login sets a session cookie (HttpOnly, SameSite=Strict, random,
held in this process's memory only, so a restart logs everyone out) and
every form carries a CSRF token derived from the session, checked before any
action runs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from batchcast.errors import ServeError

ENV = "BATCHCAST_UI_PASSWORD"
COOKIE = "batchcast_session"
SESSION_S = 12 * 3600
MAX_SESSIONS = 10_000
USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # who an action is recorded as
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Credential:
    """The one secret that unlocks the dashboard, kept as its digest."""

    digest: bytes

    @classmethod
    def of(cls, secret: str) -> Credential:
        return cls(hashlib.sha256(secret.encode()).digest())

    @classmethod
    def load(cls, password_file: str | Path | None) -> Credential | None:
        """From ``password_file`` if given, else from the environment; None when neither has one."""
        if password_file is not None:
            path = Path(password_file)
            try:
                secret = next(iter(path.read_text().splitlines()), "").strip()
            except OSError as exc:
                raise ServeError(f"--password-file {path}: {exc.strerror}", "pass a readable file") from None
            if not secret:
                raise ServeError(f"--password-file {path}: the file is empty", "write the password on its first line")
            return cls.of(secret)
        secret = os.environ.get(ENV, "")
        return cls.of(secret) if secret.strip() else None

    def matches(self, given: str) -> bool:
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self.digest)


def refuse_open_bind(host: str, credential: Credential | None) -> None:
    """An address other than loopback is reachable by others: never without a credential."""
    if credential is None and host not in LOOPBACK:
        raise ServeError(f"refusing to listen on {host} without a credential: anyone who can reach it could act",
                         f"set {ENV} (or pass --password-file), or listen on 127.0.0.1")


class Sessions:
    """Live sessions by their random token: who logged in, and until when."""

    def __init__(self) -> None:
        self.key = secrets.token_bytes(32)  # CSRF tokens are an HMAC of the session under this key
        self.live: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def open(self, user: str) -> str:
        """A new session for ``user`` ("" before a login: the login form's CSRF token needs one)."""
        token = secrets.token_urlsafe(32)
        with self.lock:
            if len(self.live) >= MAX_SESSIONS:  # whoever asks for /login gets one: they must not pile up
                now = time.monotonic()
                self.live = {t: (u, until) for t, (u, until) in self.live.items() if u and until > now}
            self.live[token] = (user, time.monotonic() + SESSION_S)
        return token

    def close(self, token: str | None) -> None:
        with self.lock:
            self.live.pop(token or "", None)

    def user(self, token: str | None) -> str | None:
        """Who the session ``token`` belongs to; None for no, an unknown or an expired session."""
        with self.lock:
            found = self.live.get(token or "")
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self.live[token]
                return None
            return found[0]

    def csrf(self, token: str) -> str:
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str | None, given: str | None) -> bool:
        return bool(token and given) and hmac.compare_digest(self.csrf(token), given)


def cookie_header(token: str, *, clear: bool = False) -> str:
    """The session cookie: not readable by scripts, not sent by other sites' requests."""
    if clear:
        return f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_S}"


def session_of(cookie: str | None) -> str | None:
    """The session token in a request's Cookie header, if any."""
    for part in (cookie or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None
