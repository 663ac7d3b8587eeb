"""The service spec: ``batchcast.toml`` loaded, merged and validated.

Precedence, highest first: command-line overrides, environment variables
``BATCHCAST__<SECTION>__<KEY>`` (nested with more ``__``), the file, the
defaults below. Every problem becomes one line that names the file, the table,
the key, the bad value and the fix.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from batchcast.errors import SchemaError, SpecError
from batchcast.schema import Schema

SPEC_FILE = "batchcast.toml"
ENV_PREFIX = "BATCHCAST__"
KINDS = ("training", "application", "evaluation")
EXECUTORS = ("inline", "local", "container", "kubernetes", "vertex", "gce")  # grows as backends are added
DEFAULT_COMMAND = "python -m prediction.main --action {action} --config {config}"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _fail(message: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("batchcast", "{message}", {"message": message, "fix": fix})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ServiceSection(_Section):
    name: str = Field(description="The service's name; the first level of its artifact paths.")
    version: str = Field(description="The service's version; the second level of its artifact paths.")

    @field_validator("name", "version", mode="before")
    @classmethod
    def _slug(cls, value: Any) -> str:
        value = str(value) if isinstance(value, (int, float)) else value
        if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", value):
            raise _fail(f"'{value}' is not a valid name",
                        "use letters, digits, '.', '_' and '-', e.g. churn or 1.2")
        return value


class ModelSection(_Section):
    path: str = Field(".", description="The model repository, relative to batchcast.toml.")
    requirements: str | None = Field(
        None, description="Requirements file inside the model repository; default requirements.txt if present.")
    command: str | None = Field(None, description="Command contract: the command to run, with {action} and {config}.")
    entrypoint: str | None = Field(None, description="Python contract: 'module:Class' with fit and predict.")
    features: list[str] | None = Field(None, description="Python contract: feature columns; default all but label and ids.")
    ids: list[str] = Field(default_factory=list, description="Python contract: id columns, never used as features.")
    label: str | None = Field(None, description="Python contract: the label column for training and evaluation.")
    holdout: float = Field(0.2, ge=0.0, lt=1.0, description="Python contract: fraction of training rows held out for metrics.")
    input_format: Literal["pandas", "numpy", "arrow"] = Field(
        "pandas", description="Python contract: what fit and predict receive.")
    output_dir: str = Field("output", description="Command contract: where the model writes (OUTPUT_DIR).")
    model_dir: str = Field("output", description="Command contract: where a trained run's files are placed (MODEL_DIR).")
    python: str | None = Field(None, description="Interpreter for the isolated environment; default batchcast's own.")

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[\w.]+:[\w.]+$", value):
            raise _fail(f"'{value}' is not 'module:Class'", "write it as e.g. prediction.model:Model")
        return value

    @model_validator(mode="after")
    def _one_contract(self) -> "ModelSection":
        if self.command and self.entrypoint:
            raise _fail("both 'command' and 'entrypoint' are set",
                        "keep 'command' for the command contract or 'entrypoint' for the Python contract")
        return self

    @property
    def contract(self) -> Literal["command", "python"]:
        return "python" if self.entrypoint else "command"


class StorageSection(_Section):
    url: str = Field(".batchcast/artifacts", description="Artifact store: a folder or an fsspec URL.")


class WarehouseSection(_Section):
    url: str = Field("duckdb:///.batchcast/warehouse.duckdb", description="Warehouse URL.")


class InputSpec(_Section):
    query: str | None = Field(None, description="SQL on the warehouse, templated with {{ ds }}.")
    path: str | None = Field(None, description="Parquet or CSV files (globs, fsspec URLs), templated with {{ ds }}.")
    format: Literal["parquet", "csv"] | None = Field(None, description="File format; default from the extension.")

    @model_validator(mode="after")
    def _one_source(self) -> "InputSpec":
        if bool(self.query) == bool(self.path):
            raise _fail("set exactly one of 'query' and 'path'",
                        "use query = \"SELECT ...\" or path = \"data/*.parquet\"")
        return self


class OutputSpec(_Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    table: str = Field(description="Warehouse table receiving the predictions, optionally schema.table.")
    schema_: Schema = Field(alias="schema", description="Declared columns, e.g. 'player_id:STRING,label:BOOL'.")
    file: str | None = Field(None, description="Command contract: the predictions file in the output folder.")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not all(_IDENT.match(part) for part in value.split(".")) or value.count(".") > 1:
            raise _fail(f"'{value}' is not a valid table name",
                        "use letters, digits and underscores, optionally schema.table")
        return value

    @field_validator("schema_", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Schema:
        try:
            return value if isinstance(value, Schema) else Schema.parse(value)
        except SchemaError as exc:
            raise _fail(exc.message, exc.fix or "") from None


# Keys [actions.X.airflow] had before the executors got tables of their own; Airflow's tasks
# now read the same tables as the executors, so a pod or a VM is described once.
MOVED_FROM_AIRFLOW = {"image": "kubernetes", "namespace": "kubernetes", "node_selector": "kubernetes",
                      "resources": "kubernetes", "secrets": "kubernetes",
                      "project": "gce", "zone": "gce", "machine_type": "gce"}


class AirflowSpec(_Section):
    """How ``batchcast airflow render`` turns the action into a DAG (the pod or VM: [actions.X.kubernetes|gce])."""

    batchcast: str | None = Field(None, description="local: batchcast's own executable; default the rendering one.")
    pool: str | None = Field(None, description="The Airflow pool the task runs in.")
    poke_interval: float = Field(60, gt=0, description="gce: seconds between checks of the VM's state.")
    alert_webhook_variable: str | None = Field(
        None, description="An Airflow Variable holding a Slack-compatible webhook URL, posted to on failure.")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data):
        moved = [key for key in data if key in MOVED_FROM_AIRFLOW] if isinstance(data, dict) else []
        if moved:
            where = {MOVED_FROM_AIRFLOW[key] for key in moved}
            raise _fail(f"{', '.join(moved)} moved out of the airflow table",
                        " and ".join(f"put {', '.join(k for k in moved if MOVED_FROM_AIRFLOW[k] == table)} "
                                     f"in the action's [{table}] table ([actions.NAME.{table}])"
                                     for table in sorted(where))
                        + ("; a gce VM runs the image batchcast build tags from [image]" if "image" in moved else ""))
        return data


class KubernetesSpec(_Section):
    """How the kubernetes executor runs the action (a batch/v1 Job per run), and an Airflow DAG's pods."""

    image: str | None = Field(None, description="The image; default the service's {registry}/{project}/{name}:{version}.")
    namespace: str = Field("default", description="The Job's namespace.")
    service_account: str | None = Field(None, description="The pod's service account.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels, e.g. a node pool's.")
    resources: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="{requests = {cpu, memory}, limits = {...}}.")
    secrets: list[str] = Field(default_factory=list, description="Secrets whose keys become env vars (credentials).")
    ttl_seconds_after_finished: int = Field(3600, ge=0, description="Kubernetes deletes the finished Job after this.")
    poll_interval: float = Field(10, gt=0, description="Seconds per watch call, between checks of the Job's pod.")


