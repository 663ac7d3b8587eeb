"""Text as it may appear in logs, manifests, messages and the dashboard: secrets masked, one line.

A secret may sit in a URL's user part (``postgresql://u:secret@host/db``) or in
a query parameter (``?password=secret``, as libpq and many drivers accept):
both are found and masked here, and only here. A library's message (a driver's,
Arrow's) is cut to its first line here too: batchcast's own say the rest.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry a secret, by name or by a part of it (case-insensitive).
SECRET_NAMES = ("password", "passwd", "pwd", "secret", "token", "credential", "sig", "signature", "apikey",
                "api_key")


def is_secret(name: str) -> bool:
    """Whether a query parameter called ``name`` holds a secret."""
    lower = name.lower()
    return any(part in lower for part in SECRET_NAMES)


def has_secret(url: str) -> bool:
    """Whether ``url`` carries a password or a secret query parameter."""
    parts = urlsplit(url)
    return parts.password is not None or any(is_secret(k) for k, _ in parse_qsl(parts.query))


def without_password(url: str) -> str:
    """``url`` with its password removed, for a process that must bring its own credentials."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@", 1)))


def first_line(error: BaseException | str) -> str:
    """The first line of a message or an error's (a driver's may run to pages); an error's type if it says nothing."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return type(error).__name__ if isinstance(error, BaseException) else ""


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) with every secret of ``url`` masked wherever it appears."""
    parts = urlsplit(url)
    secrets = [v for k, v in parse_qsl(parts.query) if is_secret(k) and v] + [parts.password or ""]
    for secret in filter(None, secrets):
        text = text.replace(secret, MASK)
    return text.replace(url, redact(url))


def redact(url: str) -> str:
    """``url`` with its password and secret query parameters masked, the rest exactly as written."""
    if not has_secret(url):
        return url
    parts = urlsplit(url)
    # Rebuilt by hand, not by urlunsplit, which turns duckdb:////abs/path into duckdb://abs/path.
    head, sep, query = url.partition("?")
    if parts.password is not None:
        head = head.replace(f":{parts.password}@", f":{MASK}@", 1)
    if sep:
        query = urlencode([(k, MASK if is_secret(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)],
                          safe="*")
    return head + sep + query
