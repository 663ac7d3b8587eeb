"""What every action gets: the spec, the request, the store, a work folder, the warehouse when asked."""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchcast.errors import SpecError
from batchcast.redaction import first_line
from batchcast.runs.manifest import RunRequest
from batchcast.runs.store import ArtifactStore
from batchcast.scheduling import periods
from batchcast.spec import ActionSpec, ServiceSpec

if TYPE_CHECKING:
    from batchcast.data.schema import Schema
    from batchcast.model.loading import Loaded
    from batchcast.runs.commit import Outcome
    from batchcast.runs.manifest import Manifest

log = logging.getLogger("batchcast")


@dataclass
class PythonEnv:
    """Where a command-contract model finds ``python``: batchcast's own, or a virtualenv's."""

    bin_dir: Path
    venv: Path | None = None


@dataclass
class RunContext:
    spec: ServiceSpec
    request: RunRequest
    store: ArtifactStore
    workdir: Path
    python_env: PythonEnv | None = None
    _warehouse: Any = None
    stage: Callable[[], Manifest] | None = None  # execute's: stage the run's manifest (inside the publish)
    staged: Manifest | None = None

    @property
    def action(self) -> ActionSpec:
        return self.spec.action(self.request.action)

    @property
    def run_id(self) -> str:
        return self.request.run_id

    @property
    def interval(self) -> tuple:
        """(start, end) in UTC of the period this run is for: what templates and the command contract get."""
        return self.action.interval(self.request.logical_date)

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

    def publish(self, outcome: Outcome, schema: Schema, batches: Iterable, source: str) -> int:
        """Deliver ``batches`` into ``[actions.X.output]`` for this run's date, the run's commit staged inside.

        The manifest is staged (every byte of it in the store) after the last row is written and before the
        warehouse commits: a store that is full or read-only fails the run with nothing published.
        """
        from batchcast.data.distribution import Distribution  # here: NumPy and Arrow, for runs that publish

        out = self.action.output
        predicted = Distribution(schema.names[-1])

        def prepare(rows: int) -> None:
            outcome.rows["written"] = rows
            outcome.outputs["table"] = out.table
            if (counted := predicted.result()) is not None:
                outcome.outputs["predicted"] = counted  # for the dashboard's plot by period
            # The last line of the stored log: it is uploaded now, with the staged manifest.
            log.info("publishing %d rows of %s into %s", rows, periods.key(self.request.logical_date), out.table)
            if self.stage is not None:
                self.staged = self.stage()

        rows = self.warehouse.publish(out.table, schema, predicted.watch(batches),
                                      logical_date=self.request.logical_date, run_id=self.run_id,
                                      model_run=self.request.model_run, source=source,
                                      allow_empty=out.allow_empty, prepare=prepare)
        log.info("published %d rows of %s into %s", rows, periods.key(self.request.logical_date), out.table)
        return rows

    def config(self) -> dict[str, Any]:
        path = self.action.config
        return load_config(self.spec.model_path / path) if path else {}

    def load_model(self, outcome: Outcome | None = None) -> Loaded:
        """The applied training run, fetched into ``model/`` by the one verified loader; an imported MLflow
        model's registry version is recorded in ``outcome``."""
        from batchcast.model.loading import load_run  # here: it imports NumPy, which the command contract never needs

        loaded = load_run(self.store, self.request.applied or self.request.model_run, self.workdir / "model", self.spec)
        if outcome is not None and "mlflow" in loaded.meta:
            outcome.inputs["model"] = loaded.meta["mlflow"]
        log.info("model %s fetched and verified", loaded.manifest.run_id)
        return loaded


def load_config(path: Path) -> dict:
    """An action's config file (JSON, TOML or YAML) as a dict."""
    try:
        text = path.read_text()
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml  # optional: only users of YAML configs need it

            found = yaml.safe_load(text) or {}
        else:
            found = json.loads(text)
    except FileNotFoundError:
        raise SpecError(f"{path}: config file not found", "create it or correct [actions.*] config") from None
    except ImportError:
        raise SpecError(f"{path}: YAML configs need PyYAML", "pip install pyyaml, or use JSON") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot parse: {exc}", "correct the file's syntax") from None
    except yaml_error() as exc:
        raise SpecError(f"{path}: cannot parse: {first_line(exc)}", "correct the file's syntax") from None
    if not isinstance(found, dict):
        raise SpecError(f"{path}: holds a {type(found).__name__}, not a table of settings",
                        "write an object, e.g. {\"params\": {\"C\": 0.5}}")
    return found


def params(config: dict, path: str | None) -> dict:
    """The ``params`` table of an action's config: the model's constructor arguments."""
    found = config.get("params", {})
    if not isinstance(found, dict):
        raise SpecError(f"{path}: params is a {type(found).__name__}, not a table of the model's arguments",
                        "write params as an object, e.g. {\"params\": {\"C\": 0.5}}")
    return found


def yaml_error() -> type[Exception] | tuple:
    """PyYAML's error class, or nothing to catch when it is not installed."""
    try:
        import yaml
    except ImportError:
        return ()
    return yaml.YAMLError
