"""batchcast: retrain and apply a predictive model on a schedule, every artifact versioned.

The public surface is what ``__all__`` lists; everything else may change.
"""

from batchcast.errors import (
    BatchcastError,
    ExecutorError,
    InputError,
    IntegrityError,
    MissingExtra,
    ModelError,
    RunExists,
    RunNotFound,
    RunTimeout,
    SchemaError,
    SpecError,
    StoreError,
    WarehouseError,
    WarehouseUnavailable,
)
from batchcast.runs import Manifest, RunStatus
from batchcast.schema import Schema
from batchcast.service import Service
from batchcast.spec import ServiceSpec, load_spec
from batchcast.store import ArtifactStore

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
