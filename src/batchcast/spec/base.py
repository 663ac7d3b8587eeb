"""What every table of a spec is built from: a strict section, and a one-line failure with its fix."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from batchcast.errors import SpecError

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def fail(message: str, fix: str) -> PydanticCustomError:
    """A validation error that the spec's loader prints as ``message (fix: fix)``."""
    return PydanticCustomError("batchcast", "{message}", {"message": message, "fix": fix})


class Section(BaseModel):
    """A table of ``batchcast.toml``: unknown keys are errors, aliases and names both accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CloudSettings(Section):
    """A table whose backend runs in a Google Cloud project that must be set before it is used."""

    project: str | None = None

    def required_project(self, where: str, table: str) -> str:
        """The project; SpecError naming ``where`` (e.g. ``batchcast.toml [actions.training.gce]``) if unset."""
        if not self.project:
            raise SpecError(f"{where} project: not set",
                            f"set project = \"my-project\", the Google Cloud project the {table} executor uses")
        return self.project
