"""The Python contract: a class with ``fit`` and ``predict``, its features, and the call that guards it.

The model receives pandas DataFrames (default), NumPy arrays or Arrow tables,
chosen by ``[model] input_format``. Its files are :mod:`batchcast.model.files`;
turning a batch into predictions is :mod:`batchcast.model.scoring`.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from batchcast.errors import ModelError, SchemaError, SpecError

if TYPE_CHECKING:
    import pyarrow as pa


def load_class(entrypoint: str, model_path: Path) -> type:
    """Import ``module:Class`` with the model repository first on ``sys.path``."""
    module_name, _, attr = entrypoint.partition(":")
    use_repo(model_path, module_name)
    try:
        with importing(f"[model] entrypoint '{entrypoint}'", module_name):
            obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"[model] entrypoint '{entrypoint}': cannot import it from {model_path}: {exc}",
                        "check the module path and the requirements") from None
    return obj


@contextlib.contextmanager
def importing(what: str, module_name: str):
    """Translate what the model's own code raises while it is imported (or unpickled) into one ModelError.

    The entrypoint's own module not being found is left to the caller: that is the spec's mistake.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name == module_name.split(".")[0]:
            raise
        raise ModelError(f"{what}: the model's code imports '{exc.name}', which is not installed here",
                         f"add {exc.name.split('.')[0]} to the model's requirements and run with the local "
                         "executor (it installs them), or install it where batchcast runs") from None
    except SyntaxError as exc:
        raise ModelError(f"{what}: {Path(exc.filename or '?').name} line {exc.lineno}: {exc.msg}",
                         "fix the model's code") from None
    except Exception as exc:  # noqa: BLE001 - the model's own code, whatever it raises at import
        raise ModelError(f"{what}: importing the model's code raised {type(exc).__name__}: {exc}",
                         "fix the model's code; the traceback is in the run's log") from exc


def use_repo(model_path: Path, module_name: str) -> None:
    """Put the repository first on ``sys.path``, forgetting a same-named module from elsewhere.

    In one process (inline runs, notebooks) two services may both have a
    ``model.py``; each must get its own, not whichever was imported first.
    """
    if str(model_path) in sys.path:
        sys.path.remove(str(model_path))
    sys.path.insert(0, str(model_path))
    top = module_name.split(".")[0]
    if not ((model_path / top).is_dir() or (model_path / f"{top}.py").is_file()):
        return  # an installed package such as sklearn: leave it cached
    cached = sys.modules.get(top)
    if cached is not None and not str(getattr(cached, "__file__", "")).startswith(str(model_path)):
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]


def build(entrypoint: str, model_path: Path, params: dict[str, Any]) -> Any:
    """A new, unfitted model; ``params`` from the action config's ``params`` table."""
    cls = load_class(entrypoint, model_path)
    try:
        return cls(**params)
    except Exception as exc:
        raise ModelError(f"{entrypoint}({', '.join(params)}) raised {type(exc).__name__}: {exc}",
                         "check the params in the action's config") from None


def choose_features(columns: list[str], features: list[str] | None, label: str | None,
                    ids: list[str], where: str) -> list[str]:
    """The feature columns: as declared, else every column but the label and ids."""
    if features is None:
        return [c for c in columns if c != label and c not in ids]
    missing = [f for f in features if f not in columns]
    if missing:
        raise SchemaError(f"{where}: feature column '{missing[0]}' is missing (found: {', '.join(columns)})",
                          "add it to the input, or remove it from [model] features")
    return list(features)


def as_input(table: pa.Table | pa.RecordBatch, columns: list[str], fmt: str):
    """``columns`` of ``table`` in the form the model asked for."""
    selected = table.select(columns)
    if fmt == "arrow":
        return selected
    if fmt == "numpy":
        return np.column_stack([c.to_numpy(zero_copy_only=False) for c in selected.columns])
    import pyarrow as pa  # here: loading a model needs no Arrow (model.scoring says so too)

    if selected.num_columns and all(pa.types.is_float64(t) for t in selected.schema.types):
        return _float_frame(selected, columns)
    return selected.to_pandas()


def _float_frame(selected: pa.Table | pa.RecordBatch, columns: list[str]):
    """The frame ``to_pandas`` builds for float columns (a null is NaN), at a ninth of its cost.

    One (columns, rows) array is exactly the block pandas keeps, so nothing is copied again; the
    column names are an object Index, as before pandas 3, whose string Index costs scikit-learn's
    feature-name check 10% of a one-row predict. ``to_pandas`` spent 170 us on a one-row batch
    (a serving request) against 19 us here.
    """
    import pandas as pd

    block = np.vstack([c.to_numpy(zero_copy_only=False) for c in selected.columns])
    return pd.DataFrame(block.T, columns=pd.Index(columns, dtype=object), copy=False)


def call(model: Any, method: str, *args):
    """Call the model, turning whatever it raises into one ModelError."""
    try:
        return getattr(model, method)(*args)
    except Exception as exc:
        raise ModelError(f"the model's {method}() raised {type(exc).__name__}: {exc}",
                         "fix the model code or its input; the traceback is in the run's log") from exc
