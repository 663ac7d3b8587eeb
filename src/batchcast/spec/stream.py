"""``[stream]``: what ``batchcast stream`` reads, where it delivers, what it promises, and how it is deployed.

The model is found as ``serve`` finds it (the champion, else the latest
training; a command-contract model through ``[serve] model_file``, ``method``
and ``features``), so one model file is described once for both.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchcast import registry
from batchcast.data.schema import Schema, is_identifier
from batchcast.errors import SchemaError, SpecError
from batchcast.spec.base import fail, table_name
from batchcast.spec.serve import Deployed

GROUP = re.compile(r"[A-Za-z0-9._-]{1,200}")


class StreamSection(Deployed):
    """Streaming predictions: ``source`` in, a ``topic`` and/or a ``table`` out, bad messages to ``dead_letter``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False,
                              arbitrary_types_allowed=True)

    source: str = Field(description="Where events come from: kafka://host:port/topic (read in the consumer group "
                                    "`group`) or pubsub://project/subscription.")
    group: str | None = Field(None, description="Kafka consumer group; default batchcast-NAME-VERSION.")
    partitions: Literal["group", "all"] | list[int] = Field(
        "group", description="Kafka: group (the consumer group shares the partitions out), all (this consumer "
                             "reads every partition, no group membership), or a list of partition numbers.")
    format: Literal["json", "records"] = Field(
        "json", description="json: one JSON object per message; records: a list of objects (or MLflow's "
                            "{\"dataframe_records\": [...]}) per message.")
    key_field: str | None = Field(None, description="The column the message key fills when a record lacks it "
                                                    "(an id, say); default the key is only carried along.")
    topic: str | None = Field(None, description="Where predictions are sent as JSON: kafka://host:port/topic or "
                                                "pubsub://project/topic.")
    table: str | None = Field(None, description="Warehouse table predictions are appended to, with their "
                                                "source coordinates.")
    schema_: Schema | None = Field(None, alias="schema", description="The table's and the records' columns "
                                   "('id:STRING,score:FLOAT64'); default the application's output schema.")
    dead_letter: str | None = Field(None, description="Where bad messages go, with their error: a topic URL; "
                                                      "default they are logged and counted.")
    guarantee: Literal["exactly-once", "at-least-once"] = Field(
        "exactly-once", description="exactly-once: Kafka transactions, and positions stored with the rows; "
                                    "at-least-once: plain commits after delivery (faster, may repeat).")
    max_batch: int = Field(2000, ge=1, le=100_000, description="Messages scored and delivered together (a batch's "
                           "fixed costs, a transaction or a flush and a commit, are shared by its messages).")
    max_wait_ms: float = Field(20.0, ge=0, le=60_000, description="How long a batch waits to fill (a backlog "
                               "fills it at once; a trickle waits this long: the latency it adds).")
    poll: float = Field(10.0, gt=0, description="Seconds between checks of the alias for a new model.")
    port: int = Field(9464, ge=0, le=65535, description="The port of /metrics and the health routes (0: none).")
    instance: str | None = Field(None, description="This consumer's name, stable across its restarts (Kafka's "
                                                   "transactional.id is GROUP-INSTANCE); default the host name.")
    lag_target: int = Field(1000, ge=1, description="Kubernetes (KEDA): consumer lag per replica to scale at.")

    @field_validator("source", "topic", "dead_letter")
    @classmethod
    def _url(cls, value: str | None, info) -> str | None:
        if value is None:
            return value
        try:
            registry.broker(value, f"[stream] {info.field_name}")
        except SpecError as exc:
            raise fail(exc.message, exc.fix or "") from None
        return value

    @field_validator("group", "instance")
    @classmethod
    def _name(cls, value: str | None, info) -> str | None:
        if value is not None and not GROUP.fullmatch(value):
            raise fail(f"[stream] {info.field_name} = {value!r} is not a name", "use letters, digits, '.', '_', '-'")
        return value

    @field_validator("key_field")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        if value is not None and not is_identifier(value):
            raise fail(f"[stream] key_field = {value!r} is not a column name", "use letters, digits and '_'")
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        return value if value is None else table_name(value)

    @field_validator("schema_", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Schema | None:
        try:
            return value if value is None or isinstance(value, Schema) else Schema.parse(value)
        except SchemaError as exc:
            raise fail(exc.message, exc.fix or "") from None

    @model_validator(mode="after")
    def _sinks(self) -> StreamSection:
        if not self.topic and not self.table:
            raise fail("[stream] delivers nowhere", "set topic = \"kafka://host:9092/predictions\", "
                                                    "table = \"predictions_stream\", or both")
        if isinstance(self.partitions, list) and (not self.partitions or min(self.partitions) < 0):
            raise fail(f"[stream] partitions = {self.partitions} lists no partition", "list partition numbers "
                                                                                      "from 0, or write \"all\"")
        if self.source.startswith("pubsub://") and (self.group or self.partitions != "group"):
            raise fail("[stream] group and partitions are Kafka's; a Pub/Sub subscription shares its messages out",
                       "remove them")
        return self

    @property
    def urls(self) -> tuple[str, ...]:
        """The broker URLs it names: the source, and the topic and the dead-letter topic when set."""
        return tuple(url for url in (self.source, self.topic, self.dead_letter) if url)

    def consumer_group(self, name: str, version: str) -> str:
        """The Kafka consumer group: ``group``, by default ``batchcast-NAME-VERSION`` of the service."""
        return self.group or f"batchcast-{name}-{version}"
