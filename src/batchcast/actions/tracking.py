"""batchcast's runs in an MLflow tracking server (``[mlflow] tracking_uri``), sent after they commit.

Every training and evaluation run becomes an MLflow run in the experiment
named after the service: the action config's params, the run's metrics, tags
naming the batchcast run, its period, the model it applied and the code
version, and the manifest as an artifact. A succeeded training is registered
as a version of the registered model (its MLflow-format copy, when it saved
one), and every move of a batchcast alias (the gate, promote, rollback) is
mirrored to the registered model's alias of the same name.

A server that is down never fails a run: what could not be sent waits in
``.batchcast/mlflow-pending/`` and goes at the next run, oldest first. The
first failure is logged and alerted once; the next ones only wait, until a
send succeeds.
"""

from __future__ import annotations

import fcntl
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from batchcast import alerts
from batchcast.actions.context import load_config, log, params
from batchcast.errors import BatchcastError
from batchcast.model import pyfunc
from batchcast.redaction import first_line
from batchcast.runs.manifest import Manifest
from batchcast.scheduling import periods

LOGGED = ("training", "evaluation")
TAG = "batchcast.run_id"


def after_run(service, manifest: Manifest) -> None:
    """Send ``manifest``'s run (a training or evaluation, not an import) and whatever still waits."""
    spec = service.spec
    if not spec.mlflow.tracking_uri:
        return
    if manifest.kind in LOGGED and not spec.imports(spec.action(manifest.action)):
        _queue(service, {"run": manifest.run_id})
    _flush(service)


def after_alias(service, alias: str) -> None:
    """Mirror ``alias``'s current target to the registered model's alias, and send whatever still waits."""
    if not service.spec.mlflow.tracking_uri:
        return
    _queue(service, {"alias": alias})
    _flush(service)


def _pending(service) -> Path:
    return service.spec.root / ".batchcast" / "mlflow-pending"


def _queue(service, item: dict[str, str]) -> None:
    folder = _pending(service)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{time.time_ns()}.partial"
    partial.write_text(json.dumps(item))
    partial.rename(partial.with_suffix(".json"))  # whole or absent, for a flush that reads it meanwhile


def _flush(service) -> None:
    """Send the waiting items in order; stop at the first the server does not take, to try it next time."""
    folder = _pending(service)
    down = folder / "down"
    uri = service.spec.mlflow.tracking_uri
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs ending at once must not send one item twice
        _send_waiting(service, folder, down, uri)


def _send_waiting(service, folder: Path, down: Path, uri: str) -> None:
    for path in sorted(folder.glob("*.json")):
        item = json.loads(path.read_text())
        try:
            client = pyfunc.client(uri, "[mlflow] tracking_uri")
            _send_run(client, service, item["run"]) if "run" in item else _send_alias(client, service, item["alias"])
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a run, whatever the client raises
            if not down.exists():  # said once per outage
                down.write_text(first_line(exc))
                waiting = len(list(folder.glob("*.json")))
                message = f"could not log to MLflow at {uri}: {first_line(exc)}; {waiting} item(s) wait in {folder}"
                log.warning("%s; they are sent at the next run", message)
                alerts.send(service.spec.alerts, alerts.Alert(
                    "tracking", service.name, service.version, "mlflow", time.strftime("%Y-%m-%d"), "not logged",
                    item.get("run"), message, "start the tracking server; the next run sends what waits"))
            return
        path.unlink()
    down.unlink(missing_ok=True)


