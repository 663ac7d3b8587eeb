"""The tables of ``batchcast.toml`` that batchcast itself reads.

A backend's own ``[actions.X.<name>]`` table (a Kubernetes Job, a VM, an
Airflow DAG) is declared by its module and listed in the registry;
:mod:`batchcast.spec.service` adds it to :class:`ActionSpec` when a spec is loaded.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchcast import registry
from batchcast.data.schema import Schema
from batchcast.errors import SchemaError
from batchcast.scheduling import periods
from batchcast.spec.base import Section, fail, inside, table_name
from batchcast.spec.waiting import WaitSection

KINDS = ("training", "application", "evaluation")
# models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH (MLflow's ids are 32 hex digits), or a folder.
_NAME = r"[A-Za-z0-9][\w.-]{0,255}"
_PATH = r"[\w.-]+(/[\w.-]+)*"
MLFLOW_URI = rf"models:/{_NAME}(@[A-Za-z_][\w-]{{0,254}}|/\d{{1,9}})|runs:/[0-9a-f]{{32}}/{_PATH}|/?{_PATH}"


class ServiceSection(Section):
    name: str = Field(description="The service's name; the first level of its artifact paths.")
    version: str = Field(description="The service's version; the second level of its artifact paths.")

    @field_validator("name", "version", mode="before")
    @classmethod
    def _slug(cls, value: Any) -> str:
        # A number is a name (version = 2), a boolean is a slip (version = true became "True").
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            value = str(value)
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
            shown = str(value).lower() if isinstance(value, bool) else value  # as the toml wrote it
            raise fail(f"{shown!r} is not a valid name",  # repr: a newline in the value stays on the line
                        "use letters, digits, '.', '_' and '-', e.g. churn or 1.2")
        return value


class ModelSection(Section):
    path: str = Field(".", description="The model repository, relative to batchcast.toml.")
    requirements: str | None = Field(
        None, description="Requirements file inside the model repository; default requirements.txt if present.")
    command: str | None = Field(None, description="Command contract: the command to run, with {action} and {config}.")
    entrypoint: str | None = Field(None, description="Python contract: 'module:Class' with fit and predict.")
    mlflow: str | None = Field(
        None, description="An MLflow model, applied as a pyfunc in an environment built from its own requirements: a "
        "folder (relative to the model repository), runs:/RUN_ID/PATH, models:/NAME@ALIAS or models:/NAME/VERSION. "
        "'batchcast run training' imports it; every application resolves it again first.")
    save_mlflow: bool = Field(False, description="Python contract: training also saves the model in MLflow's format "
                                                 "(output/mlflow), for mlflow models serve and the registry.")
    features: list[str] | None = Field(
        None, description="Python contract: feature columns; default all but label and ids.")
    ids: list[str] = Field(default_factory=list, description="Id columns, never used as features; batchcast "
                                                             "serve logs them with online predictions.")
    label: str | None = Field(None, description="Python contract: the label column for training and evaluation.")
    holdout: float = Field(0.2, ge=0.0, lt=1.0,
                           description="Python contract: fraction of training rows held out for metrics.")
    input_format: Literal["pandas", "numpy", "arrow"] = Field(
        "pandas", description="Python contract: what fit and predict receive.")
    output_dir: str = Field("output", description="Command contract: where the model writes (OUTPUT_DIR).")
    model_dir: str = Field("output",
                           description="Command contract: where a trained run's files are placed (MODEL_DIR).")
    python: str | None = Field(
        None, description="Interpreter for the isolated environment: a version (3.12) or a path; default batchcast's.")
    overrides: list[str] = Field(
        default_factory=list, description="Requirement specifiers that replace the requirements' own for a package, "
                                          "without editing them (uv's overrides), e.g. ['pandas>=2.2'].")

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        from packaging.requirements import InvalidRequirement, Requirement

        for item in value:
            try:
                Requirement(item)
            except InvalidRequirement:
                raise fail(f"'{item}' is not a requirement specifier", "write e.g. \"pandas>=2.2\"") from None
        return [item.strip() for item in value]

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:[\w.]+", value):
            raise fail(f"'{value}' is not 'module:Class'", "write it as e.g. prediction.model:Model")
        return value

    @field_validator("mlflow")
    @classmethod
    def _mlflow(cls, value: str | None) -> str | None:
        if value is None or re.fullmatch(MLFLOW_URI, value):
            return value
        raise fail(f"'{value}' is not an MLflow model's URI or folder",
                   "write models:/churn@champion, models:/churn/3, runs:/RUN_ID/model or a folder such as mlruns/model")

    @model_validator(mode="after")
    def _one_contract(self) -> ModelSection:
        given = [key for key in ("command", "entrypoint", "mlflow") if getattr(self, key)]
        if len(given) > 1:
            raise fail(f"both '{given[0]}' and '{given[1]}' are set",
                        "keep 'command' for the command contract, 'entrypoint' for a class with fit and predict, "
                        "or 'mlflow' for an MLflow model")
        if self.save_mlflow and (not self.entrypoint or self.input_format != "pandas"):
            raise fail("save_mlflow needs an entrypoint and input_format = \"pandas\": batchcast saves a model it "
                       "trains, and MLflow's pyfunc hands it a DataFrame", "remove save_mlflow, or set both")
        return self

    @property
    def contract(self) -> Literal["command", "python"]:
        """python: batchcast reads, scores and writes (an entrypoint's class, or an MLflow model)."""
        return "python" if self.entrypoint or self.mlflow else "command"


class StorageSection(Section):
    url: str = Field(".batchcast/artifacts", description="Artifact store: a folder or an fsspec URL.")

    @field_validator("url")
    @classmethod
    def _durable(cls, value: str) -> str:
        if value.startswith("memory://"):  # the store is the system of record: it must outlive the process
            raise fail(f"'{value}' is fsspec's in-memory filesystem: every run would vanish when its process ends",
                       "use a folder, s3://bucket/path or gs://bucket/path")
        return value


class WarehouseSection(Section):
    url: str = Field("duckdb:///.batchcast/warehouse.duckdb", description="Warehouse URL.")


class InputSpec(Section):
    query: str | None = Field(None, description="SQL on the warehouse, templated with {{ ds }}.")
    path: str | None = Field(None, description="Parquet or CSV files (globs, fsspec URLs), templated with {{ ds }}.")
    format: Literal["parquet", "csv"] | None = Field(None, description="File format; default from the extension.")

    @model_validator(mode="after")
    def _one_source(self) -> InputSpec:
        if bool(self.query) == bool(self.path):
            raise fail("set exactly one of 'query' and 'path'",
                        "use query = \"SELECT ...\" or path = \"data/*.parquet\"")
        return self


class OutputSpec(Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    table: str = Field(description="Warehouse table receiving the predictions, optionally schema.table.")
    schema_: Schema = Field(alias="schema", description="Declared columns, e.g. 'player_id:STRING,label:BOOL'.")
    file: str | None = Field(None, description="Command contract: the predictions file in the output folder.")
    allow_empty: bool = Field(False, description="Publish a run with no predictions (it empties its date); "
                                                 "by default such a run fails and the date keeps its rows.")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        return table_name(value)

    @field_validator("file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return inside(value, "the model's output folder", "predictions.csv")

    @field_validator("schema_", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Schema:
        try:
            return value if isinstance(value, Schema) else Schema.parse(value)
        except SchemaError as exc:
            raise fail(exc.message, exc.fix or "") from None


class PromoteSection(Section):
    """When a succeeded training run becomes the alias's target: only when it is better than the current one."""

    alias: str = Field("champion", description="The alias the gate moves.")
    metric: str = Field(description="A key of the run's metrics (metrics.json for the command contract).")
    mode: Literal["max", "min"] = Field("max", description="max: higher is better; min: lower is better.")
    at_least: float | None = Field(None, description="The worst value accepted at all: a floor for max, a "
                                                     "ceiling for min.")
    min_improvement: float = Field(0.0, ge=0, description="How much better than the current target it must be.")
    compare_on: str | None = Field(None, description="Python contract: an evaluation action whose input, for the "
                                   "run's date, scores candidate and champion on the same rows.")


class ChecksSection(Section):
    """An application's input checked against the training profile; see the README's "Input checks"."""

    on_breach: Literal["warn", "fail"] = Field(
        "warn", description="warn: publish, record and alert; fail: publish nothing, record and alert.")
    max_psi: float = Field(0.2, ge=0, description="Population stability index of a feature over its training bins.")
    max_null_increase: float = Field(0.1, ge=0, description="Rise of a feature's null fraction over training's.")
    max_out_of_range: float = Field(0.05, ge=0, le=1, description="Fraction of a feature's values outside the "
                                    "training min..max.")
    max_prediction_psi: float = Field(0.2, ge=0, description="PSI of the predictions over training's.")


class ActionSpec(Section):
    kind: Literal["training", "application", "evaluation"] | None = Field(
        None, description="What the action does; default its name.")
    config: str | None = Field(None, description="The action's config file, relative to the model repository.")
    schedule: str | None = Field(None, description="Cron expression. Ticking at most once a day, each tick's day is "
                                 "a logical date; ticking more often (hourly), each tick starts a period of its own.")
    start_date: dt.date | None = Field(
        None, description="First logical date scheduled; default the first day a scheduler saw the action.")
    timezone: str = Field("UTC", description="Time zone of the cron schedule and of its logical dates.")
    fresh_within: str | None = Field(
        None, description="How late a period's success may be after its tick (30m, 2h, 1d): later, the scheduler "
        "alerts once and `batchcast check --fresh` exits 1.")
    catchup: Literal["all", "latest", "none"] = Field(
        "latest", description="Missed dates: all (oldest first), latest (the rest skipped), none (all skipped).")
    max_active_runs: int = Field(1, ge=1, description="Runs of this action the scheduler runs at once.")
    retries: int = Field(2, ge=0, description="Retries of a run that failed on a transient error.")
    retry_delay: float = Field(60, gt=0, description="Seconds before the first retry; doubled for each next one.")
    wait_for: WaitSection | None = Field(
        None, description="Input that must exist before a scheduled run starts: path or query, poll, timeout.")
    wait_for_training: float = Field(
        86400, ge=0, description="Seconds an application waits for a trained model before failing.")
    executor: str = Field("local", description="Where the action runs: one of the registry's executors "
                          f"({', '.join(registry.EXECUTORS)}).")
    model: str | None = Field(None, description="Alias or run id to apply; default champion, else latest training.")
    input: InputSpec | None = Field(None, description="Python contract: where the data comes from.")
    output: OutputSpec | None = Field(None, description="Where predictions are delivered.")
    timeout: float = Field(3600, gt=0, description="Seconds before the run's process tree is killed.")
    batch_size: int = Field(65536, gt=0, description="Rows per Arrow batch when streaming.")
    threads: int | None = Field(
        None, ge=1, description="Application (Python contract): batches scored at once, each on a thread; a model "
        "that releases the GIL (numpy, scikit-learn, XGBoost, LightGBM) then uses that many cores. Default: the "
        "cores the process may use; 1 scores in the reading thread.")
    checks: ChecksSection | None = Field(
        None, description="Application (Python contract): compare the input with the training profile.")
    promote: PromoteSection | None = Field(
        None, description="Training: move an alias to a succeeded run only when the gate passes.")

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        if value not in registry.EXECUTORS:
            raise fail(f"unknown executor '{value}'", f"use one of {', '.join(registry.EXECUTORS)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(f"unknown time zone '{value}'", "use an IANA name, e.g. UTC or Europe/Paris") from None
        return value

    @field_validator("fresh_within")
    @classmethod
    def _fresh_within(cls, value: str | None) -> str | None:
        from batchcast.scheduling.freshness import duration

        try:
            if value is not None:
                duration(value)
            return value
        except ValueError:
            raise fail(f"'{value}' is not a duration", "write e.g. 30m, 2h, 1d or 1h30m") from None

    @model_validator(mode="after")
    def _fresh_needs_schedule(self) -> ActionSpec:
        if self.fresh_within and not self.schedule:
            raise fail("fresh_within is set without a schedule: freshness is judged against the schedule's ticks",
                       "add schedule = \"0 6 * * *\", or remove fresh_within")
        return self

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and not croniter.is_valid(value):
            raise fail(f"'{value}' is not a cron expression", "use five fields, e.g. '0 6 * * *'")
        return value

    def period(self, text: str | periods.Period | None = None, where: str = "--date") -> periods.Period:
        """The period ``text`` names: a day, or a tick of a sub-daily schedule (:mod:`batchcast.scheduling.periods`)."""
        return periods.parse(text, self.schedule, self.timezone, where=where)

    def interval(self, period: periods.Period) -> tuple[dt.datetime, dt.datetime]:
        """(start, end) in UTC of the interval ``period`` covers."""
        return periods.interval(period, self.schedule, self.timezone)
