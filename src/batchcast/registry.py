"""Every backend by name, in one table.

The spec's validation (which executor names exist, which ``[actions.X.*]``
tables an action may have), the CLI's choices, the install hints and the
lookups all derive from the rows below. A row holds strings only: reading
the table imports nothing, and a backend's module is imported when a run,
a spec or a URL asks for it.

Adding a backend is one row here, its module, its settings model (if it
has an ``[actions.X.<name>]`` table) and its test fixture.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from batchcast.errors import MissingExtra, SpecError


@dataclass(frozen=True)
class Backend:
    """One backend: where its class lives, what installs its libraries, where its settings model lives."""

    name: str
    target: str  # "module:Class"
    extra: str = ""  # pip install 'batchcast[extra]'
    settings: str | None = None  # "module:Model" of its [actions.X.<name>] table
    airflow: str | None = None  # "module:function" rendering its Airflow tasks; default the BashOperator

    def load(self, what: str):
        """The backend's class; MissingExtra (with the install hint) if its libraries are missing."""
        try:
            return attribute(self.target)
        except ImportError:
            raise MissingExtra(what, self.extra) from None


EXECUTORS: dict[str, Backend] = {b.name: b for b in (
    Backend("inline", "batchcast.executors.inline:InlineExecutor"),
    Backend("local", "batchcast.executors.local:LocalExecutor"),
    Backend("container", "batchcast.executors.container:ContainerExecutor"),
    Backend("kubernetes", "batchcast.executors.kubernetes:KubernetesExecutor", "kubernetes",
            settings="batchcast.executors.kubernetes:KubernetesSettings",
            airflow="batchcast.airflow.pods:kubernetes_tasks"),
    Backend("vertex", "batchcast.executors.vertex:VertexExecutor", "vertex",
            settings="batchcast.executors.vertex:VertexSettings"),
    Backend("gce", "batchcast.executors.gce:GceExecutor", "gce",
            settings="batchcast.executors.gce:GceSettings",
            airflow="batchcast.airflow.vms:gce_tasks"),
    Backend("beam", "batchcast.executors.beam.executor:BeamExecutor",
            settings="batchcast.executors.beam.executor:BeamSettings"),
    Backend("spark", "batchcast.executors.spark.executor:SparkExecutor",
            settings="batchcast.executors.spark.executor:SparkSettings"),
)}

# Keyed by URL scheme.
WAREHOUSES: dict[str, Backend] = {b.name: b for b in (
    Backend("duckdb", "batchcast.warehouses.duckdb:DuckDBWarehouse", "duckdb"),
    Backend("postgresql", "batchcast.warehouses.postgres:PostgresWarehouse", "postgres"),
    Backend("postgres", "batchcast.warehouses.postgres:PostgresWarehouse", "postgres"),
    Backend("bigquery", "batchcast.warehouses.bigquery:BigQueryWarehouse", "bigquery"),
)}

# Message brokers, keyed by URL scheme: batchcast stream's sources and topics ("module:BROKER").
BROKERS: dict[str, Backend] = {b.name: b for b in (
    Backend("kafka", "batchcast.brokers.kafka:BROKER", "stream"),
    Backend("pubsub", "batchcast.brokers.pubsub:BROKER", "pubsub"),
)}

# What the service starts above itself (a server, a consumer), by command: the service sits below them in
# the layers and is imported by them, so it finds their entry point ("module:function") here, on use.
SURFACES: dict[str, Backend] = {b.name: b for b in (
    Backend("serve", "batchcast.serving.isolated:serve", "serve"),
    Backend("stream", "batchcast.streaming.isolated:stream", "stream"),
)}

# [actions.X.<name>] tables that are not an executor's: features that read an action's settings.
TABLES: dict[str, str] = {
    "airflow": "batchcast.airflow.settings:AirflowSettings",
}


def executor(name: str) -> Backend:
    """The executor called ``name``; SpecError listing the known ones otherwise."""
    if name not in EXECUTORS:
        raise SpecError(f"unknown executor '{name}'", f"use one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


def warehouse(url: str) -> Backend:
    """The warehouse backend of ``url``'s scheme; SpecError listing the known schemes otherwise."""
    scheme = scheme_of(url)
    if scheme not in WAREHOUSES:
        raise SpecError(f"warehouse url '{scheme}://...' has an unknown scheme",
                        f"use one of {', '.join(s + '://' for s in WAREHOUSES)}")
    return WAREHOUSES[scheme]


def scheme_of(url: str) -> str:
    """The scheme a backend is registered under: ``kafka`` of ``kafka://h:9092/t``; "" for a bare path."""
    return url.split("://", 1)[0] if "://" in url else ""


def broker(url: str, where: str):
    """The broker module's :class:`~batchcast.brokers.base.Broker` for ``url``'s scheme, the URL checked;
    SpecError naming ``where`` and the known schemes otherwise."""
    scheme = scheme_of(url)
    if scheme not in BROKERS:
        raise SpecError(f"{where} = '{url}' has an unknown scheme",
                        f"use one of {', '.join(s + '://' for s in BROKERS)}")
    found = attribute(BROKERS[scheme].target)
    found.check(url, where)
    return found


def action_tables() -> dict[str, type]:
    """Every ``[actions.X.<name>]`` table's settings model, by table name (executors' first)."""
    tables = {name: b.settings for name, b in EXECUTORS.items() if b.settings}
    return {name: attribute(target) for name, target in {**tables, **TABLES}.items()}


def attribute(target: str):
    """The object ``module:name`` names, its module imported now."""
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)
