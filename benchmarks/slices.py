"""One large batch on threads (``model.scoring.Slices``), as ``serve`` and ``stream`` score it: 1 thread against 2.

A 200-tree RandomForest (``max_depth = 10``, ``n_jobs = 1``) on 8 features, called through
``Served.predict`` with the Slot's thread count 1 and 2, at 1,024, 4,096 and 16,384 rows. Each
figure is the median of 15 calls after the first (which is timed whole: the estimate starts
there), taken three times with the thread counts alternating; the median of those is printed.
In process: this times the scorer, not HTTP.

Run: ``.venv/bin/python benchmarks/slices.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.ensemble import RandomForestClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from batchcast.model.scoring import Scorer  # noqa: E402
from batchcast.online.features import Features  # noqa: E402
from batchcast.online.loading import Served  # noqa: E402
from batchcast.online.slot import Slot  # noqa: E402

FEATURES = [f"f{i}" for i in range(1, 9)]


def served(model, threads: int) -> Served:
    scorer = Scorer(model, tuple(FEATURES))
    return Slot(Served("bench/1/training/20260101T000000000000Z", "bench", "1", scorer,
                       Features(tuple(FEATURES), dict.fromkeys(FEATURES, "number"))), threads=threads).served


def median_call(model, threads: int, table: pa.Table) -> float:
    target = served(model, threads)
    target.predict(table)
    samples = []
    for _ in range(15):
        started = time.perf_counter()
        target.predict(table)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 8))
    model = RandomForestClassifier(200, max_depth=10, n_jobs=1, random_state=0).fit(
        pd.DataFrame(X, columns=FEATURES), X @ np.linspace(-1, 1, 8) > 0)
    print("| rows | 1 thread ms | 2 threads ms | 1 / 2 |\n| --- | --- | --- | --- |")
    for rows in (1024, 4096, 16384):
        table = pa.table({f: rng.normal(size=rows) for f in FEATURES})
        found: dict[int, list[float]] = {}
        for threads in (1, 2, 2, 1, 1, 2):
            found.setdefault(threads, []).append(median_call(model, threads, table))
        one, two = statistics.median(found[1]), statistics.median(found[2])
        print(f"| {rows:,} | {one * 1e3:.1f} | {two * 1e3:.1f} | {one / two:.2f} |")


if __name__ == "__main__":
    main()
