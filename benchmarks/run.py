"""``make bench``: what a user pays for batchcast, against the script they would write by hand.

Every contender is a whole process (interpreter start, imports, model load,
read, predict, write), raced as ``benchmarks/rounds.py`` says: one of each per
round, the order reversed every other round, after one warm-up round that is
dropped, so all see the same machine. The hand-written contender is
``benchmarks/baseline.py``: it streams the same query, loads the same
artifact, feeds the model the same columns, writes the same stamped rows and
replaces the date's rows in one transaction, as a batchcast application does.
Every contender's wall seconds, CPU seconds and peak memory are medians with
min and max; each ratio (of wall medians) is checked against its target.
Results go to ``benchmarks/results/latest.json``; the Markdown table printed
at the end is the README's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import textwrap
from dataclasses import asdict
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rounds  # noqa: E402

from batchcast import Service  # noqa: E402
from batchcast.spec.sections import ActionSpec  # noqa: E402
from tests.services import postgres  # noqa: E402

FEATURES = [f"f{i}" for i in range(1, 9)]
DATE = "2026-01-01"
PYTHON = sys.executable
BATCHCAST = str(Path(sys.executable).parent / "batchcast")
BASELINE = str(Path(__file__).parent / "baseline.py")
OUTPUT = "player_id:STRING,label:BOOL"
STAMPED = ("player_id VARCHAR, label BOOLEAN, _logical_date DATE, _run_id VARCHAR, _model_run VARCHAR, "
           "_predicted_at TIMESTAMPTZ")


def generate(rows: int, seed: int, labelled: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8))
    columns = {"player_id": pa.array([f"p{i}" for i in range(rows)])}
    columns.update({name: X[:, i] for i, name in enumerate(FEATURES)})
    if labelled:
        columns["churned"] = X @ np.linspace(-1, 1, 8) + rng.normal(scale=0.5, size=rows) > 0
    return pa.table(columns)


def write_spec(root: Path, table: str, name: str = "bench", warehouse: Path | None = None, extra: str = "", *,
               entrypoint: str = "sklearn.linear_model:LogisticRegression", source: str | None = None,
               params: dict | None = None, file: str = "batchcast.toml") -> Path:
    """The benchmark service's spec; ``warehouse`` (an absolute path) for services sharing one DuckDB file.

    ``source`` is the application's input (default: the query of ``table``);
    ``params`` the model's, written to the training's config.
    """
    (root / "repo").mkdir(parents=True, exist_ok=True)
    (root / "repo" / "requirements.txt").write_text(f"scikit-learn=={_version('sklearn')}\n")
    config = ""
    if params is not None:
        (root / "repo" / "training.json").write_text(json.dumps({"params": params}))
        config = 'config = "training.json"'
    spec = root / file
    url = f'[warehouse]\nurl = "duckdb:///{warehouse}"\n' if warehouse else ""
    source = source or f'{{ query = "SELECT * FROM {table}" }}'
    spec.write_text(textwrap.dedent(f'''
        [service]
        name = "{name}"
        version = "1"
        ''') + url + textwrap.dedent(f'''
        [model]
        path = "repo"
        entrypoint = "{entrypoint}"
        label = "churned"
        ids = ["player_id"]
        [actions.training]
        executor = "inline"
        {config}
        input = {{ query = "SELECT * FROM train" }}
        [actions.application]
        executor = "inline"
        input = {source}
        output = {{ table = "scores{'_' + name if warehouse else ''}", schema = "{OUTPUT}" }}
        ''') + extra)
    return spec


def _version(module: str) -> str:
    return __import__(module).__version__


class Figures:
    """Samples of whole processes, taken in rounds (``rounds.race``)."""

    def __init__(self, repeat: int):
        self.repeat, self.samples = repeat, {}

    def race(self, contenders: dict[str, tuple[list[str], dict]]) -> None:
        """Race ``(argv, env)`` contenders for ``repeat`` rounds after the warm-up."""
        self.samples |= rounds.race({name: partial(rounds.process, argv, env=env)
                                     for name, (argv, env) in contenders.items()}, self.repeat)

    def median(self, name: str) -> float:
        """The median wall seconds of ``name``."""
        return statistics.median(s.wall_s for s in self.samples[name])

    def summary(self, name: str) -> dict:
        return rounds.summary(self.samples[name])


class Bench:
    def __init__(self, root: Path, rows: int, big_rows: int, memory_rows: int, repeat: int):
        self.root, self.rows, self.big_rows, self.memory_rows = root, rows, big_rows, memory_rows
        self.db = root / ".batchcast" / "warehouse.duckdb"
        self.figures = Figures(repeat)
        self.memory: dict[str, int] = {}

    def setup(self) -> None:
        self.db.parent.mkdir(parents=True)
        self.spec = write_spec(self.root, "features")
        con = duckdb.connect(str(self.db))
        con.register("t", generate(100_000, 1, True))
        con.execute("CREATE TABLE train AS SELECT * FROM t")
        con.execute("SELECT setseed(0.5)")
        for name, rows in [("small", 10), ("rows", self.rows), ("big", self.big_rows), ("huge", self.memory_rows)]:
            con.execute(f"CREATE TABLE {name} AS SELECT 'p' || i AS player_id, "
                        + ", ".join(f"random() * 4 - 2 AS {f}" for f in FEATURES) + f" FROM range({rows}) t(i)")
        con.execute(f"CREATE TABLE scores_script ({STAMPED})")
        con.close()
        trained = Service(self.spec).run("training")
        assert trained.succeeded, trained.error
        self.model_run = trained.run_id
        self.model_dir = self.root / ".batchcast" / "artifacts" / trained.run_id / "output"

    def contenders(self, table: str, url: str | None = None, local: bool = False, model: str = "") -> dict:
        """batchcast (inline, and ``local``) and the script, applying the model to ``table`` into ``url``;
        ``model`` "forest" for the RandomForest service's."""
        spec, model_run, model_dir = self.forest_model if model else (self.spec, self.model_run, self.model_dir)
        env = {"BATCHCAST__ACTIONS__APPLICATION__INPUT__QUERY": f"SELECT * FROM {table}"}
        if url:
            env["BATCHCAST__WAREHOUSE__URL"] = url
        run = [BATCHCAST, "--spec", str(spec), "run", "application", "--date", DATE, "--model", model_run]
        script = [PYTHON, BASELINE, url or f"duckdb://{self.db}", f"SELECT * FROM {table}",
                  str(model_dir / "model.joblib"), "scores_script", DATE, model_run,
                  "--batch-size", str(ActionSpec.model_fields["batch_size"].default)]  # batchcast's default
        chosen = {"batchcast inline": ([*run, "--executor", "inline"], env), "script": (script, {})}
        if local:
            chosen["batchcast local"] = ([*run, "--executor", "local"], env)
        return {f"{table}{' ' + model if model else ''} {k}": v for k, v in chosen.items()}

    def duckdb(self) -> None:
        self.figures.race(self.contenders("small", local=True))
        self.figures.race(self.contenders("rows"))
        self.figures.race(self.contenders("big"))

    def forest(self) -> None:
        """A CPU-heavy model: 200 trees, whose predict releases the GIL, so batchcast's threads use both cores
        where the script's one loop uses one."""
        root = self.root / "forest"
        spec = write_spec(root, "rows", name="forest", warehouse=self.db,
                          entrypoint="sklearn.ensemble:RandomForestClassifier",
                          params={"n_estimators": 200, "max_depth": 10, "n_jobs": 1, "random_state": 0})
        trained = Service(spec).run("training")
        assert trained.succeeded, trained.error
        self.forest_model = (spec, trained.run_id, root / ".batchcast" / "artifacts" / trained.run_id / "output")
        self.figures.race(self.contenders("rows", model="forest"))

    def postgres(self) -> None:
        import adbc_driver_postgresql.dbapi as pg

        with postgres() as url:
            con = duckdb.connect(str(self.db), read_only=True)
            rows = con.sql("SELECT * FROM rows").to_arrow_table()
            con.close()
            with pg.connect(url) as conn, conn.cursor() as cur:
                cur.adbc_ingest("pg_rows", rows, mode="replace")
                cur.execute(f"CREATE TABLE scores_script ({STAMPED.replace('VARCHAR', 'TEXT')})")
                conn.commit()
            self.figures.race(self.contenders("pg_rows", url))

    def model_load(self) -> None:
        load = (f"from pathlib import Path; from batchcast.model.files import load; "
                f"load(Path({str(self.model_dir)!r}), Path({str(self.root / 'repo')!r}))")
        self.figures.race({"load batchcast": ([PYTHON, "-c", load], {}),
                           "load joblib": ([PYTHON, "-c", f"import joblib; joblib.load("
                                                          f"{str(self.model_dir / 'model.joblib')!r})"], {})})

    def peak_memory(self) -> None:
        """batchcast's peak RSS at ``memory_rows`` and at ``rows``: the median of 3 runs each, alternating (a
        race of 7 at 10M would take minutes; one sample moved the ratio by 0.02); the script's, at ``rows`` and
        ``big_rows``, come from the DuckDB races."""
        measure = textwrap.dedent("""
            import sys
            from batchcast import Service
            m = Service(sys.argv[1], overrides={"actions": {"application": {"input": {"query": sys.argv[2]}}}}
                        ).run("application", "2026-01-01", executor="inline", model=sys.argv[3])
            assert m.succeeded, m.error
            """)
        peaks: dict[str, list[float]] = {}
        for table in ("rows", "huge") * 3:
            taken = rounds.process([PYTHON, "-c", measure, str(self.spec), f"SELECT * FROM {table}", self.model_run])
            peaks.setdefault(table, []).append(taken.peak_mib)
        self.memory = {table: round(statistics.median(found)) for table, found in peaks.items()}


