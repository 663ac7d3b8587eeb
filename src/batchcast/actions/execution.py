"""One run's body, :func:`execute`: the contract, the upload, the commit.

``execute`` is the same whichever executor calls it (in this process, or in
a child process inside an isolated environment): it runs the contract,
uploads what the run produced, and commits the manifest last, whatever
failed on the way.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import shutil
import traceback
from pathlib import Path
from typing import Any

from batchcast.actions.context import PythonEnv, RunContext, log
from batchcast.errors import BatchcastError, Cancelled, RunExists, RunNotFound, RunTimeout, StoreError
from batchcast.isolation.scratch import scratch_dir
from batchcast.runs import promotion
from batchcast.runs.commit import Outcome, commit_manifest, now, settle_staged
from batchcast.runs.manifest import Manifest, RunRequest, RunStatus
from batchcast.runs.store import ArtifactStore
from batchcast.spec import ServiceSpec, load_spec


def execute(request: RunRequest, python_env: PythonEnv | None = None, runner=None,
            spec: ServiceSpec | None = None) -> Manifest:
    """Run the action and commit its manifest; the manifest says whether it succeeded.

    ``runner`` replaces the action's own ``run(ctx, outcome)``: an executor
    that scores differently (Beam) brings its own, with the same commit.
    ``spec`` is the request's, when this process parsed it already; a child
    process passes none and parses it from the request.
    """
    spec = spec or load_spec(request.spec_path, overrides=request.overrides)
    workdir = scratch_dir(spec.service.name)
    ctx = RunContext(spec, request, ArtifactStore(spec.storage_url), workdir, python_env)
    handler = _log_to(Path(request.log_path))
    started, outcome, error, status = now(), Outcome(), None, RunStatus.SUCCEEDED
    ctx.stage = lambda: _commit(ctx, outcome, started, RunStatus.SUCCEEDED, None, staged=True)
    try:
        log.info("run %s: %s for %s", ctx.run_id, ctx.action.kind, request.logical_date)
        (runner or _runner(spec, ctx.action.kind))(ctx, outcome)
        if ctx.action.kind == "training" and ctx.action.promote:
            from batchcast.actions import gate

            outcome.promotion = gate.judge(ctx, outcome)
    except BaseException as exc:
        status = _status(exc)
        error = _error(Cancelled() if status is RunStatus.CANCELLED else exc)
        cause = exc.__cause__ if isinstance(exc, BatchcastError) else exc
        log.error("run %s %s: %s", ctx.run_id, status.value, error["message"],
                  exc_info=None if status is RunStatus.CANCELLED else cause)
        if status is RunStatus.CANCELLED:
            raise KeyboardInterrupt from exc  # the finally clause still commits, as cancelled
    finally:
        log.removeHandler(handler)
        handler.close()
        if ctx._warehouse is not None:
            ctx.warehouse.close()
        try:
            manifest = _finish(ctx, outcome, started, status, error)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if manifest.succeeded and manifest.promotion:
        promotion.carry_out(spec, ctx.store, manifest)
    return manifest


def _runner(spec: ServiceSpec, kind: str):
    if spec.model.contract == "command":
        from batchcast.actions import command

        return command.run
    # Only the action's own module: training's imports (checks, pyarrow.compute) cost an application 0.1 s.
    return importlib.import_module(f"batchcast.actions.{kind}").run


def _finish(ctx: RunContext, outcome: Outcome, started: dt.datetime, status: RunStatus,
            error: dict | None) -> Manifest:
    """Commit the run: its staged manifest if it published (and the warehouse committed), else a new one.

    A store that refuses the commit (full, read-only, unreachable) fails the run: what the run uploaded is
    deleted, which may free the room a failed manifest needs; if even that cannot be written, the StoreError
    goes to the caller, and nothing of the run is visible anywhere.
    """
    if ctx.staged is not None:
        if status is RunStatus.SUCCEEDED:
            return ctx.store.commit_staged(ctx.run_id)
        # Staged, then it failed or was stopped: before the warehouse committed (no rows, the stage goes), or
        # after it (a Ctrl-C in the last moments: the rows are there, and so must the run be).
        settled = settle_staged(ctx.spec, ctx.store, ctx.run_id)
        if settled is not None:
            return settled
    try:
        return _commit(ctx, outcome, started, status, error)
    except StoreError as exc:
        if isinstance(exc, RunExists | RunNotFound):
            raise
        log.error("run %s: the store refused its commit (%s); deleting what it uploaded", ctx.run_id, exc.message)
        ctx.store.discard(ctx.run_id)
        outcome.files.clear()
        failed = (status, error) if status is not RunStatus.SUCCEEDED else (RunStatus.FAILED, exc.to_dict())
        return _commit(ctx, outcome, started, *failed, with_log=False)


def _commit(ctx: RunContext, outcome: Outcome, started: dt.datetime, status: RunStatus,
            error: dict | None, *, staged: bool = False, with_log: bool = True) -> Manifest:
    log_path = Path(ctx.request.log_path)
    if with_log and log_path.exists():
        outcome.files["log.txt"] = ctx.store.put_file(ctx.run_id, "log.txt", log_path)
    return commit_manifest(ctx.spec, ctx.request, ctx.store, status, started=started, error=error,
                           outcome=outcome, action=ctx.action, staged=staged)


def _status(exc: BaseException) -> RunStatus:
    if isinstance(exc, RunTimeout):
        return RunStatus.TIMED_OUT
    return RunStatus.CANCELLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED


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
