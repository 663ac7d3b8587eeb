"""Alerts from the embedded scheduler: a Slack-compatible webhook and email, on failure and on recovery.

Sending is best effort: an alert that cannot be delivered is logged (by host,
never by URL, which holds the webhook's token) and the scheduler goes on.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

from batchcast.spec import AlertsSection

log = logging.getLogger("batchcast")
TIMEOUT_S = 10


@dataclass
class Alert:
    kind: str  # "failure", "recovery", "refused" (by the promotion gate), "checks" (an input check breached),
    # "unserved" (batchcast serve could not load a new target and kept the old model), "tracking" (the
    # MLflow tracking server did not take a run), or "stale" (a period has no success fresh_within its tick)
    service: str
    version: str
    action: str
    logical_date: str
    status: str
    run_id: str | None = None
    error: str | None = None
    fix: str | None = None

    def link(self, dashboard: str) -> str:
        base = dashboard.rstrip("/")
        return f"{base}/runs/{self.run_id}" if self.run_id else f"{base}/"

    def subject(self) -> str:
        what = {"recovery": "recovered", "refused": "not promoted",
                "checks": f"input checks breached ({self.status})",
                "unserved": "new model not served", "stale": "no success on time"}.get(self.kind, self.status)
        return f"[batchcast] {self.service}/{self.version} {self.action} {self.logical_date}: {what}"

    def body(self, dashboard: str) -> str:
        lines = [self.subject(), f"run: {self.run_id or 'none committed'}", f"link: {self.link(dashboard)}"]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.fix:
            lines.append(f"fix: {self.fix}")
        return "\n".join(lines)


def send(config: AlertsSection, alert: Alert) -> list[str]:
    """Deliver ``alert`` on every configured channel; return one line per channel that failed."""
    problems = []
    if config.webhook:
        try:
            _webhook(config.webhook, alert, config.dashboard)
        except OSError as exc:
            problems.append(f"webhook to {urlsplit(config.webhook).hostname}: {_reason(exc)}")
    if config.email:
        try:
            _email(config, alert)
        except (OSError, smtplib.SMTPException) as exc:
            problems.append(f"email through {urlsplit(config.smtp).hostname}: {_reason(exc)}")
    for problem in problems:
        log.warning("alert not delivered: %s", problem)
    return problems


def _webhook(url: str, alert: Alert, dashboard: str) -> None:
    text = alert.body(dashboard)
    payload = {  # Slack's incoming-webhook shape; Mattermost, Teams workflows and others accept it too
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "batchcast": asdict(alert) | {"link": alert.link(dashboard)},
    }
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        response.read()


def _email(config: AlertsSection, alert: Alert) -> None:
    parts = urlsplit(config.smtp)
    message = EmailMessage()
    message["Subject"] = alert.subject()
    message["From"] = config.sender
    message["To"] = ", ".join(config.email)
    message.set_content(alert.body(config.dashboard))
    secure = parts.scheme == "smtps"
    client_type = smtplib.SMTP_SSL if secure else smtplib.SMTP
    with client_type(parts.hostname or "127.0.0.1", parts.port or (465 if secure else 25), timeout=TIMEOUT_S) as client:
        if parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes"):
            client.starttls()
        if parts.username:
            client.login(parts.username, os.environ.get("BATCHCAST_SMTP_PASSWORD", ""))
        client.send_message(message)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # urllib's errors; their str() would not name the URL either
    return str(reason) if reason else f"{type(exc).__name__}: {exc}"
