"""``[serve]``: how ``batchcast serve`` answers requests, and how it is deployed on Kubernetes."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from batchcast.data.schema import is_identifier
from batchcast.spec.base import Section, fail, inside, table_name


class Deployed(Section):
    """What the long-running surfaces (``serve``, ``stream``) share: their threads, and how they are deployed on
    Kubernetes (replicas, resources, Secrets)."""

    min_replicas: int = Field(1, ge=1, description="Kubernetes: the fewest replicas the autoscaler keeps.")
    max_replicas: int = Field(4, ge=1, description="Kubernetes: the most replicas the autoscaler starts.")
    cpu_target: int = Field(70, ge=1, le=100, description="Kubernetes: average CPU utilisation (%) to scale at.")
    cpu: str = Field("500m", description="Kubernetes: the container's CPU request (and limit: 2x).")
    memory: str = Field("512Mi", description="Kubernetes: the container's memory request and limit.")
    service_account: str | None = Field(None, description="Kubernetes: the pods' service account.")
    threads: int | None = Field(None, ge=1, le=64, description="Threads one large batch is scored on, in slices, "
                                "when one thread would take over 5 ms on it (1: one thread, for a model that is "
                                "not thread-safe); default the cores this process may use.")
    secrets: list[str] = Field(default_factory=list, description="Kubernetes: Secrets whose keys become the "
                                                                 "container's environment (store credentials).")

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        if not re.fullmatch(r"([0-9]+m|[0-9]+(\.[0-9]{1,3})?)", value):
            raise fail(f"cpu = '{value}' is not a Kubernetes CPU quantity", "write e.g. 500m, 1 or 1.5")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?", value):
            raise fail(f"memory = '{value}' is not a Kubernetes memory quantity", "write e.g. 512Mi or 2Gi")
        return value

    @field_validator("secrets", "service_account")
    @classmethod
    def _names(cls, value):
        for name in value if isinstance(value, list) else [value] if value else []:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
                raise fail(f"'{name}' is not a Kubernetes object name", "use lower-case letters, digits, '-' and '.'")
        return value

    @model_validator(mode="after")
    def _replicas(self) -> Deployed:
        if self.min_replicas > self.max_replicas:
            raise fail(f"min_replicas = {self.min_replicas} is above max_replicas = {self.max_replicas}",
                       "lower min_replicas or raise max_replicas")
        return self


class ServeSection(Deployed):
    """Online predictions: the model file (command contract), batching, limits, and the Kubernetes Deployment."""

    model_file: str | None = Field(
        None, description="Command contract: the file of the training run's output to load (joblib or pickle).")
    method: str = Field("predict", description="Command contract: the loaded object's method that predicts.")
    features: list[str] | None = Field(
        None, description="Command contract: the numeric feature columns, in the order the model takes them; "
                          "default the model's feature_names_in_.")
    input_format: Literal["pandas", "numpy", "arrow"] = Field(
        "numpy", description="Command contract: what the method receives.")
    poll: float = Field(10.0, gt=0, description="Seconds between checks of the alias for a new model.")
    max_body: int = Field(10 * 2**20, gt=0, description="Largest request body in bytes; larger gets a 413.")
    max_header: int = Field(64 * 2**10, ge=1024, description="Largest request line and headers together, in "
                            "bytes; larger gets a 431 and the connection is closed.")
    request_timeout: float = Field(30.0, gt=0, description="Seconds a client has to send a whole request (line, "
                                   "headers, body) from connecting or from its previous response; past them the "
                                   "connection is closed, so a slow or idle client cannot hold it.")
    max_batch: int = Field(1024, ge=1, description="Rows of concurrent requests combined into one model call "
                                                   "(1: no micro-batching); a larger request is one call alone.")
    max_wait_ms: float = Field(0.0, ge=0, description="How long a request waits for others to share its call "
                               "(0: it shares only with those that arrived while the model was busy).")
    workers: int = Field(1, ge=1, description="Server processes on one machine (uvicorn workers).")
    log_table: str | None = Field(None, description="Warehouse table the requests' rows and predictions are "
                                                    "appended to, off the request path; default none.")
    log_every: float = Field(5.0, gt=0, description="Seconds between appends to log_table.")
    log_max_rows: int = Field(100_000, ge=1, description="Rows waiting for log_table past which the oldest are "
                                                         "dropped (the warehouse being down).")
    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if not is_identifier(value):
            raise fail(f"'{value}' is not a method name", "write e.g. predict or predict_proba")
        return value

    @field_validator("model_file")
    @classmethod
    def _model_file(cls, value: str | None) -> str | None:
        return inside(value, "the training run's output folder", "model.joblib")

    @field_validator("log_table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        return value if value is None else table_name(value)
