"""The served model: a training run loaded by the one verified loader, and what a client may ask about it.

The features a request must carry, and their kinds, come from the scorer
(the training's order) and the training profile (Python contract), or are
all numbers (command contract, ``[serve] features``).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from batchcast.model import pyfunc
from batchcast.model.loading import load_run
from batchcast.model.scoring import Scorer, Slices
from batchcast.online.features import Features
from batchcast.service import CHAMPION


@dataclass
class Served:
    """One loaded, verified model and what a client may ask about it."""

    run_id: str
    name: str
    version: str
    scorer: Scorer
    features: Features
    alias: str | None = None
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    slices: Slices = field(default_factory=lambda: Slices(1))  # set by the Slot that serves it

    def predict(self, table) -> np.ndarray:
        """One prediction per row of ``table`` (already checked against the features)."""
        parts = self.slices.map(self.scorer.predict_array, table)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def seconds(self, rows: int) -> float:
        """How long predicting ``rows`` rows should take, by this model's last call (0 before any)."""
        return self.slices.seconds(rows)

    def score(self, batch, schema, where: str) -> list:
        """The output rows of ``batch``, as record batches in its order (the scorer's ``score``)."""
        return self.slices.map(lambda part: self.scorer.score(part, schema, where), batch)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "run": self.run_id, "alias": self.alias,
                "features": list(self.features.names), "loaded_at": self.loaded_at}


def load(service, ref: str | None = None) -> Served:
    """The training run ``ref`` (default: the champion, else the latest), its checksums verified first."""
    manifest = service.model_for(ref)
    pyfunc.check_environment(service.spec, manifest)
    with tempfile.TemporaryDirectory(prefix="batchcast-serve-") as folder:
        loaded = load_run(service.store, manifest, Path(folder), service.spec)
        features = _features(loaded, service.spec)
    named = ref or CHAMPION  # model_for chose the champion when there was one
    alias = named if service.store.alias(service.name, service.version, named) == manifest.run_id else None
    return Served(manifest.run_id, service.name, service.version, loaded.scorer, features, alias)


def _features(loaded, spec) -> Features:
    ids = tuple(spec.model.ids)
    if not loaded.meta:  # the command contract: [serve] features, numbers
        names = loaded.scorer.features
        return Features(names, dict.fromkeys(names, "number"), ids)
    from batchcast.data.profiles import PROFILE

    profile = loaded.folder / PROFILE
    return Features.of(loaded.meta, json.loads(profile.read_text()) if profile.exists() else None, ids)
