"""Scoring on Apache Beam: inline, beam with 1 and 2 workers, and Beam's own RunInference, one run.

- The model (``--model``): a RandomForestClassifier of 200 trees (its predict
  runs on one thread), a HistGradientBoostingClassifier of 200 iterations
  (its predict runs on every core), or a LogisticRegression (light: what
  RunInference's per-element cost weighs against), trained by
  ``batchcast run training``.
- The rows: ``--rows`` (10M) of 8 features in 8 Parquet files; every
  contender reads the same files.
- inline / beam-1 / beam-2: ``batchcast run application`` (beam: the local
  runner, 1 or 2 worker processes), each publishing into DuckDB.
- RunInference: Beam's ``SklearnModelHandlerNumpy`` on the same
  ``model.joblib``, fed one row per element (what RunInference takes), in the
  beam executor's environment, 2 workers; it writes nothing, so it does less
  work than the others.
- Peak memory: the largest resident set of any one process of the contender's
  tree (a beam worker for beam), sampled every 0.2 s.

Run: ``.venv/bin/python benchmarks/beam.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from run import BATCHCAST, FEATURES, generate, write_spec  # noqa: E402

DATE = "2026-01-01"
GOALS = {"beam-2 / inline": 1.6, "beam-2 / RunInference": 10.0}
RUN_INFERENCE = textwrap.dedent('''
    import sys, numpy as np, pyarrow.parquet as pq, apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.ml.inference.sklearn_inference import ModelFileType, SklearnModelHandlerNumpy
    from apache_beam.io.parquetio import ReadFromParquetBatched
    from apache_beam.options.pipeline_options import PipelineOptions
    features = sys.argv[3].split(",")
    handler = SklearnModelHandlerNumpy(model_uri=sys.argv[1], model_file_type=ModelFileType.JOBLIB)
    options = PipelineOptions(runner="FnApiRunner", direct_running_mode="multi_processing", direct_num_workers=2)
    with beam.Pipeline(options=options) as p:
        (p | ReadFromParquetBatched(sys.argv[2])
           | beam.FlatMap(lambda t: np.column_stack([t.column(f).to_numpy() for f in features]))
           | RunInference(handler) | beam.combiners.Count.Globally() | beam.Map(print))
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--model", choices=sorted(MODELS), default="forest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-beam-") as tmp:
        root = Path(tmp)
        model_file = setup(root, args.rows, args.model)
        # RunInference's workers get the share of cores batchcast's beam workers give themselves
        shares = {"RunInference": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}}
        results = {name: measure(argv, root, shares.get(name, {}))
                   for name, argv in contenders(root, model_file).items()}
    report(results, args.rows, args.model)


MODELS = {"forest": ("sklearn.ensemble:RandomForestClassifier", {"n_estimators": 200, "max_depth": 12}),
          "logistic": ("sklearn.linear_model:LogisticRegression", {}),  # light: Beam's per-element cost shows
          "hgb": ("sklearn.ensemble:HistGradientBoostingClassifier", {"max_iter": 200, "early_stopping": False})}


def setup(root: Path, rows: int, model: str) -> Path:
    entrypoint, params = MODELS[model]
    (root / "repo").mkdir()
    (root / "data").mkdir()
    (root / ".batchcast").mkdir()
    with duckdb.connect(str(root / ".batchcast" / "warehouse.duckdb")) as con:
        con.register("t", generate(200_000, 1, True))
        con.execute("CREATE TABLE train AS SELECT * FROM t")
        con.execute("SELECT setseed(0.5)")
        for part in range(8):
            con.execute(f"COPY (SELECT 'p{part}-' || i AS player_id, "
                        + ", ".join(f"random() * 4 - 2 AS {f}" for f in FEATURES)
                        + f" FROM range({rows // 8}) t(i)) TO '{root}/data/part-{part}.parquet' (FORMAT parquet)")
    for file, workers in (("batchcast.toml", 2), ("beam1.toml", 1)):
        write_spec(root, "", entrypoint=entrypoint, source='{ path = "data/*.parquet" }', params=params, file=file,
                   extra=f"[actions.application.beam]\noptions = {{ direct_num_workers = {workers} }}\n")
    subprocess.run([BATCHCAST, "run", "training"], cwd=root, check=True, capture_output=True)
    run = json.loads(subprocess.run([BATCHCAST, "runs", "--json"], cwd=root, check=True, capture_output=True,
                                    text=True).stdout)[-1]["run_id"]
    return root / ".batchcast" / "artifacts" / run / "output" / "model.joblib"


def contenders(root: Path, model_file: Path) -> dict[str, list[str]]:
    from batchcast.executors.beam.executor import BeamExecutor
    from batchcast.spec import load_spec

    beam_python = BeamExecutor().environment(load_spec(root / "batchcast.toml")).path / "bin" / "python"
    run = [BATCHCAST, "run", "application", "--date", DATE]
    return {"inline": [*run, "--executor", "inline"],
            "beam-1": [BATCHCAST, "--spec", str(root / "beam1.toml"), *run[1:], "--executor", "beam"],
            "beam-2": [*run, "--executor", "beam"],
            "RunInference": [str(beam_python), "-c", RUN_INFERENCE, str(model_file), f"{root}/data/*.parquet",
                             ",".join(FEATURES)]}


def measure(argv: list[str], root: Path, env: dict[str, str]) -> dict:
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    peak = {"rss": 0}
    sampler = threading.Thread(target=_sample, args=(proc, peak), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} failed:\n{err[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_process_mib": round(peak["rss"] / 2**20)}


def _sample(proc: subprocess.Popen, peak: dict) -> None:
    while proc.poll() is None:
        for pid in _tree(proc.pid):
            try:
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4096
            except (OSError, IndexError):
                continue
            peak["rss"] = max(peak["rss"], rss)
        time.sleep(0.2)


def _tree(root: int) -> list[int]:
    found, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        found += map(int, children)
        frontier += map(int, children)
    return found


def report(results: dict, rows: int, model: str) -> None:
    print("| contender | seconds | rows/s | peak process MiB |\n| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']} | {rows / r['seconds']:,.0f} | {r['peak_process_mib']} |")
    ratios = {"beam-2 / inline": results["inline"]["seconds"] / results["beam-2"]["seconds"],
              "beam-2 / RunInference": results["RunInference"]["seconds"] / results["beam-2"]["seconds"]}
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x (goal >= {GOALS[name]}): {'met' if ratio >= GOALS[name] else 'NOT met'}")
    out = Path(__file__).parent / "results" / f"beam-{model}.json"
    out.write_text(json.dumps({"rows": rows, "model": model, "results": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
