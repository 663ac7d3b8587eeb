"""batchcast: retrain and apply a predictive model on a schedule, every artifact versioned.

The public surface is what ``__all__`` lists; everything else may change.

The names are imported on first use (PEP 562), so that ``import batchcast``
and the ``batchcast`` command start without pyarrow, pydantic or fsspec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchcast.data.schema import Schema
    from batchcast.errors import (
        BatchcastError,
        ExecutorError,
        InputError,
        IntegrityError,
        MissingExtra,
        ModelError,
        QueryError,
        RequestError,
        RunExists,
        RunNotFound,
        RunTimeout,
        SchemaError,
        SpecError,
        StoreError,
        WarehouseError,
        WarehouseUnavailable,
    )
    from batchcast.runs.manifest import Manifest, RunStatus
    from batchcast.runs.store import ArtifactStore
    from batchcast.service import Service
    from batchcast.spec import ServiceSpec, load_spec

__version__ = "0.1.0"

__all__ = [
    "ArtifactStore",
    "BatchcastError",
    "ExecutorError",
    "InputError",
    "IntegrityError",
    "Manifest",
    "MissingExtra",
    "ModelError",
    "QueryError",
    "RequestError",
    "RunExists",
    "RunNotFound",
    "RunStatus",
    "RunTimeout",
    "Schema",
    "SchemaError",
    "Service",
    "ServiceSpec",
    "SpecError",
    "StoreError",
    "WarehouseError",
    "WarehouseUnavailable",
    "__version__",
    "load_spec",
]

# Each public name and the module that defines it.
_ERRORS = ("BatchcastError", "ExecutorError", "InputError", "IntegrityError", "MissingExtra", "ModelError",
           "QueryError", "RequestError", "RunExists", "RunNotFound", "RunTimeout", "SchemaError", "SpecError",
           "StoreError", "WarehouseError", "WarehouseUnavailable")
_MODULES = {
    **dict.fromkeys(_ERRORS, "batchcast.errors"),
    "Manifest": "batchcast.runs.manifest",
    "RunStatus": "batchcast.runs.manifest",
    "Schema": "batchcast.data.schema",
    "Service": "batchcast.service",
    "ServiceSpec": "batchcast.spec",
    "load_spec": "batchcast.spec",
    "ArtifactStore": "batchcast.runs.store",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:  # AttributeError lets ``from batchcast import scaffold`` import the submodule
        raise AttributeError(f"module 'batchcast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
