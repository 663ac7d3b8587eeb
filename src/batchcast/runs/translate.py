"""The artifact store's boundary: what fsspec and its backends raise, as batchcast's errors.

fsspec's local filesystem raises OSError; s3fs and gcsfs mostly OSError too,
but botocore's and google-auth's own errors (no network, a bad endpoint) pass
through untranslated. Every public operation of the store goes through
:func:`translated`, so that no caller (a run's commit, a listing, the
dashboard) ever meets a library's exception type.
"""

from __future__ import annotations

import errno
import functools

from batchcast.errors import BatchcastError, StoreError, StoreUnavailable
from batchcast.redaction import first_line, redact

FIXES = {
    errno.ENOSPC: "the store is full: free space on it, or point [storage] url at a store with room",
    errno.EDQUOT: "the store's quota is used up: free space on it, or point [storage] url elsewhere",
    errno.EROFS: "the store is read-only: remount it writable, or point [storage] url elsewhere",
    errno.EACCES: "this user may not write there: fix the folder's permissions, or point [storage] url elsewhere",
    errno.EPERM: "this user may not write there: fix the folder's permissions, or point [storage] url elsewhere",
}


def translated(method):
    """Run a store method, turning whatever its filesystem raises into a StoreError naming the store."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except BatchcastError:
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary: every backend's own types end here
            raise failure(self.url, method.__name__.strip("_").replace("_", " "), exc) from exc
    return wrapper


def failure(url: str, what: str, exc: Exception) -> StoreError:
    message = f"artifact store {redact(url)}: {what} failed: {first_line(exc)}"
    if isinstance(exc, ConnectionError | TimeoutError) or any(
            word in type(exc).__name__ for word in ("Connect", "Timeout", "Endpoint")):
        return StoreUnavailable(message, "check [storage] url and the network; the scheduler retries by itself")
    code = getattr(exc, "errno", None)
    return StoreError(message, FIXES.get(code, "check [storage] url and the store's permissions"))
