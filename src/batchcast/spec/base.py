"""What every table of a spec is built from: a strict section, and a one-line failure with its fix."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from batchcast.data.schema import is_identifier
from batchcast.errors import SpecError


def fail(message: str, fix: str) -> PydanticCustomError:
    """A validation error that the spec's loader prints as ``message (fix: fix)``."""
    return PydanticCustomError("batchcast", "{message}", {"message": message, "fix": fix})


def table_name(value: str) -> str:
    """``value`` if it is a table name, optionally ``schema.table``; the spec's error otherwise."""
    if value.count(".") > 1 or not all(map(is_identifier, value.split("."))):
        raise fail(f"{value!r} is not a valid table name",  # repr: a newline in the value stays on the line
                   "use letters, digits and underscores, optionally schema.table")
    return value


def inside(value: str | None, folder: str, example: str) -> str | None:
    """``value`` if it is a relative path that stays inside ``folder``; the spec's error otherwise."""
    if value is not None and (not value or value.startswith(("/", "~")) or "\\" in value
                              or ".." in value.split("/") or "\n" in value):
        raise fail(f"'{value}' is not a path inside {folder}",
                   f"write the file's path relative to {folder}, e.g. {example}")
    return value


class Section(BaseModel):
    """A table of ``batchcast.toml``: unknown keys are errors, aliases and names both accepted.

    TOML has ``inf`` and ``nan``; no number of the spec means either (``timeout = inf`` would be no
    timeout, ``retry_delay = inf`` a scheduler that crashes at its first retry), so every float refuses them.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class CloudSettings(Section):
    """A table whose backend runs in a Google Cloud project that must be set before it is used."""

    project: str | None = None

    def required_project(self, where: str, table: str) -> str:
        """The project; SpecError naming ``where`` (e.g. ``batchcast.toml [actions.training.gce]``) if unset."""
        if not self.project:
            raise SpecError(f"{where} project: not set",
                            f"set project = \"my-project\", the Google Cloud project the {table} executor uses")
        return self.project
