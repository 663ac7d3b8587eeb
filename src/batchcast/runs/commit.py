"""The commit step: a run's manifest written last, whoever ends the run.

``execute`` commits the runs it ends; an executor or the scheduler commits
for a run whose process died (killed, out of memory, timed out) before it
could, and never over one that committed just before.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchcast.errors import BatchcastError, RunExists, RunNotFound
from batchcast.redaction import redact
from batchcast.runs.manifest import FileEntry, Manifest, RunRequest, RunStatus, library_versions
from batchcast.runs.store import ArtifactStore

if TYPE_CHECKING:
    from batchcast.spec import ActionSpec, ServiceSpec


@dataclass
class Outcome:
    """What a run produced so far; kept when it fails half-way, for its manifest."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None  # the promotion gate's decision, for a training run
    checks: dict[str, Any] | None = None  # an application's input checks


def commit_manifest(spec: ServiceSpec, request: RunRequest, store: ArtifactStore, status: RunStatus, *,
                    started: dt.datetime, error: dict | None, outcome: Outcome | None = None,
                    action: ActionSpec | None = None, staged: bool = False) -> Manifest:
    """Write a run's manifest; used by ``execute`` and by executors whose child died first.

    With ``staged`` it is only staged (``ArtifactStore.stage``): a run that publishes rows commits it after the
    warehouse committed them.
    """
    manifest = _manifest(spec, request, status, started, error, outcome or Outcome(), action)
    return store.stage(manifest) if staged else store.commit(manifest)


def _manifest(spec: ServiceSpec, request: RunRequest, status: RunStatus, started: dt.datetime,
              error: dict | None, outcome: Outcome, action: ActionSpec | None) -> Manifest:
    action = action or spec.action(request.action)
    start, end = action.interval(request.logical_date)
    return Manifest(
        run_id=request.run_id, name=request.name, version=request.version,
        action=request.action, kind=action.kind, run_ts=request.run_ts, status=status,
        logical_date=request.logical_date, interval_start=start, interval_end=end, started_at=started, ended_at=now(),
        executor=os.environ.get("BATCHCAST_EXECUTOR", request.executor),  # the container's, seen from inside
        contract=spec.model.contract, model_run=request.model_run,
        inputs={"storage": redact(spec.storage_url), "warehouse": redact(spec.warehouse_url), **outcome.inputs},
        outputs=outcome.outputs, rows=outcome.rows, metrics=outcome.metrics, files=outcome.files,
        error=error, versions=library_versions("duckdb", "scikit-learn", "numpy", "pandas"), image=_image(),
        environment=request.environment, promotion=outcome.promotion, checks=outcome.checks)


def ensure_committed(spec: ServiceSpec, request: RunRequest, status: RunStatus, started: dt.datetime,
                     error: BatchcastError) -> Manifest:
    """The run's own manifest if it committed one; else commit one now with ``status``, ``error`` and its log.

    What every executor does once the run's process (container, pod, job,
    VM) has ended or been killed: a run that vanished without committing
    is recorded as such, and never hides one that committed just before.
    """
    store = ArtifactStore(spec.storage_url)
    try:
        return store.manifest(request.run_id)  # it committed: succeeded or failed, its manifest says so
    except RunNotFound:
        pass
    settled = settle_staged(spec, store, request.run_id)
    if settled is not None:
        return settled
    outcome = Outcome()
    try:
        if Path(request.log_path).exists():
            outcome.files["log.txt"] = store.put_file(request.run_id, "log.txt", Path(request.log_path))
        return commit_manifest(spec, request, store, status, started=started, error=error.to_dict(), outcome=outcome)
    except RunExists:  # it committed since the read above (a workload finishing as its platform ended it)
        return store.manifest(request.run_id)


def settle_staged(spec: ServiceSpec, store: ArtifactStore, run_id: str) -> Manifest | None:
    """Finish the commit of a run that died between staging its manifest and committing it.

    Its rows carry its run id: if the warehouse holds them all, the warehouse committed and so does the run;
    if not, it never published, and the staged manifest goes.
    """
    staged = store.staged(run_id)
    if staged is None:
        return None
    from batchcast.warehouses import open_warehouse

    table = staged.outputs.get("table")
    with open_warehouse(spec.warehouse_url) as warehouse:
        landed = warehouse.count(table, run_id=run_id) if table and warehouse.columns(table) is not None else 0
    if landed == staged.rows.get("written"):
        return store.commit_staged(run_id)
    store.unstage(run_id)
    return None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _image() -> dict[str, str] | None:
    """The image this process runs in, as its Dockerfile and its executor declared it."""
    ref = os.environ.get("BATCHCAST_IMAGE")
    if not ref:
        return None
    return {"ref": ref, "digest": os.environ.get("BATCHCAST_IMAGE_DIGEST", ""),
            "id": os.environ.get("BATCHCAST_IMAGE_ID", "")}