def verdicts(bench: Bench) -> list[dict]:
    """Each figure against its target; a figure whose step was not run (``--steps``) is left out."""
    f, n, big, huge = bench.figures, bench.rows, bench.big_rows, bench.memory_rows
    memory = f"peak memory: {huge:,} / {n:,} rows"

    def speed(table, name="batchcast inline"):  # throughput relative to the script on the same rows
        return f.median(f"{table} script") / f.median(f"{table} {name}")

    rows = [
        (f"DuckDB, {n:,} rows: batchcast throughput / script's", lambda: speed("rows"), ">=", 1.0,
         ("rows batchcast inline", "rows script")),
        (f"DuckDB, {big:,} rows: batchcast throughput / script's", lambda: speed("big"), ">=", 1.0,
         ("big batchcast inline", "big script")),
        (f"RandomForest (200 trees), {n:,} rows: batchcast throughput / script's (both cores / one)",
         lambda: speed("rows forest"), ">=", 1.6, ("rows forest batchcast inline", "rows forest script")),
        (f"PostgreSQL, {n:,} rows: batchcast throughput / script's", lambda: speed("pg_rows"), ">=", 1.0,
         ("pg_rows batchcast inline", "pg_rows script")),
        ("fixed cost, 10 rows: inline - script (s)",
         lambda: f.median("small batchcast inline") - f.median("small script"),
         "<=", 0.3, ("small batchcast inline", "small script")),
        ("fixed cost, 10 rows: local - script (s)",
         lambda: f.median("small batchcast local") - f.median("small script"),
         "<=", 0.8, ("small batchcast local", "small script")),
        ("model load: batchcast - joblib.load (s)", lambda: f.median("load batchcast") - f.median("load joblib"),
         "<=", 0.05, ("load batchcast", "load joblib")),
        (memory, lambda: bench.memory["huge"] / bench.memory["rows"], "<=", 1.3, ()),
    ]
    found = []
    for name, value, op, bound, used in rows:
        try:
            value = value()
        except KeyError:  # its step was not run
            continue
        found.append({"figure": name, "value": round(value, 3), "target": f"{op} {bound:g}",
                      "verdict": "met" if (value >= bound if op == ">=" else value <= bound) else "NOT met",
                      "measured": {c: f.summary(c) for c in used}})
        if name == memory:
            found[-1]["peak_rss_mib"] = peak_rss(bench)
    return found


