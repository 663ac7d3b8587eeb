"""The whole spec: :class:`ServiceSpec`, and its composition with the backends' own tables."""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

from pydantic import Field, create_model, model_validator

from batchcast import registry
from batchcast.errors import SpecError
from batchcast.redaction import first_line
from batchcast.spec.alerts import AlertsSection
from batchcast.spec.base import Section, fail
from batchcast.spec.image import ImageSection
from batchcast.spec.sections import (
    KINDS,
    ActionSpec,
    ModelSection,
    ServiceSection,
    StorageSection,
    WarehouseSection,
)
from batchcast.spec.serve import ServeSection
from batchcast.spec.stream import StreamSection
from batchcast.spec.tracking import MlflowSection

SPEC_FILE = "batchcast.toml"
DEFAULT_COMMAND = "python -m prediction.main --action {action} --config {config}"


class ServiceSpec(Section):
    service: ServiceSection
    model: ModelSection = Field(default_factory=ModelSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    warehouse: WarehouseSection = Field(default_factory=WarehouseSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    image: ImageSection = Field(default_factory=ImageSection)
    serve: ServeSection = Field(default_factory=ServeSection)
    stream: StreamSection | None = None
    mlflow: MlflowSection = Field(default_factory=MlflowSection)
    actions: dict[str, ActionSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _imported(self) -> ServiceSpec:
        """An MLflow model is trained elsewhere: its training action imports it, declared or not."""
        if not self.model.mlflow:
            return self
        action_type = type(self).model_fields["actions"].annotation.__args__[1]  # the composed ActionSpec
        self.actions.setdefault("training", action_type(kind="training"))
        for name, action in self.actions.items():
            if (action.kind or name) == "training" and action.promote:
                raise fail(f"[actions.{name}.promote]: the model is MLflow's {self.model.mlflow}, which the "
                           "registry chooses; each import becomes the champion", "remove the table, and move the "
                           "registry's alias to choose the model")
        return self

    @model_validator(mode="after")
    def _kinds(self) -> ServiceSpec:
        for name, action in self.actions.items():
            if action.kind is None:
                if name not in KINDS:
                    guess = difflib.get_close_matches(name, KINDS, n=1)
                    hint = f"did you mean [actions.{guess[0]}]? or " if guess else ""
                    raise fail(f"[actions.{name}] is not an action name batchcast knows, and sets no kind",
                               f"{hint}add kind = one of {', '.join(KINDS)} to [actions.{name}]")
                action.kind = name
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):  # an identifier, lower-case: it names folders
                raise fail(f"action name '{name}' is not lower-case letters, digits and '_'",
                           "rename the [actions.*] table, e.g. training")
            if action.promote and action.kind != "training":
                raise fail(f"[actions.{name}.promote]: only a training action has a promotion gate, and "
                           f"'{name}' is a {action.kind} action", "move the table to the training action's "
                           "[actions.training.promote], or remove it")
            if action.checks and (action.kind != "application" or self.model.contract != "python"):
                raise fail(f"[actions.{name}.checks]: input checks apply to an application of the Python contract, "
                           f"where batchcast reads the input; '{name}' is a {action.kind} action of the "
                           f"{self.model.contract} contract",
                           "remove the table (a command-contract repository reads its own data), or move it to "
                           "[actions.application.checks] of a Python-contract spec")
            if action.promote and action.promote.compare_on:
                self._compare_on(name, action.promote.compare_on)
            if self.model.contract == "python" and not action.input and not self.imports(action):
                raise fail(f"action '{name}' has no input", f"add [actions.{name}.input] with query or path")
        return self

    @model_validator(mode="after")
    def _serve(self) -> ServiceSpec:
        if self.model.contract == "python" and (self.serve.model_file or self.serve.features):
            raise fail("[serve] model_file and features are for the command contract; the Python contract serves "
                       "its trained model with the features it was trained on", "remove them from [serve]")
        return self

    @model_validator(mode="after")
    def _stream(self) -> ServiceSpec:
        if self.stream is None or self.stream.schema_ is not None:
            return self
        application = next((a for a in self.actions.values() if a.kind == "application" and a.output), None)
        if application is None:
            raise fail("[stream] has no schema, and no application action declares one",
                       "set [stream] schema = \"id:STRING,score:FLOAT64\" (the ids, then the predictions)")
        self.stream.schema_ = application.output.schema_
        return self

    def _compare_on(self, name: str, target: str) -> None:
        where = f"[actions.{name}.promote] compare_on"
        if self.model.contract != "python":
            raise fail(f"{where} = '{target}': scoring both models on the same rows needs the Python contract; "
                       "a command-contract repository scores its own models",
                       "remove compare_on: the gate then compares the metrics.json of both runs")
        found = self.actions.get(target)
        if found is None or (found.kind or target) != "evaluation":
            raise fail(f"{where} = '{target}' is not an evaluation action of this spec",
                       "name an [actions.*] of kind evaluation, whose input holds labelled rows")

    def imports(self, action: ActionSpec) -> bool:
        """Whether ``action`` imports ``[model] mlflow`` (it reads no input)."""
        return bool(self.model.mlflow) and action.kind == "training"

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
        url = self.storage.url
        return url if "://" in url else str((self.root / url).resolve())

    @property
    def warehouse_url(self) -> str:
        """The warehouse URL, a file-based backend's relative path resolved against the spec's folder."""
        # Through the registry: the spec sits below the warehouses, and the backend's module is imported only now.
        backend = registry.warehouse(self.warehouse.url)
        return backend.load(f"the {backend.name} warehouse").resolve_url(self.warehouse.url, self.root)

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
        """The Google Cloud project of the action's ``table`` (a CloudSettings); SpecError if unset."""
        return getattr(self.action(action), table).required_project(
            f"{self._file.name} [actions.{action}.{table}]", table)

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


@functools.cache
def composed() -> type[ServiceSpec]:
    """:class:`ServiceSpec` whose actions also accept every registered ``[actions.X.<name>]`` table.

    Built on first use, not at import: the tables' models live in their backends' modules.
    """
    tables = {name: (model, Field(default_factory=model, description=first_line(model.__doc__ or "")))
              for name, model in registry.action_tables().items()}
    action = create_model("ActionSpec", __base__=ActionSpec, __module__=ActionSpec.__module__, **tables)
    return create_model("ServiceSpec", __base__=ServiceSpec, __module__=ServiceSpec.__module__,
                        actions=(dict[str, action], Field(default_factory=dict)))