class GceSpec(_Section):
    """How the gce executor runs the action (a VM per run, with a container declaration), and an Airflow DAG's VM."""

    project: str | None = Field(None, description="The Google Cloud project of the VM.")
    zone: str = Field("europe-west1-b", description="The VM's zone.")
    machine_type: str = Field("e2-standard-4", description="The VM's machine type.")
    service_account: str = Field("default", description="The VM's service account (email); it needs the store, "
                                 "the warehouse and compute.instances.delete on itself.")
    boot_image: str = Field("projects/cos-cloud/global/images/family/cos-stable",
                            description="Container-Optimized OS, which runs the container declaration.")
    disk_gb: int = Field(20, ge=10, description="Boot disk size.")
    boot_timeout: float = Field(600, gt=0, description="Seconds for the VM to reach RUNNING before it is deleted.")
    poll_interval: float = Field(30, gt=0, description="Seconds between reads of the instance's state.")


class VertexSpec(_Section):
    """How the vertex executor runs the action: a Vertex AI CustomJob per run."""

    project: str | None = Field(None, description="The Google Cloud project of the job.")
    region: str = Field("europe-west1", description="The Vertex AI region.")
    machine_type: str = Field("n1-standard-4", description="The worker's machine type.")
    service_account: str | None = Field(None, description="The job's service account (email).")
    poll_interval: float = Field(30, gt=0, description="Seconds between reads of the job's state.")


