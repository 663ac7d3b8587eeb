"""``[alerts]``: where the embedded scheduler reports a failed or late period, and the recovery after it."""

from __future__ import annotations

from pydantic import Field

from batchcast.spec.base import Section


class AlertsSection(Section):
    """Where the embedded scheduler reports a failed date, and the recovery after it."""

    webhook: str | None = Field(
        None, description="Slack-compatible webhook URL; better set in BATCHCAST__ALERTS__WEBHOOK.")
    email: list[str] = Field(default_factory=list, description="Addresses to email.")
    smtp: str = Field("smtp://127.0.0.1:25", description="SMTP server, smtp://[user@]host:port (smtps:// for TLS); "
                                                       "the password comes from BATCHCAST_SMTP_PASSWORD.")
    sender: str = Field("batchcast@localhost", description="The From address of alert emails.")
    dashboard: str = Field("http://127.0.0.1:8765", description="Base URL of 'batchcast ui', for links to runs.")
