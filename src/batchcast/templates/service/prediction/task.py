"""The two actions. batchcast sets OUTPUT_DIR and MODEL_DIR; both default to output/."""

import csv
import json
import os
from pathlib import Path

import joblib
import numpy as np

from prediction.data import generate
from prediction.model import Model


class Task:
    def __init__(self, config: dict):
        self.config = config
        self.output = Path(os.environ.get("OUTPUT_DIR", "output"))
        self.model_dir = Path(os.environ.get("MODEL_DIR", "output"))
        self.output.mkdir(parents=True, exist_ok=True)

    def training(self) -> None:
        _, X, y = generate(self.config["rows"], self.config["seed"])
        cut = int(len(y) * (1 - self.config.get("holdout", 0.2)))
        model = Model(**self.config.get("params", {})).fit(X[:cut], y[:cut])
        accuracy = float(np.mean(model.predict(X[cut:]) == y[cut:]))
        joblib.dump(model, self.output / "model.joblib")
        (self.output / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
        print(f"trained on {cut} rows, holdout accuracy {accuracy:.3f}")

    def application(self) -> None:
        model = joblib.load(self.model_dir / "model.joblib")
        day = os.environ.get("LOGICAL_DATE", "2026-01-01")
        ids, X, _ = generate(self.config["rows"], seed=int(day.replace("-", "")))
        labels = model.predict(X)
        with open(self.output / "predictions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["player_id", "label"])
            writer.writerows((i, "true" if label else "false") for i, label in zip(ids, labels))
        print(f"scored {len(ids)} players for {day}")