class ActionSpec(_Section):
    kind: Literal["training", "application", "evaluation"] | None = Field(
        None, description="What the action does; default its name.")
    config: str | None = Field(None, description="The action's config file, relative to the model repository.")
    schedule: str | None = Field(None, description="Cron expression; each tick's date is a logical date.")
    start_date: dt.date | None = Field(
        None, description="First logical date scheduled; default the first day a scheduler saw the action.")
    timezone: str = Field("UTC", description="Time zone of the cron schedule and of its logical dates.")
    catchup: Literal["all", "latest", "none"] = Field(
        "latest", description="Missed dates: all (oldest first), latest (the rest skipped), none (all skipped).")
    max_active_runs: int = Field(1, ge=1, description="Runs of this action the scheduler runs at once.")
    retries: int = Field(2, ge=0, description="Retries of a run that failed on a transient error.")
    retry_delay: float = Field(60, gt=0, description="Seconds before the first retry; doubled for each next one.")
    wait_for_training: float = Field(
        86400, ge=0, description="Seconds an application waits for a trained model before failing.")
    executor: str = Field("local", description="Where the action runs: inline, local, container, kubernetes, vertex or gce.")
    model: str | None = Field(None, description="Alias or run id to apply; default champion, else latest training.")
    input: InputSpec | None = Field(None, description="Python contract: where the data comes from.")
    output: OutputSpec | None = Field(None, description="Where predictions are delivered.")
    timeout: float = Field(3600, gt=0, description="Seconds before the run's process tree is killed.")
    batch_size: int = Field(65536, gt=0, description="Rows per Arrow batch when streaming.")
    airflow: AirflowSpec = Field(default_factory=AirflowSpec, description="Rendering as an Airflow DAG.")
    kubernetes: KubernetesSpec = Field(default_factory=KubernetesSpec, description="The kubernetes executor's Job.")
    gce: GceSpec = Field(default_factory=GceSpec, description="The gce executor's VM.")
    vertex: VertexSpec = Field(default_factory=VertexSpec, description="The vertex executor's CustomJob.")

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        if value not in EXECUTORS:
            raise _fail(f"unknown executor '{value}'", f"use one of {', '.join(EXECUTORS)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _fail(f"unknown time zone '{value}'", "use an IANA name, e.g. UTC or Europe/Paris") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and not croniter.is_valid(value):
            raise _fail(f"'{value}' is not a cron expression", "use five fields, e.g. '0 6 * * *'")
        return value


class AlertsSection(_Section):
    """Where the embedded scheduler reports a failed date, and the recovery after it."""

    webhook: str | None = Field(None, description="Slack-compatible webhook URL; better set in BATCHCAST__ALERTS__WEBHOOK.")
    email: list[str] = Field(default_factory=list, description="Addresses to email.")
    smtp: str = Field("smtp://127.0.0.1:25", description="SMTP server, smtp://[user@]host:port (smtps:// for TLS); "
                                                       "the password comes from BATCHCAST_SMTP_PASSWORD.")
    sender: str = Field("batchcast@localhost", description="The From address of alert emails.")
    dashboard: str = Field("http://127.0.0.1:8765", description="Base URL of 'batchcast ui', for links to runs.")


class ImageSection(_Section):
    """The service's container image: what ``batchcast build`` writes and the container executors run."""

    base: str = Field("python:3.11-slim", description="Base image; it must have python3 with venv and pip.")
    registry: str = Field("localhost", description="Registry part of the tag {registry}/{project}/{name}:{version}.")
    project: str = Field("batchcast", description="Project part of the tag.")
    network: str = Field("host", description="container: podman/docker --network (host reaches 127.0.0.1 services).")
    extras: list[str] = Field(default_factory=list, description="batchcast extras installed in the image, e.g. gce.")
    exclude: list[str] = Field(default_factory=lambda: [".git", ".batchcast", ".venv", "__pycache__", "output"],
                               description="Names left out of the model repository copied into the image.")

    @field_validator("base", "registry", "project", "network")
    @classmethod
    def _reference(cls, value: str) -> str:
        # These reach a Dockerfile and an engine's command line: no spaces, newlines or quotes.
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$", value):
            raise _fail(f"'{value}' is not an image reference part", "use letters, digits and . _ / : @ -")
        return value

    @field_validator("extras")
    @classmethod
    def _extras(cls, value: list[str]) -> list[str]:
        for extra in value:
            if not re.match(r"^[a-z0-9_-]{1,40}$", extra):
                raise _fail(f"'{extra}' is not an extra's name", "use e.g. gce or postgres")
        return value


class ServiceSpec(_Section):
    service: ServiceSection
    model: ModelSection = Field(default_factory=ModelSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    warehouse: WarehouseSection = Field(default_factory=WarehouseSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    image: ImageSection = Field(default_factory=ImageSection)
    actions: dict[str, ActionSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kinds(self) -> "ServiceSpec":
        for name, action in self.actions.items():
            if action.kind is None:
                if name not in KINDS:
                    raise _fail(f"action '{name}' has no kind", f"set kind to one of {', '.join(KINDS)}")
                action.kind = name
            if not re.match(r"^[a-z][a-z0-9_]{0,62}$", name):
                raise _fail(f"action name '{name}' is not lower-case letters, digits and '_'",
                            "rename the [actions.*] table, e.g. training")
            if self.model.contract == "python" and not action.input:
                raise _fail(f"action '{name}' has no input", "add [actions.%s.input] with query or path" % name)
        return self

    # Filled by load_spec: where the file was, for relative paths and messages.
    _file: Path = Path(SPEC_FILE)

    @property
    def file(self) -> Path:
        return self._file

    @property
    def root(self) -> Path:
        return self._file.parent

    @property
    def model_path(self) -> Path:
        return (self.root / self.model.path).resolve()

    @property
    def requirements_path(self) -> Path | None:
        if self.model.requirements:
            return self.model_path / self.model.requirements
        default = self.model_path / "requirements.txt"
        return default if default.exists() else None

    @property
    def storage_url(self) -> str:
        return _resolve_url(self.storage.url, self.root)

    @property
    def warehouse_url(self) -> str:
        # duckdb:///rel/path is relative to the spec; duckdb:////abs/path is absolute.
        prefix, url = "duckdb:///", self.warehouse.url
        rest = url[len(prefix):] if url.startswith(prefix) else None
        if rest and rest != ":memory:" and not rest.startswith("/"):
            return prefix + str((self.root / rest).resolve())
        return url

    @property
    def image_tag(self) -> str:
        return f"{self.image.registry}/{self.image.project}/{self.service.name}:{self.service.version}"

    @property
    def command(self) -> str:
        return self.model.command or DEFAULT_COMMAND

    def action(self, name: str) -> ActionSpec:
        """The action called ``name``; SpecError listing the declared ones otherwise."""
        if name not in self.actions:
            known = ", ".join(self.actions) or "none"
            raise SpecError(f"{self._file}: no action '{name}' (declared: {known})",
                            f"add [actions.{name}] to {self._file.name}, or run one of the declared actions")
        return self.actions[name]

    def cloud_project(self, action: str, table: str) -> str:
        """The Google Cloud project of the action's ``vertex`` or ``gce`` table; SpecError if unset."""
        project = getattr(self.action(action), table).project
        if not project:
            raise SpecError(f"{self._file.name} [actions.{action}.{table}] project: not set",
                            f"set project = \"my-project\", the Google Cloud project the {table} executor uses")
        return project

    def check_files(self) -> None:
        """Raise SpecError if a file the spec names does not exist."""
        if not self.model_path.is_dir():
            raise SpecError(f"{self._file}: [model] path: folder '{self.model_path}' does not exist",
                            "point path at the model repository")
        if self.model.requirements and not self.requirements_path.exists():
            raise SpecError(f"{self._file}: [model] requirements: '{self.requirements_path}' does not exist",
                            "create it or correct the path")
        for name, action in self.actions.items():
            if action.config and not (self.model_path / action.config).exists():
                raise SpecError(
                    f"{self._file}: [actions.{name}] config: '{action.config}' not found in {self.model_path}",
                    "create the file or correct the path (relative to the model repository)")


def _resolve_url(url: str, root: Path) -> str:
    if "://" in url:
        return url
    return str((root / url).resolve())


def redact(url: str) -> str:
    """``url`` without its password, for logs and manifests."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def find_spec(path: str | os.PathLike | None = None, environ=os.environ) -> Path:
    """The spec file: ``path``, else ``BATCHCAST_SPEC``, else ``./batchcast.toml``."""
    chosen = Path(path or environ.get("BATCHCAST_SPEC") or SPEC_FILE)
    if chosen.is_dir():
        chosen = chosen / SPEC_FILE
    if not chosen.exists():
        raise SpecError(f"{chosen}: no such spec file",
                        "run 'batchcast init' or 'batchcast adopt PATH', or pass --spec PATH")
    return chosen.resolve()


def find_specs(paths) -> list[Path]:
    """Spec files from paths: a file, a service folder, or a folder of services (``*/batchcast.toml``)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / SPEC_FILE).exists():
            found += sorted(p.resolve() for p in path.glob(f"*/{SPEC_FILE}"))
        else:
            found.append(find_spec(path))
    return found


def load_spec(path: str | os.PathLike | None = None, overrides: dict | None = None,
              environ=os.environ) -> ServiceSpec:
    """Load, merge and validate a spec; raise SpecError with one line per problem."""
    file = find_spec(path, environ)
    try:
        data = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{file}: not valid TOML: {exc}", "correct the syntax at that line") from None
    _refuse_secrets(file, data)
    env = env_overrides(environ)
    for layer in (env, overrides or {}):
        _merge(data, layer)
    try:
        spec = ServiceSpec.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(file, err, env) for err in exc.errors()]
        raise SpecError("\n".join(lines)) from None
    spec._file = file
    return spec


def _refuse_secrets(file: Path, data: dict) -> None:
    """A password written into the spec would end up in version control."""
    for section, key in (("warehouse", "url"), ("storage", "url"), ("alerts", "smtp")):
        url = (data.get(section) or {}).get(key)
        if isinstance(url, str) and "://" in url and urlsplit(url).password is not None:
            raise SpecError(f"{file}: [{section}] {key}: holds a password, which does not belong in a spec file",
                            f"remove it; set PGPASSWORD or BATCHCAST_SMTP_PASSWORD (or the service's own "
                            f"credential variables), or pass the whole URL as BATCHCAST__{section.upper()}__{key.upper()}")


def env_overrides(environ=os.environ) -> dict:
    """``BATCHCAST__WAREHOUSE__URL=x`` as ``{"warehouse": {"url": "x"}}``."""
    out: dict = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX):].split("__") if p]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(value) if value[:1] in "[{" else value
    return out


