"""Holdout metrics of a fitted model: what training records and the promotion gate compares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from batchcast.model.scoring import Scorer


def metrics(scorer: Scorer, table: pa.Table, y: np.ndarray) -> dict[str, float]:
    """Holdout metrics of ``scorer`` on ``table``: classification when the model has classes, regression otherwise."""
    predicted = np.asarray(scorer.predict(table))
    if hasattr(scorer.model, "classes_") or y.dtype == bool or y.dtype.kind in "OUS":
        out = {"accuracy": float(np.mean(predicted == y))}
        if hasattr(scorer.model, "predict_proba") and len(np.unique(y)) == 2:
            out.update(_probabilistic(scorer, table, y))
        return out
    error = predicted.astype(float) - y.astype(float)
    total = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "r2": 1.0 - float(np.sum(error**2)) / total}


def _probabilistic(scorer: Scorer, table: pa.Table, y: np.ndarray) -> dict[str, float]:
    try:
        from sklearn.metrics import log_loss, roc_auc_score
    except ImportError:
        return {}
    proba = scorer.call("predict_proba", table)
    positive = np.asarray(proba)[:, 1]
    return {"roc_auc": float(roc_auc_score(y, positive)), "log_loss": float(log_loss(y, proba))}
