"""Scoring on Apache Spark: inline, spark with 1 and 2 executors on a standalone cluster, and MLflow's spark_udf.

- The cluster: a master and two workers (1 core, 2 GiB each) on 127.0.0.1,
  started as the tests start it (``tests/services.py``), from the spark
  executor's own pyspark.
- The model (``--model``): a RandomForestClassifier of 200 trees (CPU heavy)
  or a LogisticRegression, trained by ``batchcast run training``; the rows:
  ``--rows`` (10M) of 8 features in 8 Parquet files, as ``benchmarks/beam.py``
  makes them. Every contender reads the same files and writes every row.
- inline: ``batchcast run application --executor inline`` (every core), into DuckDB.
- spark-1 / spark-2: ``batchcast run application`` on the cluster,
  ``spark.cores.max`` 1 or 2 (one executor or both), into DuckDB.
- spark_udf: MLflow's ``mlflow.pyfunc.spark_udf`` on the same cluster and the
  same ``model.joblib`` (saved with ``mlflow.sklearn.save_model``), reading the
  Parquet with Spark and writing the predictions as Parquet; its driver and
  executors run MLflow's own venv (``env_manager="local"``: no environment is
  rebuilt, which is the fair side of spark_udf).
- Rounds as ``benchmarks/rounds.py`` says (a warm-up round dropped). Wall and
  CPU seconds are the contender's process tree (the driver); executors are the
  workers' children, so their peak memory is sampled apart: the largest
  executor JVM plus its Python workers, every 0.5 s. Spark's start-up share:
  from the run's log, the seconds before "scoring N shards on Spark" over the
  run's whole.

Run: ``make bench-spark`` (``.venv/bin/python benchmarks/spark.py [--rows N] [--model M] [--rounds R]``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
import rounds  # noqa: E402
from beam import setup  # noqa: E402
from run import BATCHCAST, FEATURES, write_spec  # noqa: E402

DATE = "2026-01-01"
MLFLOW_PYTHON = Path(__file__).parents[1] / ".venv-mlflow" / "bin" / "python"
RATIOS = {"spark-2 / spark-1": ("spark-1", "spark-2", 1.6),
          "spark-2 / spark_udf": ("spark_udf", "spark-2", 1.5),
          "spark-2 / inline": ("inline", "spark-2", None)}
SPARK = '\n[actions.application.spark]\nmaster = "{master}"\nconf = {{ "spark.cores.max" = "{cores}" }}\n'
SPARK_UDF = textwrap.dedent('''
    import os, sys, mlflow.pyfunc
    from pyspark.sql import SparkSession
    master, model, data, out, features = sys.argv[1:6]
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors run this venv: env_manager="local"
    spark = (SparkSession.builder.master(master).appName("spark_udf").config("spark.cores.max", "2")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    predict = mlflow.pyfunc.spark_udf(spark, model, result_type="boolean", env_manager="local")
    frame = spark.read.parquet(data)
    from pyspark.sql.functions import struct  # by name: the model was fitted on named features
    frame.select("player_id", predict(struct(*features.split(","))).alias("label")).write.mode("overwrite").parquet(out)
    spark.stop()
''')
# cloudpickle, as batchcast's own file: MLflow's default (skops) refuses a forest's trees as untrusted types
SAVE_MODEL = ("import sys, joblib, mlflow.sklearn; mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
              "serialization_format='cloudpickle')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--model", choices=("forest", "logistic"), default="forest")
    parser.add_argument("--rounds", type=int, default=1, help="rounds after the warm-up round")
    args = parser.parse_args()
    from tests.services import spark_cluster

    with tempfile.TemporaryDirectory(prefix="batchcast-bench-spark-") as tmp:
        root = Path(tmp)
        spark_home = _spark_home(root)
        with spark_cluster(spark_home, root / "cluster") as cluster:
            specs = {"batchcast.toml": SPARK.format(master=cluster.url, cores=2),
                     "spark1.toml": SPARK.format(master=cluster.url, cores=1)}
            model_file = setup(root, args.rows, args.model, specs)
            saved = subprocess.run([str(MLFLOW_PYTHON), "-c", SAVE_MODEL, str(model_file), str(root / "mlflow-model")],
                                   capture_output=True, text=True)
            if saved.returncode != 0:
                raise SystemExit(f"mlflow.sklearn.save_model failed:\n{saved.stderr[-3000:]}")
            peaks: dict[str, list[float]] = {}
            samples = rounds.race({name: _measured(name, argv, root, peaks)
                                   for name, argv in contenders(root, cluster.url).items()}, args.rounds, show=True)
            startup = _startup_share(root)
    report(samples, peaks, startup, args)


def _spark_home(root: Path) -> Path:
    """The pyspark of the spark executor's environment (built once, cached), for the cluster's JVMs."""
    from batchcast.executors.spark.executor import SparkExecutor
    from batchcast.spec import load_spec

    probe = root / "probe"  # the benchmark's requirements: the runs' driver environment, the same key
    write_spec(probe, "train", extra='\n[actions.application.spark]\nmaster = "local[1]"\n')
    driver = SparkExecutor().environment(load_spec(probe / "batchcast.toml")).path
    return next(driver.glob("lib/python3*/site-packages/pyspark"))


def contenders(root: Path, master: str) -> dict[str, list[str]]:
    run = [BATCHCAST, "run", "application", "--date", DATE]
    return {"inline": [*run, "--executor", "inline"],
            "spark-1": [BATCHCAST, "--spec", str(root / "spark1.toml"), *run[1:], "--executor", "spark"],
            "spark-2": [*run, "--executor", "spark"],
            "spark_udf": [str(MLFLOW_PYTHON), "-c", SPARK_UDF, master, str(root / "mlflow-model"),
                          f"{root}/data", str(root / "udf-out"), ",".join(FEATURES)]}


def _measured(name: str, argv: list[str], root: Path, peaks: dict[str, list[float]]):
    def sample() -> rounds.Sample:
        sampler = _ExecutorPeak()
        sampler.start()
        try:
            return rounds.process(argv, cwd=root)
        finally:
            peaks.setdefault(name, []).append(sampler.stop())
    return sample


class _ExecutorPeak(threading.Thread):
    """The largest executor's resident MiB (its JVM and the Python workers under it), sampled every 0.5 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self._done = 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            table = _processes()
            for pid, (_, cmdline) in table.items():
                if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in cmdline:
                    tree = [pid, *_descendants(pid, table)]
                    self.peak = max(self.peak, sum(_rss_mib(p) for p in tree))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return round(self.peak, 1)


