"""``[mlflow]``: the tracking server batchcast logs its runs to (``batchcast.runs.tracking`` does the logging)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from batchcast.spec.base import Section, fail


class MlflowSection(Section):
    """MLflow tracking: training and evaluation runs logged, trained models registered, alias moves mirrored."""

    tracking_uri: str | None = Field(
        None, description="The tracking server (http://127.0.0.1:5000); models:/ and runs:/ resolve there too. "
        "Default MLFLOW_TRACKING_URI; unset, nothing is logged. Credentials come from MLflow's own variables "
        "(MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME and _PASSWORD), never from this file.")
    experiment: str | None = Field(None, description="The experiment batchcast's runs go to; default the service name.")
    registered_model: str | None = Field(None, description="The registered model trained runs become versions of; "
                                                           "default the service name.")

    @field_validator("tracking_uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(https?://[\w.:@\[\]-]+(/[\w./-]*)?|file:/[\w./-]*|databricks)",
                                                   value):
            raise fail(f"'{value}' is not a tracking server's URI",
                       "write e.g. http://127.0.0.1:5000 (the password, if any, goes in MLFLOW_TRACKING_PASSWORD)")
        if value and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
            raise fail("the tracking URI carries credentials", "put them in MLFLOW_TRACKING_USERNAME and "
                       "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN), not in batchcast.toml")
        return value

    @field_validator("experiment", "registered_model")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][\w./ -]{0,255}", value):
            raise fail(f"{value!r} is not an MLflow name", "use letters, digits, '.', '_', '-', '/' and spaces")
        return value