def _experiment(client, spec) -> str:
    name = spec.mlflow.experiment or spec.service.name
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _send_run(client, service, run_id: str) -> None:
    manifest = service.store.manifest(run_id)
    experiment = _experiment(client, service.spec)
    existing = client.search_runs([experiment], f"tags.`{TAG}` = '{run_id}'", max_results=1)
    if existing:  # sent before, and its item not removed (the process stopped between the two)
        return
    run = client.create_run(experiment, start_time=_ms(manifest.started_at), tags=_tags(service, manifest),
                            run_name=f"{manifest.action} {periods.key(manifest.logical_date)}")
    mlflow_run = run.info.run_id
    from mlflow.entities import Metric, Param

    now = _ms(manifest.ended_at)
    metrics = [Metric(k, float(v), now, 0) for k, v in manifest.metrics.items() if v is not None and math.isfinite(v)]
    client.log_batch(mlflow_run, metrics=metrics, params=[Param(k, v) for k, v in _params(service, manifest)])
    with tempfile.TemporaryDirectory(prefix="batchcast-mlflow-") as scratch:
        folder = Path(scratch)
        (folder / "manifest.json").write_text(manifest.model_dump_json(indent=2))
        client.log_artifact(mlflow_run, str(folder / "manifest.json"))
        registered = manifest.kind == "training" and manifest.succeeded
        if registered:
            service.store.fetch_run(manifest, folder / "output")  # every sha256 checked
            saved = folder / "output" / pyfunc.FOLDER
            client.log_artifacts(mlflow_run, str(saved if saved.is_dir() else folder / "output"), "model")
    client.set_terminated(mlflow_run, "FINISHED" if manifest.succeeded else "FAILED", end_time=now)
    if registered:
        _register(client, service, manifest, f"{run.info.artifact_uri}/model", mlflow_run)
    log.info("run %s logged to MLflow as %s", run_id, mlflow_run)


def _register(client, service, manifest: Manifest, source: str, mlflow_run: str) -> None:
    name = _model_name(service)
    if client.search_registered_models(f"name = '{name}'", max_results=1) == []:
        client.create_registered_model(name, tags={"batchcast.service": f"{service.name}/{service.version}"})
    found = client.create_model_version(name, source, run_id=mlflow_run, tags={TAG: manifest.run_id})
    for alias, target in service.store.aliases(service.name, service.version).items():
        if target == manifest.run_id:  # the gate moved it before this run was sent
            client.set_registered_model_alias(name, alias, found.version)
    log.info("registered %s as version %s of %s", manifest.run_id, found.version, name)


def _send_alias(client, service, alias: str) -> None:
    name = _model_name(service)
    target = service.store.alias(service.name, service.version, alias)  # now, not when it was queued
    versions = client.search_model_versions(f"name = '{name}' and tags.`{TAG}` = '{target}'") if target else []
    if not versions:
        log.info("alias %s: %s is not a registered version of %s; the registry's alias is left as it is",
                 alias, target, name)
        return
    client.set_registered_model_alias(name, alias, versions[0].version)
    log.info("MLflow alias %s of %s now names version %s (%s)", alias, name, versions[0].version, target)


def _model_name(service) -> str:
    return service.spec.mlflow.registered_model or service.name


def _tags(service, manifest: Manifest) -> dict[str, str]:
    tags = {TAG: manifest.run_id, "batchcast.action": manifest.action, "batchcast.status": manifest.status.value,
            "batchcast.logical_date": periods.key(manifest.logical_date),
            "batchcast.model_run": manifest.model_run or "",
            "batchcast.version": _version()}
    commit = _commit(service.spec.model_path)
    if commit:
        tags["mlflow.source.git.commit"] = commit  # MLflow's own name for the code version
    return tags


def _params(service, manifest: Manifest) -> list[tuple[str, str]]:
    found = manifest.inputs.get("params")  # recorded by the run; a run from before that reads the file
    action = service.spec.action(manifest.action)
    try:
        if found is None:
            found = params(load_config(service.spec.model_path / action.config), action.config) if action.config else {}
    except BatchcastError:  # the run itself said what is wrong with the file
        found = {}
    return sorted((key, str(value)[:6000]) for key, value in flat(found).items())


def flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested table's leaves by dotted key: ``{"a": {"b": 1}}`` is ``{"a.b": 1}``."""
    found: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            found.update(flat(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _commit(repo: Path) -> str | None:
    try:
        found = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                               timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() if found.returncode == 0 else None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("batchcast")
    except PackageNotFoundError:
        return ""


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)
