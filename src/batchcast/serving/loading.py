"""The served model: a training run's artifact, its checksums verified, loaded for either contract.

- Python contract: the model ``batchcast run training`` saved, fed the
  features and input form that ``model_meta.json`` records, their kinds
  from the training profile.
- Command contract: ``[serve] model_file``, a file the repository's own
  training wrote (joblib, or pickle by its suffix), loaded with the
  repository importable so its own classes unpickle; ``[serve] method`` is
  called with ``[serve] features`` (default the model's
  ``feature_names_in_``), each a number.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from batchcast.errors import ModelError, ServeError
from batchcast.model import contract as models
from batchcast.service import CHAMPION
from batchcast.serving.requests import Features


@dataclass
class Served:
    """One loaded, verified model and what a client may ask about it."""

    run_id: str
    name: str
    version: str
    model: Any
    method: str
    input_format: str
    features: Features
    alias: str | None = None
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def predict(self, table) -> np.ndarray:
        """One prediction per row of ``table`` (already checked against the features)."""
        y = np.asarray(models.call(self.model, self.method,
                                   models.as_input(table, list(self.features.names), self.input_format)))
        if y.ndim == 0 or y.shape[0] != table.num_rows:
            raise ModelError(f"the model's {self.method}() returned {y.shape[0] if y.ndim else 'a scalar'} "
                             f"predictions for {table.num_rows} rows", "return one prediction per input row")
        return y

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "run": self.run_id, "alias": self.alias,
                "features": list(self.features.names), "loaded_at": self.loaded_at}


def load(service, ref: str | None = None) -> Served:
    """The training run ``ref`` (default: the champion, else the latest), its checksums verified first."""
    manifest = service.model_for(ref)
    with tempfile.TemporaryDirectory(prefix="batchcast-serve-") as folder:
        service.store.fetch(manifest, "output", Path(folder))  # verifies every file's sha256 against the manifest
        if service.spec.model.contract == "python":
            model, method, fmt, features = _python(Path(folder), service.spec)
        else:
            model, method, fmt, features = _command(Path(folder), service.spec, manifest.run_id)
    named = ref or CHAMPION  # model_for chose the champion when there was one
    alias = named if service.store.alias(service.name, service.version, named) == manifest.run_id else None
    return Served(manifest.run_id, service.name, service.version, model, method, fmt, features, alias)


def _python(folder: Path, spec) -> tuple:
    from batchcast.data.profiles import PROFILE

    model, meta = models.load(folder, spec.model_path)
    profile = folder / PROFILE
    features = Features.of(meta, json.loads(profile.read_text()) if profile.exists() else None,
                           tuple(spec.model.ids))
    return model, "predict", meta["input_format"], features


def _command(folder: Path, spec, run_id: str) -> tuple:
    serve = spec.serve
    if not serve.model_file:
        raise ServeError(f"{spec.file}: [serve] model_file is not set, so batchcast cannot tell which file of "
                         f"the training run is the model (its files: {_listing(folder)})",
                         "add [serve] model_file = \"model.joblib\", the file your training writes")
    path = folder / serve.model_file
    if not path.is_file():
        raise ServeError(f"{spec.file}: [serve] model_file = '{serve.model_file}': run {run_id} has no such file "
                         f"(its files: {_listing(folder)})", "name a file the training writes into its output")
    if str(spec.model_path) not in sys.path:
        sys.path.insert(0, str(spec.model_path))  # the repository's own classes (prediction.model.Model) unpickle
    model = _unpickle(path)
    if not callable(getattr(model, serve.method, None)):
        raise ServeError(f"{spec.file}: [serve] method = '{serve.method}': the {type(model).__name__} in "
                         f"{serve.model_file} has no such method", "name the method that predicts, e.g. predict")
    names = serve.features or [str(n) for n in getattr(model, "feature_names_in_", [])]
    if not names:
        raise ServeError(f"{spec.file}: the {type(model).__name__} in {serve.model_file} does not record its "
                         "feature names", "list them in [serve] features, in the order the model takes them")
    return (model, serve.method, serve.input_format,
            Features(tuple(names), dict.fromkeys(names, "number"), tuple(spec.model.ids)))


def _unpickle(path: Path) -> Any:
    if path.suffix in (".pkl", ".pickle"):
        with path.open("rb") as f:
            return pickle.load(f)
    import joblib

    return joblib.load(path)


def _listing(folder: Path) -> str:
    return ", ".join(sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())) or "none"
