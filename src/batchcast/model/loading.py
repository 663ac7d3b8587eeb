"""The one verified loader: a training run's files fetched from the store, checked, and loaded as a Scorer.

- Python contract: the model ``batchcast run training`` saved, with the
  features and input form that ``model_meta.json`` records.
- Command contract: ``[serve] model_file``, a file the repository's own
  training wrote (joblib, or pickle by its suffix), loaded with the
  repository importable so its own classes unpickle; ``[serve] method`` is
  called with ``[serve] features`` (default the model's
  ``feature_names_in_``).

Nothing is unpickled before the run's seal and every file's sha256 matched
its manifest (:meth:`ArtifactStore.fetch_run`).
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchcast.errors import ServeError
from batchcast.model import files
from batchcast.model.scoring import Scorer

if TYPE_CHECKING:
    from batchcast.runs.manifest import Manifest
    from batchcast.runs.store import ArtifactStore
    from batchcast.spec import ServiceSpec


@dataclass(frozen=True)
class Loaded:
    """A verified training run: its manifest, the folder its files were fetched into, its scorer."""

    manifest: Manifest
    folder: Path
    scorer: Scorer
    meta: dict[str, Any]  # model_meta.json for the Python contract; empty for the command contract


def load_run(store: ArtifactStore, run: str | Manifest, dest: Path, spec: ServiceSpec) -> Loaded:
    """Fetch ``run``'s output into ``dest`` (seal and every sha256 verified), then load its model."""
    manifest = store.fetch_run(run, dest)
    if spec.model.contract == "python":
        scorer, meta = from_folder(dest, spec.model_path, manifest.run_id)
        return Loaded(manifest, dest, scorer, meta)
    return Loaded(manifest, dest, _command(dest, spec, manifest.run_id), {})


def from_folder(folder: Path, model_path: Path, run_id: str | None = None) -> tuple[Scorer, dict[str, Any]]:
    """The Scorer of a Python-contract model in ``folder``, whose files the caller verified (or just wrote).

    ``load_run`` calls it after fetching; the gate for the run's own unstored output, a Beam worker for the
    folder ``load_run`` fetched on this machine or a cluster worker after ``fetch_run``.
    """
    model, meta = files.load(folder, model_path)
    return Scorer.of(model, meta, run_id), meta


def _command(folder: Path, spec: ServiceSpec, run_id: str) -> Scorer:
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
    return Scorer(model, tuple(names), serve.input_format, serve.method, run_id)


def _unpickle(path: Path) -> Any:
    if path.suffix in (".pkl", ".pickle"):
        with path.open("rb") as f:
            return pickle.load(f)
    import joblib

    return joblib.load(path)


def _listing(folder: Path) -> str:
    return ", ".join(sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())) or "none"