def _processes() -> dict[int, tuple[int, str]]:
    """pid: (parent pid, command line), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (parent, (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError):
            continue
    return found


def _descendants(pid: int, table: dict[int, tuple[int, str]]) -> list[int]:
    children = [p for p, (parent, _) in table.items() if parent == pid]
    return children + [d for c in children for d in _descendants(c, table)]


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _startup_share(root: Path) -> dict:
    """From the newest spark run's log: seconds before its shards were handed to Spark, and of the whole run."""
    logs = sorted((root / ".batchcast" / "artifacts").glob("*/*/application/*/log.txt"))
    spark_logs = [log for log in logs if "shards on Spark" in log.read_text()]
    if not spark_logs:
        return {}
    text = spark_logs[-1].read_text()
    stamps = [dt.datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f") for m in
              re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", text, re.M)]
    scoring = re.search(r"^(\S+ \S+) INFO scoring \d+ shards on Spark", text, re.M)
    start = dt.datetime.strptime(scoring.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return {"run": spark_logs[-1].parent.name, "startup_s": round((start - stamps[0]).total_seconds(), 2),
            "run_s": round((stamps[-1] - stamps[0]).total_seconds(), 2)}


def report(samples: dict[str, list[rounds.Sample]], peaks: dict, startup: dict, args: argparse.Namespace) -> None:
    print("| contender | wall s, median (min-max) | rows/s | driver CPU s | driver peak MiB | executor peak MiB |\n"
          "| --- | --- | --- | --- | --- | --- |")
    summaries = {name: rounds.summary(taken) for name, taken in samples.items()}
    for name, s in summaries.items():
        executor = max(peaks.get(name, [0.0])[1:] or peaks.get(name, [0.0]))  # the warm-up round's left out
        print(f"| {name} | {rounds.spread(s['wall_s'])} | {args.rows / s['wall_s']['median']:,.0f} | "
              f"{s['cpu_s']['median']:.1f} | {s['peak_mib']['median']:.0f} | {executor or '-'} |")
    ratios = rounds.ratios(summaries, RATIOS)
    if startup:
        print(f"Spark's start-up in the last spark run: {startup['startup_s']} s of {startup['run_s']} s")
    out = Path(__file__).parent / "results" / f"spark-{args.model}.json"
    out.write_text(json.dumps({"rows": args.rows, "model": args.model, "rounds": args.rounds, "cores": os.cpu_count(),
                               "contenders": {name: {**summaries[name], "executor_peak_mib": peaks.get(name),
                                                     "all": [asdict(x) for x in taken]}
                                              for name, taken in samples.items()},
                               "ratios": ratios, "startup": startup}, indent=2) + "\n")


if __name__ == "__main__":
    main()
