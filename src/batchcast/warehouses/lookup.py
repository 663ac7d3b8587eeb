"""Warehouses by URL scheme (the registry's rows), imported only when a URL asks for them."""

from __future__ import annotations

from pathlib import Path

from batchcast import registry
from batchcast.warehouses.base import Warehouse


def open_warehouse(url: str) -> Warehouse:
    """The warehouse for ``url``; SpecError for an unknown scheme, MissingExtra without its driver."""
    return backend_for(url)(url)


def local_file(url: str) -> Path | None:
    """The file a file-based warehouse (DuckDB) lives in, else None; nothing is opened."""
    return backend_for(url).local_file(url)


def backend_for(url: str) -> type[Warehouse]:
    backend = registry.warehouse(url)
    return backend.load(f"the {backend.name} warehouse")
