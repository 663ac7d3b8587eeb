"""Runs: ids, timestamps, statuses and the manifest that commits them.

A run is one execution of one action for one logical date. Its id is
``{name}/{version}/{action}/{run_ts}``, ``run_ts`` a UTC timestamp that
sorts as text. Its manifest is written last, and is the commit.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import platform
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from batchcast.errors import IntegrityError
from batchcast.redaction import first_line
from batchcast.scheduling import periods

TS_FORMAT = "%Y%m%dT%H%M%S%fZ"
MANIFEST = "manifest.json"


class RunStatus(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"  # interrupted by its user (Ctrl-C, SIGTERM)


def new_run_ts(now: dt.datetime | None = None) -> str:
    """A sortable UTC timestamp, to the microsecond: ``20260101T063000123456Z``."""
    return (now or dt.datetime.now(dt.UTC)).strftime(TS_FORMAT)


def run_id(name: str, version: str, action: str, run_ts: str) -> str:
    """The one way a run's id is made: ``{name}/{version}/{action}/{run_ts}``, its folder in the store."""
    return f"{name}/{version}/{action}/{run_ts}"


# Four path parts, none of them empty, '.', '..' or holding a glob character or a newline.
RUN_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]*/){3}[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_run_id(text: str) -> bool:
    return RUN_ID.fullmatch(text) is not None


# A day, or an aware instant: read back as the kind it was written (pydantic alone reads a day as midnight).
PeriodField = Annotated[dt.datetime | dt.date, BeforeValidator(periods.coerce)]


class FileEntry(BaseModel):
    sha256: str
    size: int


class Manifest(BaseModel):
    """What ``manifest.json`` holds: everything a reader needs about a run."""

    # JSON has no NaN or Infinity: a non-finite metric (a NaN roc_auc, an infinite rmse) is stored as the
    # string "NaN", "Infinity" or "-Infinity" and reads back as that float; null would not read back.
    model_config = ConfigDict(ser_json_inf_nan="strings")

    run_id: str
    name: str
    version: str
    action: str
    kind: str
    run_ts: str
    status: RunStatus
    logical_date: PeriodField = Field(description="The period the run is for: a day, or (a sub-daily schedule) "
                                      "the start of its interval, in UTC.")
    interval_start: dt.datetime | None = Field(None, description="Where the period's interval starts, in UTC.")
    interval_end: dt.datetime | None = Field(None, description="Where it ends (the next tick, or the next day).")
    started_at: dt.datetime
    ended_at: dt.datetime
    executor: str
    contract: str
    model_run: str | None = Field(None, description="The training run applied, for application and evaluation.")
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    rows: dict[str, int] = Field(default_factory=dict, description="Row counts: read, predicted, written.")
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="Metrics by name; None where a batchcast before 0.2 stored a NaN as null.")
    files: dict[str, FileEntry] = Field(default_factory=dict, description="Every stored file with its sha256.")
    error: dict[str, Any] | None = None
    versions: dict[str, str] = Field(default_factory=dict, description="Python, batchcast and library versions.")
    image: dict[str, str] | None = Field(None, description="The container image the run ran in: ref and digest.")
    environment: dict[str, Any] = Field(
        default_factory=dict, description="The isolated environment: interpreter, overrides, build time, packages.")
    promotion: dict[str, Any] | None = Field(
        None, description="A training run's promotion gate decision: decision, metric, candidate, champion, reason.")
    checks: dict[str, Any] | None = Field(
        None, description="An application's input checks: per feature statistics, and the limits they broke.")
    seal: str | None = Field(None, description="sha256 of every other field, set when the run is committed.")

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    # The digest of the body as it was stored, when read from the store: a field a later
    # batchcast adds (with a default) must not break the seals of the manifests before it.
    _stored: str | None = PrivateAttr(None)
    _summary: dict[str, Any] | None = PrivateAttr(None)

    @classmethod
    def read(cls, raw: str | bytes, where: str = MANIFEST) -> Manifest:
        """A manifest from its stored JSON, remembering that body for :attr:`intact`.

        Raises IntegrityError naming ``where`` when the document is not a manifest.
        """
        try:
            doc = json.loads(raw)
            manifest = cls.model_validate(doc)
        except (ValueError, ValidationError) as exc:  # pydantic's ValidationError is a ValueError too
            raise IntegrityError(f"{where}: not a readable manifest ({_first_problem(exc)})",
                                 "restore the file from a backup, or delete the run's folder") from None
        manifest._stored = cls.seal_of(doc)
        return manifest

    def sealed(self) -> Manifest:
        """This manifest with its seal: a hand edit (a status, a file's sha256) no longer matches it."""
        # Sealed as stored: the JSON text, where a NaN metric is the string "NaN".
        return self.model_copy(update={"seal": self.seal_of(json.loads(self.model_dump_json()))})

    @property
    def intact(self) -> bool:
        return self.seal is not None and self.seal == (self._stored or self.seal_of(self.model_dump(mode="json")))

    @staticmethod
    def seal_of(doc: dict[str, Any]) -> str:
        """The seal of a manifest's JSON document: sha256 of its fields but the seal, in canonical JSON."""
        body = {k: v for k, v in doc.items() if k != "seal"}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The fields a listing shows, as JSON-ready values (a copy: the caller may change it)."""
        private = self.__pydantic_private__  # read once: each private attribute's access costs a __getattr__
        if private["_stored"] is None:  # being built by a run: it may change yet
            return self._summarised()
        if private["_summary"] is None:  # read from the store, where it never changes: made once
            private["_summary"] = self._summarised()
        return dict(private["_summary"])

    def _summarised(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "action": self.action, "status": self.status.value,
                "logical_date": periods.key(self.logical_date),
                "interval_start": self.interval_start and self.interval_start.isoformat(),
                "interval_end": self.interval_end and self.interval_end.isoformat(),
                "started_at": self.started_at.isoformat(),
                "ended_at": self.ended_at.isoformat(), "duration_s": round(self.duration_s, 3),
                "rows": self.rows, "model_run": self.model_run, "error": (self.error or {}).get("message"),
                "warnings": self.warnings()}

    def warnings(self) -> list[str]:
        """What a succeeded run did not do as it was asked: input checks that warned or did not run, a candidate
        the gate refused. Derived, not stored (the seal is unchanged); every listing shows them."""
        if not self.succeeded:
            return []  # the error says what went wrong
        checks, found = self.checks or {}, []
        if checks.get("breaches"):
            found.append(f"input checks breached ({checks.get('on_breach')}): {'; '.join(checks['breaches'])}")
        if checks.get("skipped"):
            found.append(f"input checks skipped: {checks['skipped']}")
        if (self.promotion or {}).get("decision") == "refused":
            found.append(f"not promoted to {self.promotion['alias']}: {self.promotion['reason']}")
        return found

    def shown_status(self) -> str:
        """The status as people read it: "succeeded, 1 warning" is not "succeeded"."""
        return with_warnings(self.status.value, self.warnings())


def with_warnings(status: str, warnings: list[str] | None) -> str:
    """``status``, and how many warnings the run has, if any."""
    count = len(warnings or [])
    return f"{status}, {count} warning{'s' if count > 1 else ''}" if count else status


def _first_problem(exc: Exception) -> str:
    """One line of what is wrong: pydantic's first error with its field, else the exception's first line."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return first_line(exc)


