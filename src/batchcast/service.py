"""A service: the library's front door, which the CLI is a thin layer over."""

from __future__ import annotations

import datetime as dt
import functools
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchcast import registry
from batchcast.actions import tracking
from batchcast.errors import BatchcastError, RunNotFound, SpecError, StoreError
from batchcast.executors import get_executor
from batchcast.isolation.scratch import scratch_dir
from batchcast.redaction import first_line
from batchcast.runs.manifest import Manifest, RunRequest, RunStatus, new_run_ts
from batchcast.runs.promotion import CHAMPION
from batchcast.runs.store import ArtifactStore
from batchcast.scheduling import periods
from batchcast.spec import ServiceSpec, load_spec, merged

APPLIES_MODEL = ("application", "evaluation")
ENDED = tuple(status.value for status in RunStatus)  # a ledger state that a manifest also records


class Service:
    """One ``batchcast.toml``: run its actions, list its runs, move its aliases."""

    def __init__(self, spec_path: str | Path | None = None, overrides: dict[str, Any] | None = None):
        self.overrides = overrides or {}
        self.spec: ServiceSpec = load_spec(spec_path, self.overrides)
        self.store = ArtifactStore(self.spec.storage_url)

    @property
    def name(self) -> str:
        return self.spec.service.name

    @property
    def version(self) -> str:
        return self.spec.service.version

    def run(self, action: str, date: str | dt.date | None = None, *, executor: str | None = None,
            model: str | None = None, run_ts: str | None = None) -> Manifest:
        """Run ``action`` for the period ``date`` names and return its committed manifest.

        A daily action takes a day (default today); a sub-daily one a tick of its schedule (default the
        newest that has passed): :meth:`ActionSpec.period`.

        ``executor`` and ``model`` override the action's spec for this run;
        ``run_ts`` fixes its id in advance (the scheduler records it first).
        Raises before any run exists if the spec is invalid or no model can
        be applied; every later failure is in the returned manifest.
        """
        if executor is not None and executor not in registry.EXECUTORS:  # the option's mistake, not the file's
            raise SpecError(f"--executor {executor}: unknown executor", f"use one of {', '.join(registry.EXECUTORS)}")
        if run_ts is not None and not re.fullmatch(r"\d{8}T\d{12}Z", run_ts):
            raise SpecError(f"run timestamp '{run_ts}' is not YYYYMMDDTHHMMSSffffffZ", "leave it to batchcast")
        overrides = merged(self.overrides, {"actions": {action: {"executor": executor, "model": model}}})
        spec = self._for_run(action, executor=executor, model=model)
        spec.check_files()
        chosen = spec.action(action)
        period = chosen.period(date)
        if spec.model.mlflow and chosen.kind in APPLIES_MODEL and chosen.model is None:
            from batchcast.actions.importing import follow

            follow(self, periods.day(period))  # the import is a training run: for the period's day
        applied = self.model_for(chosen.model) if chosen.kind in APPLIES_MODEL else None
        folder = scratch_dir("run")
        try:
            request = RunRequest(name=spec.service.name, version=spec.service.version, action=action,
                                 run_ts=run_ts or new_run_ts(), spec_path=str(spec.file), overrides=overrides,
                                 logical_date=period, executor=chosen.executor,
                                 model_run=applied.run_id if applied else None, applied=applied,
                                 log_path=str(folder / "log.txt"))
            manifest = get_executor(chosen.executor).submit(request, spec)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        tracking.after_run(self, manifest)  # to MLflow, if [mlflow] names a server; it never fails the run
        return manifest

    def _for_run(self, action: str, **changes: str | None) -> ServiceSpec:
        """The parsed spec with one run's ``--executor`` and ``--model`` in ``action``, not parsed again.

        The same spec as the request's ``overrides`` give a child process that parses it: the executor
        was checked against the registry above, and no other table depends on either value.
        """
        changes = {key: value for key, value in changes.items() if value is not None}
        if not changes:
            return self.spec
        chosen = self.spec.action(action).model_copy(update=changes)
        return self.spec.model_copy(update={"actions": {**self.spec.actions, action: chosen}})

    def model_for(self, ref: str | None = None) -> Manifest:
        """The training run to apply: ``ref``, else the champion, else the latest successful training."""
        ref = ref or (CHAMPION if self.store.alias(self.name, self.version, CHAMPION) else "latest")
        found = self.store.verify(self.store.resolve(self.name, self.version, ref))
        if found.kind != "training" or not found.succeeded:
            raise RunNotFound(f"run {found.run_id} is a {found.status.value} {found.kind} run, not a trained model",
                              "apply a successful training run")
        return found

    def runs(self, action: str | None = None) -> list[Manifest]:
        """Every committed run, oldest first."""
        return self.store.list_runs(self.name, self.version, action)

    @property
    def ledger_path(self) -> Path:
        return self.spec.root / ".batchcast" / "ledger.db"

    @functools.cached_property
    def ledger(self):
        """The scheduler's ledger: one object, so its schema is checked once."""
        from batchcast.scheduling.ledger import Ledger

        return Ledger(self.ledger_path)

    def history(self, action: str | None = None) -> list[dict[str, Any]]:
        """Committed runs' summaries, plus the ledger's periods that are not (or not yet again) a committed run."""
        from batchcast.scheduling.listing import merged

        rows = [m.summary() for m in self.runs(action)]
        if not self.ledger_path.exists():  # reading must not create local state
            return rows
        return merged(rows, self.ledger.rows(self.name, self.version, action), ENDED)

    def schedule(self, count: int = 3, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """The next ``count`` runs of each scheduled action, with their logical dates."""
        from batchcast.scheduling.plan import period_of, upcoming

        now = now or dt.datetime.now(dt.UTC)
        paused = self.ledger.paused(self.name, self.version) if self.ledger_path.exists() else set()
        return [{"action": name, "schedule": action.schedule, "timezone": action.timezone, "at": tick.isoformat(),
                 "logical_date": periods.key(period_of(action.schedule, tick)), "paused": name in paused}
                for name, action in self.spec.actions.items() if action.schedule
                for tick in upcoming(action.schedule, now, count, action.timezone)]

    def pause(self, action: str) -> None:
        """Stop the scheduler from queueing or starting ``action``; runs in flight finish."""
        self.spec.action(action)
        self.ledger.pause(self.name, self.version, action)

    def resume(self, action: str) -> None:
        """Undo :meth:`pause`; the dates missed meanwhile follow the action's catchup policy."""
        self.spec.action(action)
        self.ledger.resume(self.name, self.version, action)

    def backfill(self, action: str, start: str | dt.date, end: str | dt.date, *, now: bool = False,
                 progress: Callable[[int, int, Manifest | None], None] | None = None) -> list:
        """Queue every logical date of ``action``'s schedule from ``start`` to ``end`` in the ledger.

        With ``now``, run them here, oldest first, and return their manifests;
        publishing replaces each date, so a second backfill changes no row counts.
        ``progress(done, total, manifest)`` hears of the queueing (``manifest`` None) and of each run as it ends.
        """
        from batchcast.scheduling.plan import ticks

        chosen = self.spec.action(action)
        if not chosen.schedule:
            raise SpecError(f"{self.spec.file.name} [actions.{action}] has no schedule to backfill",
                            f"add schedule = \"0 6 * * *\" to [actions.{action}], or use 'batchcast run --date'")
        days = ticks(chosen.schedule, start, end, chosen.timezone)
        ledger = self.ledger
        ledger.queue(self.name, self.version, action, days)
        if progress is not None:
            progress(0, len(days), None)
        if not now:
            return []
        manifests = []
        for day in days:
            manifests.append(manifest := self.run_in_ledger(action, day))
            if progress is not None:
                progress(len(manifests), len(days), manifest)
        return manifests

    def run_in_ledger(self, action: str, day) -> Manifest:
        """Run ``action`` for the period ``day`` here, the ledger saying so (running, then its outcome)."""
        (ledger := self.ledger).add(self.name, self.version, action, [day], "queued")
        ledger.set(self.name, self.version, action, day, "running", attempt=True)
        try:
            manifest = self.run(action, day)
        except Exception as exc:  # refused before any run existed: the period must not stay "running"
            said = exc.message if isinstance(exc, BatchcastError) else first_line(exc)
            ledger.set(self.name, self.version, action, day, "failed", error=said)
            raise
        ledger.set(self.name, self.version, action, day, manifest.status.value, run_id=manifest.run_id,
                   error=(manifest.error or {}).get("message"))
        return manifest

    def check(self, action: str, date: str | dt.date) -> Manifest:
        """The newest committed run of ``action`` for ``date``; RunNotFound unless it succeeded.

        What an orchestrator asks after a task: a process or pod that exited 0
        proves nothing until its manifest says so.
        """
        day = self.spec.action(action).period(date)
        found = [m for m in self.runs(action) if m.logical_date == day]
        if not found:
            raise RunNotFound(f"no committed {action} run of {self.name}/{self.version} for {day}",
                              "the run did not commit: read the task's log, then run it again")
        if not found[-1].succeeded:
            raise RunNotFound(f"the newest {action} run for {day}, {found[-1].run_id}, {found[-1].status.value}: "
                              f"{(found[-1].error or {}).get('message')}", "fix the cause, then run it again")
        return found[-1]

    def show(self, ref: str) -> Manifest:
        """One run, by id, ``action/run_ts``, ``run_ts`` or alias."""
        return self.store.resolve(self.name, self.version, ref)

    def models(self) -> list[dict[str, Any]]:
        """Successful training runs, newest first, with the aliases that point at each."""
        aliases = self.store.aliases(self.name, self.version)
        return [{"run_id": m.run_id, "logical_date": m.logical_date.isoformat(), "ended_at": m.ended_at.isoformat(),
                 "metrics": m.metrics, "aliases": sorted(a for a, r in aliases.items() if r == m.run_id)}
                for m in reversed(self.runs()) if m.kind == "training" and m.succeeded]

    def newest(self) -> Manifest:
        """The most recent committed run, of any action."""
        runs = self.runs()
        if not runs:
            raise RunNotFound(f"no committed run of {self.name}/{self.version}", "run 'batchcast run training' first")
        return runs[-1]

    def warnings(self) -> list[str]:
        """What would fail later, said now: aliases whose run is not a committed successful training run."""
        trained = {m.run_id for m in self.runs("training") if m.succeeded}
        return [f"alias '{alias}' points to {run}, which is not a successful training run in the store; "
                f"fix: batchcast promote RUN --alias {alias}"
                for alias, run in self.store.aliases(self.name, self.version).items() if run not in trained]

    def promote(self, ref: str, alias: str = CHAMPION, by: str = "batchcast promote") -> Manifest:
        """Point ``alias`` at a successful training run; ``by`` says who, in the alias's history."""
        manifest = self.show(ref)
        if manifest.kind != "training":
            raise StoreError(f"run {manifest.run_id} is a {manifest.kind} run", "promote a training run")
        self.store.set_alias(self.name, self.version, alias, manifest.run_id, by=by)
        tracking.after_alias(self, alias)
        return manifest

    def rollback(self, alias: str = CHAMPION, by: str = "batchcast rollback") -> Manifest:
        """Point ``alias`` back at its previous target, as its history records it."""
        history = self.store.alias_history(self.name, self.version, alias)
        previous = history[-1]["previous"] if history else None
        if previous is None:
            raise StoreError(f"alias '{alias}' of {self.name}/{self.version} has no previous target to go back to",
                             f"point it at a run: batchcast promote RUN --alias {alias}")
        self.store.set_alias(self.name, self.version, alias, previous, by=f"{by} from {history[-1]['run_id']}")
        tracking.after_alias(self, alias)
        return self.store.manifest(previous)

    def alias_history(self) -> dict[str, list[dict]]:
        """Every move of every alias, oldest first: run, previous, when, and what moved it."""
        return {alias: self.store.alias_history(self.name, self.version, alias)
                for alias in sorted(self.store.aliases(self.name, self.version))}

    def log(self, manifest: Manifest) -> str:
        """A committed run's log, its sha256 checked against the manifest; IntegrityError if it differs."""
        return self.store.read_verified(manifest, "log.txt").decode(errors="replace")

    def build(self, engine: str | None = None, *, push: bool = False):
        """Build the service's image for the container executors (and push it with ``push``): a ``Built``.

        ``engine`` is podman or docker (default: podman if installed, else docker).
        """
        from batchcast.isolation.images import build, engine_command  # the engine's helpers, only when building

        return build(self.spec, engine_command(engine), push=push)

    def serve(self, host: str = "127.0.0.1", port: int = 8080, ref: str | None = None, poll: float | None = None,
              workers: int | None = None, *, inline: bool = False) -> None:
        """Answer prediction requests over HTTP until stopped: in the model's environment, or here with ``inline``.

        ``ref`` is the run id or alias served (default the champion, else the latest training); without
        ``inline`` this process is replaced by the server. MissingExtra without batchcast[serve].
        """
        start = registry.SURFACES["serve"].load("batchcast serve")
        start(self, host, port, ref, poll, workers, inline=inline)

    def stream(self, ref: str | None = None, host: str = "127.0.0.1", port: int | None = None,
               guarantee: str | None = None, *, inline: bool = False) -> None:
        """Score ``[stream]``'s events until stopped: in the model's environment, or here with ``inline``.

        ``ref`` is the run id or alias used (default the champion, else the latest training); without
        ``inline`` this process is replaced by the consumer. MissingExtra without batchcast[stream].
        """
        start = registry.SURFACES["stream"].load("batchcast stream")
        start(self, ref, host, port, guarantee, inline=inline)

    def preview(self, action: str = "application", limit: int = 10):
        """The newest rows of ``action``'s output table, as an Arrow table."""
        output = self.spec.action(action).output
        if output is None:
            raise SpecError(f"{self.spec.file.name} [actions.{action}] has no output table",
                            "preview an action with [actions.NAME.output]")
        from batchcast.warehouses import open_warehouse

        with open_warehouse(self.spec.warehouse_url) as warehouse:
            return warehouse.preview(output.table, limit)
