"""Running one action: the context every action gets, and :func:`execute`.

``execute`` is the same whichever executor calls it (in this process, or in
a child process inside an isolated environment): it runs the contract,
uploads what the run produced, and commits the manifest last, whatever
failed on the way.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from batchcast.errors import BatchcastError, RunExists, RunTimeout
from batchcast.runs import FileEntry, Manifest, RunStatus, library_versions, run_id
from batchcast.spec import ActionSpec, ServiceSpec, load_config, load_spec, redact
from batchcast.store import ArtifactStore

log = logging.getLogger("batchcast")


class RunRequest(BaseModel):
    """Everything needed to execute one run; JSON, so it can cross into a child process."""

    spec_path: str
    overrides: dict[str, Any] = {}
    action: str
    logical_date: dt.date
    run_ts: str
    executor: str
    model_run: str | None = None
    log_path: str


@dataclass
class PythonEnv:
    """Where a command-contract model finds ``python``: batchcast's own, or a virtualenv's."""

    bin_dir: Path
    venv: Path | None = None


@dataclass
class Outcome:
    """What a run produced so far; kept when it fails half-way, for its manifest."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    spec: ServiceSpec
    request: RunRequest
    store: ArtifactStore
    workdir: Path
    python_env: PythonEnv | None = None
    _warehouse: Any = None

    @property
    def action(self) -> ActionSpec:
        return self.spec.action(self.request.action)

    @property
    def run_id(self) -> str:
        s = self.spec.service
        return run_id(s.name, s.version, self.request.action, self.request.run_ts)

    @property
    def where(self) -> str:
        """How messages name this action's table in the spec."""
        return f"{self.spec.file.name} [actions.{self.request.action}]"

    @property
    def warehouse(self):
        if self._warehouse is None:
            from batchcast.warehouses import open_warehouse

            self._warehouse = open_warehouse(self.spec.warehouse_url)
        return self._warehouse

    def config(self) -> dict[str, Any]:
        path = self.action.config
        return load_config(self.spec.model_path / path) if path else {}

    def fetch_model(self, dest: Path) -> Manifest:
        """Copy the applied training run's output files into ``dest``, checksums verified."""
        manifest = self.store.manifest(self.request.model_run)
        self.store.fetch(manifest, "output", dest)
        log.info("model %s fetched and verified", manifest.run_id)
        return manifest


def execute(request: RunRequest, python_env: PythonEnv | None = None) -> Manifest:
    """Run the action and commit its manifest; the manifest says whether it succeeded."""
    spec = load_spec(request.spec_path, overrides=request.overrides)
    workdir = Path(tempfile.mkdtemp(prefix=f"batchcast-{spec.service.name}-"))
    ctx = RunContext(spec, request, ArtifactStore(spec.storage_url), workdir, python_env)
    handler = _log_to(Path(request.log_path))
    started, outcome, error, status = _now(), Outcome(), None, RunStatus.SUCCEEDED
    try:
        log.info("run %s: %s for %s", ctx.run_id, ctx.action.kind, request.logical_date)
        _runner(spec, ctx.action.kind)(ctx, outcome)
    except BaseException as exc:
        status = RunStatus.TIMED_OUT if isinstance(exc, RunTimeout) else RunStatus.FAILED
        error = _error(exc)
        cause = exc.__cause__ if isinstance(exc, BatchcastError) else exc
        log.error("run %s %s: %s", ctx.run_id, status.value, error["message"], exc_info=cause)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt: the finally clause still commits
    finally:
        log.removeHandler(handler)
        handler.close()
        if ctx._warehouse is not None:
            ctx.warehouse.close()
        manifest = _commit(ctx, outcome, started, status, error)
        shutil.rmtree(workdir, ignore_errors=True)
    return manifest


def _runner(spec: ServiceSpec, kind: str):
    if spec.model.contract == "command":
        from batchcast.actions import command

        return command.run
    from batchcast.actions import application, evaluation, training

    return {"training": training.run, "application": application.run, "evaluation": evaluation.run}[kind]


def _commit(ctx: RunContext, outcome: Outcome, started: dt.datetime, status: RunStatus,
            error: dict | None) -> Manifest:
    log_path = Path(ctx.request.log_path)
    if log_path.exists():
        outcome.files["log.txt"] = ctx.store.put_file(ctx.run_id, "log.txt", log_path)
    return commit_manifest(ctx.spec, ctx.request, ctx.store, status, started=started, error=error,
                           outcome=outcome, action=ctx.action)


def commit_manifest(spec: ServiceSpec, request: RunRequest, store: ArtifactStore, status: RunStatus, *,
                    started: dt.datetime, error: dict | None, outcome: Outcome | None = None,
                    action: ActionSpec | None = None) -> Manifest:
    """Write a run's manifest; used by ``execute`` and by executors whose child died first."""
    outcome = outcome or Outcome()
    action = action or spec.action(request.action)
    s = spec.service
    manifest = Manifest(
        run_id=run_id(s.name, s.version, request.action, request.run_ts), name=s.name, version=s.version,
        action=request.action, kind=action.kind, run_ts=request.run_ts, status=status,
        logical_date=request.logical_date, started_at=started, ended_at=_now(),
        executor=os.environ.get("BATCHCAST_EXECUTOR", request.executor),  # the container's, seen from inside
        contract=spec.model.contract, model_run=request.model_run,
        inputs={"storage": redact(spec.storage_url), "warehouse": redact(spec.warehouse_url), **outcome.inputs},
        outputs=outcome.outputs, rows=outcome.rows, metrics=outcome.metrics, files=outcome.files,
        error=error, versions=library_versions("duckdb", "scikit-learn", "numpy", "pandas"), image=_image())
    store.commit(manifest)
    return manifest


def ensure_committed(spec: ServiceSpec, request: RunRequest, status: RunStatus, started: dt.datetime,
                     error: BatchcastError) -> Manifest:
    """The run's own manifest if it committed one; else commit one now with ``status``, ``error`` and its log.

    What every executor does once the run's process (container, pod, job,
    VM) has ended or been killed: a run that vanished without committing
    is recorded as such, and never hides one that committed just before.
    """
    store = ArtifactStore(spec.storage_url)
    s = spec.service
    rid = run_id(s.name, s.version, request.action, request.run_ts)
    outcome = Outcome()
    try:
        if Path(request.log_path).exists():
            outcome.files["log.txt"] = store.put_file(rid, "log.txt", Path(request.log_path))
        return commit_manifest(spec, request, store, status, started=started, error=error.to_dict(), outcome=outcome)
    except RunExists:
        return store.manifest(rid)


def _image() -> dict[str, str] | None:
    """The image this process runs in, as its Dockerfile and its executor declared it."""
    ref = os.environ.get("BATCHCAST_IMAGE")
    if not ref:
        return None
    return {"ref": ref, "digest": os.environ.get("BATCHCAST_IMAGE_DIGEST", ""),
            "id": os.environ.get("BATCHCAST_IMAGE_ID", "")}


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, BatchcastError):
        return exc.to_dict()
    return {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}", "fix": None,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _log_to(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
