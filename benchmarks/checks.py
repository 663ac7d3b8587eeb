"""The cost of input checks on an application: the same run with and without ``[actions.application.checks]``.

Two services share one DuckDB warehouse and the same data: each trains the
same model on the same 100,000 rows, then applies it to ``--rows`` rows,
one with checks (warn, so both always publish) and one without; runs are
interleaved (plain, checked, plain, ...) after a warm-up of each, so both
see the same machine. Figures are medians with min and max; the verdict is
on the median overhead, goal <= 10% of the run's time. Written to
``benchmarks/results/checks.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import generate, write_spec  # noqa: E402

from batchcast import Service  # noqa: E402

GOAL = 0.10


def service(root: Path, name: str, warehouse: Path, checks: bool) -> Path:
    return write_spec(root / name, "features", name=name, warehouse=warehouse,
                      extra='[actions.application.checks]\non_breach = "warn"\n' if checks else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-checks-") as folder:
        root = Path(folder)
        warehouse = root / "warehouse.duckdb"
        with duckdb.connect(str(warehouse)) as con:
            for name, table in (("train", generate(100_000, 1, True)), ("features", generate(args.rows, 2, False))):
                con.register("t", table)
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM t")
                con.unregister("t")
        services = {label: Service(service(root, label, warehouse, label == "checked"))
                    for label in ("plain", "checked")}
        for found in services.values():
            trained = found.run("training")
            assert trained.succeeded, trained.error
        samples: dict[str, list[float]] = {label: [] for label in services}
        day = dt.date(2026, 1, 1)
        for i in range(args.repeat + 1):  # the first round warms up and is dropped
            for label, found in services.items():
                start = time.perf_counter()
                manifest = found.run("application", day + dt.timedelta(days=i))
                took = time.perf_counter() - start
                assert manifest.succeeded and manifest.rows["written"] == args.rows, manifest.error
                assert (manifest.checks is not None) == (label == "checked")
                if i:
                    samples[label].append(took)
    plain, checked = (statistics.median(samples[k]) for k in ("plain", "checked"))
    overhead = checked / plain - 1
    verdict = "met" if overhead <= GOAL else "NOT met"
    for label, values in samples.items():
        print(f"{label:<8} median {statistics.median(values):.3f} s  min {min(values):.3f}  max {max(values):.3f}"
              f"  ({args.rows:,} rows)")
    print(f"overhead of the checks: {overhead:+.1%} of the run's time (goal <= {GOAL:.0%}): {verdict}")
    out = Path(__file__).parent / "results" / "checks.json"
    out.write_text(json.dumps({"rows": args.rows, "repeat": args.repeat,
                               "seconds": {k: {"median": round(statistics.median(v), 4), "min": round(min(v), 4),
                                               "max": round(max(v), 4)} for k, v in samples.items()},
                               "overhead": round(overhead, 4), "goal": GOAL, "verdict": verdict}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
