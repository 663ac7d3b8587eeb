"""The Python contract: a class with ``fit`` and ``predict``, and its serialisation.

The model receives pandas DataFrames (default), NumPy arrays or Arrow tables,
chosen by ``[model] input_format``. A fitted model is saved with joblib;
``model_meta.json`` beside it records the format, the features and the label,
so application feeds the model exactly the columns it was trained on. Why
joblib and not skops: the README's "Model files and trust" gives the threat
model (the checksums, not the file format, are what protects a load).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from batchcast.data.schema import Schema
from batchcast.errors import InputError, ModelError, SchemaError, SpecError

if TYPE_CHECKING:
    import pyarrow as pa

META = "model_meta.json"


def load_class(entrypoint: str, model_path: Path) -> type:
    """Import ``module:Class`` with the model repository first on ``sys.path``."""
    module_name, _, attr = entrypoint.partition(":")
    use_repo(model_path, module_name)
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"[model] entrypoint '{entrypoint}': cannot import it from {model_path}: {exc}",
                        "check the module path and the requirements") from None
    return obj


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
    return selected.to_pandas()


def call(model: Any, method: str, *args):
    """Call the model, turning whatever it raises into one ModelError."""
    try:
        return getattr(model, method)(*args)
    except Exception as exc:
        raise ModelError(f"the model's {method}() raised {type(exc).__name__}: {exc}",
                         "fix the model code or its input; the traceback is in the run's log") from exc


def predictions_batch(batch: pa.RecordBatch, predicted: Any, schema: Schema, where: str) -> pa.RecordBatch:
    """The output batch: schema columns found in the input pass through; the rest come from ``predicted``.

    ``predicted`` is 1-D (one output column), 2-D (in schema order) or a
    DataFrame/dict with the output columns by name.
    """
    passthrough = [c for c in schema.names if c in batch.schema.names]
    produced = [c for c in schema.names if c not in passthrough]
    columns = {c: batch.column(c) for c in passthrough}
    columns.update(_named(predicted, produced, batch.num_rows, where))
    import pyarrow as pa  # here, not at the top: loading a model (serving, scoring tools) needs no Arrow

    return pa.RecordBatch.from_pydict({c: columns[c] for c in schema.names})


def _named(predicted: Any, names: list[str], rows: int, where: str) -> dict[str, Any]:
    if hasattr(predicted, "columns") or isinstance(predicted, dict):
        frame = {str(k): predicted[k] for k in (predicted.columns if hasattr(predicted, "columns") else predicted)}
        missing = [n for n in names if n not in frame]
        if missing:
            raise SchemaError(f"{where}: predict() returned no column '{missing[0]}'",
                              "return it, or remove it from the output schema")
        return {n: np.asarray(frame[n]) for n in names}
    array = np.asarray(predicted)
    if array.shape[0] != rows:
        raise ModelError(f"{where}: predict() returned {array.shape[0]} rows for {rows} input rows",
                         "return one prediction per input row")
    array = array.reshape(rows, -1) if array.ndim > 1 else array.reshape(rows, 1)
    if array.shape[1] != len(names):
        raise SchemaError(f"{where}: predict() returned {array.shape[1]} columns, the output schema "
                          f"expects {len(names)} ({', '.join(names)}) beyond the input's",
                          "declare one output column per predicted column")
    return {n: array[:, i] for i, n in enumerate(names)}


# -- serialisation ---------------------------------------------------------

def save(model: Any, folder: Path, meta: dict[str, Any]) -> Path:
    """Write the fitted model and ``model_meta.json`` into ``folder``."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.joblib"
    joblib.dump(model, path)
    (folder / META).write_text(json.dumps({**meta, "format": "joblib", "file": path.name}, indent=2))
    return path


def load(folder: Path, model_path: Path) -> tuple[Any, dict[str, Any]]:
    """The fitted model and its meta, from files whose checksums were verified."""
    try:
        meta = json.loads((folder / META).read_text())
    except FileNotFoundError:
        raise InputError(f"{folder}: the trained run has no {META}",
                         "apply a run trained with the Python contract") from None
    use_repo(model_path, meta["entrypoint"].split(":")[0])  # the model's own classes must import
    path = folder / meta["file"]
    if meta["format"] == "skops":
        return _load_skops(path), meta
    import joblib

    return joblib.load(path), meta


def _load_skops(path: Path) -> Any:
    """A model saved by an earlier batchcast, which wrote skops files where skops could round-trip them."""
    try:
        import skops.io as sio  # still a dependency, so a champion trained before the upgrade keeps loading
    except ImportError:
        raise ModelError(f"{path.name} was saved with skops by an older batchcast, and skops is not installed",
                         "train again (new runs are saved with joblib), or add skops to the requirements") from None
    data = path.read_bytes()
    # Trusted as the joblib files are: the file's sha256 matched the manifest (README, "Model files and trust").
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


# -- metrics ---------------------------------------------------------------

def metrics(model: Any, X: Any, y: np.ndarray) -> dict[str, float]:
    """Holdout metrics: classification when the model has classes, regression otherwise."""
    predicted = np.asarray(call(model, "predict", X))
    if hasattr(model, "classes_") or y.dtype == bool or y.dtype.kind in "OUS":
        out = {"accuracy": float(np.mean(predicted == y))}
        if hasattr(model, "predict_proba") and len(np.unique(y)) == 2:
            out.update(_probabilistic(model, X, y))
        return out
    error = predicted.astype(float) - y.astype(float)
    total = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "r2": 1.0 - float(np.sum(error**2)) / total}


def _probabilistic(model: Any, X: Any, y: np.ndarray) -> dict[str, float]:
    try:
        from sklearn.metrics import log_loss, roc_auc_score
    except ImportError:
        return {}
    proba = call(model, "predict_proba", X)
    positive = np.asarray(proba)[:, 1]
    return {"roc_auc": float(roc_auc_score(y, positive)), "log_loss": float(log_loss(y, proba))}
