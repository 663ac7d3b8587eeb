"""A fitted model's files: ``model.joblib`` and ``model_meta.json`` (format, features, label, input form).

An imported MLflow model is a folder instead (``format`` mlflow), loaded by :mod:`batchcast.model.pyfunc`.

``model_meta.json`` lets every scoring path feed the model exactly the
columns it was trained on. Why joblib and not skops: the README's "Model
files and trust" gives the threat model (the checksums, not the file
format, are what protects a load; :func:`batchcast.model.loading.load_run`
verifies them before anything here is called).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batchcast.errors import InputError, ModelError
from batchcast.model.contract import importing, use_repo

META = "model_meta.json"


def save(model: Any, folder: Path, meta: dict[str, Any]) -> Path:
    """Write the fitted model and ``model_meta.json`` into ``folder``."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.joblib"
    joblib.dump(model, path)
    write_meta(folder, {**meta, "format": "joblib", "file": path.name})
    return path


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """``model_meta.json``: the model's format and file, its features and input form (an import's too)."""
    (folder / META).write_text(json.dumps(meta, indent=2))


def load(folder: Path, model_path: Path) -> tuple[Any, dict[str, Any]]:
    """The fitted model and its meta, from files whose checksums were verified (by ``load_run``)."""
    try:
        meta = json.loads((folder / META).read_text())
    except FileNotFoundError:
        raise InputError(f"{folder}: the trained run has no {META}",
                         "apply a run trained with the Python contract") from None
    path = folder / meta["file"]
    if meta["format"] == "mlflow":
        from batchcast.model import pyfunc

        return pyfunc.load(path, meta), meta
    module = meta["entrypoint"].split(":")[0]
    use_repo(model_path, module)  # the model's own classes must import
    if meta["format"] == "skops":
        return _load_skops(path), meta
    import joblib

    with importing(f"loading {path.name}", ""):  # any module missing now is the model's code's
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