def peak_rss(bench: Bench) -> dict[str, int]:
    """MiB: batchcast's at ``memory_rows`` and ``rows`` (``peak_memory``), then both sides' race medians at
    ``rows`` and ``big_rows`` where the DuckDB step ran."""
    out = {f"batchcast {bench.memory_rows:,}": bench.memory["huge"], f"batchcast {bench.rows:,}": bench.memory["rows"]}
    for table, rows in (("rows", bench.rows), ("big", bench.big_rows)):
        for who in ("batchcast inline", "script"):
            if f"{table} {who}" in bench.figures.samples:
                out[f"race: {who} {rows:,}"] = round(bench.figures.summary(f"{table} {who}")["peak_mib"]["median"])
    return out


def markdown(results: list[dict]) -> str:
    """The README's table; each contender as wall seconds median (min-max), then median CPU and peak memory."""
    lines = ["| figure | value | target | verdict | contenders: wall s median (min-max), CPU s, peak MiB |",
             "| --- | --- | --- | --- | --- |"]
    for r in results:
        measured = "; ".join(f"{name.split(' ', 1)[1]} {rounds.spread(m['wall_s'])}, CPU {m['cpu_s']['median']:.2f}, "
                             f"{m['peak_mib']['median']:.0f} MiB" for name, m in r["measured"].items())
        if "peak_rss_mib" in r:
            measured = "peak RSS, MiB: " + ", ".join(f"{who} rows: {mib}" for who, mib in r["peak_rss_mib"].items())
        lines.append(f"| {r['figure']} | {r['value']:g} | {r['target']} | {r['verdict']} | {measured} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--steps", default="duckdb,forest,postgres,model_load,peak_memory",
                        help="Comma-separated steps to run (e.g. forest alone); default all.")
    parser.add_argument("--out", default="latest.json", help="The results file, in benchmarks/results.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-") as folder:
        bench = Bench(Path(folder), args.rows, args.big_rows, args.memory_rows, args.repeat)
        bench.setup()
        for step in [getattr(bench, name) for name in args.steps.split(",")]:
            print(f"... {step.__name__}", flush=True)
            step()
    results = verdicts(bench)
    table = markdown(results)
    print("\n" + table)
    out = Path(__file__).parent / "results" / args.out
    out.write_text(json.dumps({"rows": args.rows, "big_rows": args.big_rows, "memory_rows": args.memory_rows,
                               "repeat": args.repeat,
                               "cores": os.cpu_count(), "peak_rss_mib": bench.memory, "figures": results,
                               "samples": {name: [asdict(s) for s in taken]
                                           for name, taken in bench.figures.samples.items()}},
                              indent=2) + "\n")
    print(f"\nwritten to {out}")
    if any(r["verdict"] != "met" for r in results):
        print("some targets are NOT met: " + ", ".join(
            re.sub(r" \(s\)$", "", r["figure"]) for r in results if r["verdict"] != "met"))


if __name__ == "__main__":
    main()