def _merge(base: dict, layer: dict) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif value is not None:
            base[key] = value


def _describe(file: Path, err: dict, env: dict) -> str:
    loc = [str(p) for p in err["loc"]]
    table = "[" + ".".join(loc[:-1]) + "]" if len(loc) > 1 else "[top level]"
    key = loc[-1] if loc else ""
    where = f"{file}: {table} {key}".rstrip()
    env_name = ENV_PREFIX + "__".join(p.upper() for p in loc)
    origin = f" (from environment {env_name})" if _dig(env, loc) is not None else ""
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        guess = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        return f"{where}: unknown key{origin} (fix: {hint}known keys are {', '.join(known)})"
    if kind == "missing":
        return f"{where}: required key is missing (fix: add {key} = ... to {table})"
    if kind == "batchcast":
        return f"{where}: {err['ctx']['message']}{origin} (fix: {err['ctx']['fix']})"
    return f"{where}: {err['msg'].lower()}, got {err.get('input')!r}{origin} (fix: correct the value)"


def _dig(tree: dict, loc: list[str]):
    for part in loc:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _known_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = ServiceSpec
    for part in loc:
        if model is ServiceSpec and part == "actions":
            continue
        field = model.model_fields.get(part)
        if field is None:  # an action name under [actions]
            model = ActionSpec
            continue
        model = _model_of(field.annotation)
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_of(annotation) -> type[BaseModel]:
    for candidate in getattr(annotation, "__args__", ()) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation


def load_config(path: Path) -> dict:
    """An action's config file (JSON, TOML or YAML) as a dict."""
    try:
        text = path.read_text()
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml  # optional: only users of YAML configs need it

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except FileNotFoundError:
        raise SpecError(f"{path}: config file not found", "create it or correct [actions.*] config") from None
    except ImportError:
        raise SpecError(f"{path}: YAML configs need PyYAML", "pip install pyyaml, or use JSON") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot parse: {exc}", "correct the file's syntax") from None
