"""The one error tree of batchcast.

Every error a user can meet derives from :class:`BatchcastError` and carries
a ``fix``: one sentence that says what to do about it. Retryable versus final
is a property of the type (``transient``), which the scheduler's retry policy
reads; adapters translate their backend's exceptions into these types at their
boundary, so the core never catches a duckdb, psycopg or google exception.

    BatchcastError
    ├── SpecError              batchcast.toml or an action config is invalid
    ├── SchemaError            declared schema and data disagree
    ├── InputError             an input is missing, empty or unreadable
    ├── ModelError             the model raised, or its command exited non-zero
    ├── StoreError             the artifact store refused an operation
    │   ├── StoreUnavailable   (transient) it could not be reached
    │   ├── RunNotFound        no run or alias by that name
    │   ├── RunExists          a committed run would be overwritten
    │   └── IntegrityError     a stored file does not match its checksum
    ├── WarehouseError         the warehouse refused an operation
    │   ├── QueryError         it refused a query (bad SQL, a missing table or column)
    │   └── WarehouseUnavailable   (transient) it could not be reached
    ├── ExecutorError          the isolated environment could not be built or run
    │   └── RunTimeout         the run exceeded its timeout and was killed
    ├── Cancelled              its user interrupted the run (Ctrl-C, SIGTERM)
    ├── SchedulerError         the scheduler cannot start (another one holds the service)
    ├── ServeError             a server cannot listen, or has no model it can serve
    ├── RequestError           an online request or record is refused (its body, a column, a value)
    ├── BrokerError            a message broker refused an operation (Kafka, Pub/Sub)
    │   └── BrokerUnavailable  (transient) it could not be reached, or a transaction must be retried
    ├── RegistryError          an MLflow model cannot be resolved or fetched (no such alias, version, run)
    │   └── RegistryUnavailable    (transient) the tracking server could not be reached
    └── MissingExtra           an optional backend's package is not installed
"""

from __future__ import annotations


class BatchcastError(Exception):
    """Root of every batchcast error.

    ``message`` says what went wrong, naming the file, key, column or value;
    ``fix`` says what to do about it.
    """

    transient = False

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} (fix: {self.fix})"
        return self.message

    def to_dict(self) -> dict:
        """The form stored in a failed run's manifest."""
        return {"type": type(self).__name__, "message": self.message, "fix": self.fix}


class SpecError(BatchcastError):
    """Raised while loading ``batchcast.toml`` or an action's config file."""


class SchemaError(BatchcastError):
    """Raised when a compact schema does not parse, or data does not match it.

    Raised before anything is committed to the warehouse.
    """


class InputError(BatchcastError):
    """Raised when an action's input is missing, empty or cannot be read."""


class ModelError(BatchcastError):
    """Raised when the model's code raises, or its command exits non-zero."""


class StoreError(BatchcastError):
    """Raised by the artifact store when it refuses an operation (full, read-only, a bad URL), translated there."""


class StoreUnavailable(StoreError):
    """Raised when the artifact store cannot be reached (a network error, a timeout); worth retrying."""

    transient = True


class RunNotFound(StoreError):
    """Raised when a run id, timestamp or alias names nothing committed."""


class RunExists(StoreError):
    """Raised when committing would overwrite a committed run."""


class IntegrityError(StoreError):
    """Raised when a stored file's sha256 differs from its manifest's."""


class WarehouseError(BatchcastError):
    """Raised by a warehouse backend, translated from the driver's error."""


class QueryError(WarehouseError):
    """Raised by a warehouse backend's ``read`` when the warehouse refused the query itself.

    Distinct from its parent so that an input names the query as the culprit only when it
    is: a warehouse that cannot be opened (a corrupt file, a folder) is a WarehouseError.
    """


class WarehouseUnavailable(WarehouseError):
    """Raised when the warehouse cannot be reached; worth retrying."""

    transient = True


class BrokerError(BatchcastError):
    """Raised by a broker backend (``batchcast stream``'s source and topics), translated from its client's error."""


class BrokerUnavailable(BrokerError):
    """Raised when the broker cannot be reached, or a transaction was aborted and may be retried."""

    transient = True


class ExecutorError(BatchcastError):
    """Raised when an executor cannot build or start the run's environment."""


class RunTimeout(ExecutorError):
    """Raised when a run exceeds its action's timeout; its process tree is killed."""


class Cancelled(BatchcastError):
    """Its user interrupted the run; the run is committed as ``cancelled``, not ``failed``."""

    def __init__(self, message: str = "the run was interrupted (Ctrl-C or SIGTERM) and stopped",
                 fix: str | None = "run it again when you want it"):
        super().__init__(message, fix)


class SchedulerError(BatchcastError):
    """Raised when the embedded scheduler cannot take charge of a service."""


class ServeError(BatchcastError):
    """A server (``batchcast ui``, ``batchcast serve``) cannot listen, or ``serve`` has no model it can load."""


class RequestError(BatchcastError):
    """Raised when an online request, or a record, cannot be scored as it is.

    The online core raises it while reading rows into the model's features
    (:mod:`batchcast.online.features`: a missing column, a value of the wrong
    type, no rows); ``batchcast serve`` while reading a request's body and
    format (:mod:`batchcast.serving.requests`: not JSON, an unknown key) and
    for a body too large or a model not served (:mod:`batchcast.serving.app`).
    ``status`` is the HTTP status the server answers with (400, 404 or 413;
    400 by default); ``message`` names the key, column or value, ``fix`` what
    to do instead.
    """

    def __init__(self, message: str, fix: str, status: int = 400):
        super().__init__(message, fix)
        self.status = status


class RegistryError(BatchcastError):
    """Raised when ``[model] mlflow`` names a model the registry or the folder does not have."""


class RegistryUnavailable(RegistryError):
    """Raised when the MLflow tracking server does not answer."""

    transient = True


def is_transient(error_type: str | None) -> bool:
    """Whether an error recorded by type name (in a manifest) is worth retrying."""
    found = globals().get(error_type or "")
    return isinstance(found, type) and issubclass(found, BatchcastError) and found.transient


class MissingExtra(BatchcastError):
    """Raised when a backend needs a package that is not installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(
            f"{what} needs the '{extra}' extra, which is not installed",
            f"pip install 'batchcast[{extra}]'",
        )
