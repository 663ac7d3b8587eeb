"""Warehouses by URL scheme, imported only when a URL asks for them."""

from __future__ import annotations

import importlib
from pathlib import Path

from batchcast.errors import MissingExtra, SpecError
from batchcast.warehouses.base import Warehouse

# scheme -> (module:class, extra that installs its driver)
BACKENDS: dict[str, tuple[str, str]] = {
    "duckdb": ("batchcast.warehouses.duckdb:DuckDBWarehouse", "duckdb"),
    "postgresql": ("batchcast.warehouses.postgres:PostgresWarehouse", "postgres"),
    "postgres": ("batchcast.warehouses.postgres:PostgresWarehouse", "postgres"),
    "bigquery": ("batchcast.warehouses.bigquery:BigQueryWarehouse", "bigquery"),
}

__all__ = ["BACKENDS", "Warehouse", "local_file", "open_warehouse"]


def open_warehouse(url: str) -> Warehouse:
    """The warehouse for ``url``; SpecError for an unknown scheme, MissingExtra without its driver."""
    return backend_for(url)(url)


def local_file(url: str) -> Path | None:
    """The file a file-based warehouse (DuckDB) lives in, else None; nothing is opened."""
    return backend_for(url).local_file(url)


def backend_for(url: str) -> type[Warehouse]:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in BACKENDS:
        raise SpecError(f"warehouse url '{scheme}://...' has an unknown scheme",
                        f"use one of {', '.join(s + '://' for s in BACKENDS)}")
    target, extra = BACKENDS[scheme]
    module, cls = target.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        raise MissingExtra(f"the {scheme} warehouse", extra) from None