def library_versions(*names: str) -> dict[str, str]:
    """Versions of Python, batchcast and the named distributions that are installed."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("batchcast", "pyarrow", *names):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class RunRequest(BaseModel):
    """Everything needed to execute one run; JSON, so it can cross into a child process.

    The run's identity is made once, where the request is (``Service.run``, or a scheduler committing
    for a run that died): ``name``, ``version``, ``action``, ``run_ts`` and the ``run_id`` they form.
    Everything after, in this process or a child, reads it from here.
    """

    name: str
    version: str
    action: str
    run_ts: str
    run_id: str = Field("", description="The run's id; made from name, version, action and run_ts when left out.")
    spec_path: str
    overrides: dict[str, Any] = {}
    logical_date: PeriodField
    executor: str
    model_run: str | None = None
    # The manifest of model_run as Service.run read and verified it: a run executed in the same process
    # reads it from here, not again; excluded from the JSON, so a child process reads it from the store.
    applied: Manifest | None = Field(None, exclude=True)
    log_path: str
    environment: dict[str, Any] = {}  # the isolated environment the executor built or found, for the manifest

    @model_validator(mode="after")
    def _identity(self) -> RunRequest:
        if not self.run_id:
            self.run_id = run_id(self.name, self.version, self.action, self.run_ts)
        return self
