"""``make bench``: every comparison of the benchmarks issue, side by side, in one run.

Each figure is the median of ``--repeat`` runs after a warm-up. Data is
generated with a fixed seed. The same fitted model (a scikit-learn
LogisticRegression on 8 float features, trained once through batchcast) is
applied by every contender. Results go to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batchcast import Service  # noqa: E402
from batchcast.models import load  # noqa: E402
from tests.services import postgres  # noqa: E402

FEATURES = [f"f{i}" for i in range(1, 9)]
DATE = "2026-01-01"
# Each batchcast application publishes the next day, as a daily schedule does;
# re-running one date also deletes its old rows, a cost the baselines never pay.
DAYS = (str(dt.date(2026, 1, 1) + dt.timedelta(days=i)) for i in range(100_000))


def generate(rows: int, seed: int, labelled: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8))
    columns = {"player_id": pa.array([f"p{i}" for i in range(rows)])}
    columns.update({name: X[:, i] for i, name in enumerate(FEATURES)})
    if labelled:
        columns["churned"] = X @ np.linspace(-1, 1, 8) + rng.normal(scale=0.5, size=rows) > 0
    return pa.table(columns)


def with_stamps(table: pa.Table, model_run: str) -> pa.Table:
    """The four columns batchcast adds to every row, for an optimal script that writes them too."""
    n, now = table.num_rows, dt.datetime.now(dt.UTC)
    for name, value, kind in [("_logical_date", dt.date(2026, 1, 1), pa.date32()),
                              ("_run_id", "bench/1/application/20260101T000000000000Z", pa.string()),
                              ("_model_run", model_run, pa.string()),
                              ("_predicted_at", now, pa.timestamp("us", tz="UTC"))]:
        table = table.append_column(name, pa.repeat(pa.scalar(value, kind), n))
    return table


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def write_spec(root: Path, table: str, name: str = "bench", warehouse: Path | None = None, extra: str = "") -> Path:
    """The benchmark service's spec; ``warehouse`` (an absolute path) for services sharing one DuckDB file."""
    (root / "repo").mkdir(parents=True, exist_ok=True)
    spec = root / "batchcast.toml"
    url = f'[warehouse]\nurl = "duckdb:///{warehouse}"\n' if warehouse else ""
    spec.write_text(textwrap.dedent(f'''
        [service]
        name = "{name}"
        version = "1"
        ''') + url + textwrap.dedent(f'''
        [model]
        path = "repo"
        entrypoint = "sklearn.linear_model:LogisticRegression"
        label = "churned"
        ids = ["player_id"]
        [actions.training]
        executor = "inline"
        input = {{ query = "SELECT * FROM train" }}
        [actions.application]
        executor = "inline"
        input = {{ query = "SELECT * FROM {table}" }}
        output = {{ table = "scores{'_' + name if warehouse else ''}", schema = "player_id:STRING,label:BOOL" }}
        ''') + extra)
    return spec


class Bench:
    def __init__(self, root: Path, rows: int, pandas_rows: int, repeat: int):
        self.root, self.rows, self.pandas_rows, self.repeat = root, rows, pandas_rows, repeat
        self.db = root / ".batchcast" / "warehouse.duckdb"
        self.results: dict[str, dict] = {}

    def record(self, group: str, name: str, seconds: float, rows: int | None = None, **extra) -> None:
        entry = {"seconds": round(seconds, 4), **extra}
        if rows:
            entry["rows_per_s"] = round(rows / seconds)
        self.results.setdefault(group, {})[name] = entry

    # -- set-up ------------------------------------------------------------

    def setup(self) -> None:
        self.db.parent.mkdir(parents=True)
        self.spec = write_spec(self.root, "features")
        con = duckdb.connect(str(self.db))
        for name, table in [("train", generate(100_000, 1, True)), ("features", generate(self.rows, 2, False)),
                            ("small", generate(1_000, 3, False))]:
            con.register("t", table)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM t")
            con.unregister("t")
        con.close()
        trained = Service(self.spec).run("training")
        assert trained.succeeded, trained.error
        self.model_run = trained.run_id
        folder = self.root / "model"
        Service(self.spec).store.fetch(trained, "output", folder)
        self.model, _ = load(folder, self.root / "repo")

    # -- application into DuckDB -------------------------------------------------

    def duckdb_application(self) -> None:
        def batchcast_run():
            manifest = Service(self.spec).run("application", next(DAYS))
            assert manifest.rows["written"] == self.rows, manifest.error

        def optimal(stamps: bool = False):
            con = duckdb.connect(str(self.db))
            table = con.sql("SELECT * FROM features").to_arrow_table()
            X = np.column_stack([table[c].to_numpy() for c in FEATURES])
            out = pa.table({"player_id": table["player_id"], "label": self.model.predict(X)})
            con.register("out", with_stamps(out, self.model_run) if stamps else out)
            con.execute("CREATE OR REPLACE TABLE scores_optimal AS SELECT * FROM out")
            con.close()

        self.record("duckdb", "batchcast", timed(batchcast_run, self.repeat), self.rows)
        self.record("duckdb", "optimal arrow", timed(optimal, self.repeat), self.rows)
        self.record("duckdb", "optimal arrow + stamps", timed(lambda: optimal(True), self.repeat), self.rows)
        self.record("duckdb", "pandas script", timed(lambda: self.pandas_script(f"duckdb:///{self.db}"), self.repeat),
                    self.pandas_rows)

    def pandas_script(self, engine_url: str) -> None:
        """What a data scientist would write: read_sql, predict, to_sql (on ``pandas_rows`` rows)."""
        import pandas as pd
        from sqlalchemy import create_engine

        engine = create_engine(engine_url)
        df = pd.read_sql(f"SELECT * FROM features LIMIT {self.pandas_rows}", engine)
        df["label"] = self.model.predict(df[FEATURES])
        with engine.begin() as conn:  # duckdb_engine cannot reflect a table for if_exists="replace"
            conn.exec_driver_sql("DROP TABLE IF EXISTS scores_pandas")
        df[["player_id", "label"]].to_sql("scores_pandas", engine, index=False)
        engine.dispose()

    # -- application into PostgreSQL -------------------------------------------------

    def postgres_application(self) -> None:
        import adbc_driver_postgresql.dbapi as pg

        with postgres() as url:
            con = duckdb.connect(str(self.db), read_only=True)
            features = con.sql("SELECT * FROM features").to_arrow_table()
            con.close()
            with pg.connect(url) as conn, conn.cursor() as cur:
                cur.adbc_ingest("features", features, mode="replace")
                conn.commit()
            service = Service(self.spec, overrides={"warehouse": {"url": url}})

            def batchcast_run():
                manifest = service.run("application", next(DAYS))
                assert manifest.rows["written"] == self.rows, manifest.error

            def optimal(stamps: bool = False):
                with pg.connect(url) as conn, conn.cursor() as cur:
                    cur.execute("SELECT * FROM features")
                    table = cur.fetch_arrow_table()
                    X = np.column_stack([table[c].to_numpy() for c in FEATURES])
                    out = pa.table({"player_id": table["player_id"], "label": self.model.predict(X)})
                    cur.adbc_ingest("scores_optimal", with_stamps(out, self.model_run) if stamps else out,
                                    mode="replace")
                    conn.commit()

            self.record("postgres", "batchcast", timed(batchcast_run, self.repeat), self.rows)
            self.record("postgres", "optimal arrow (adbc)", timed(optimal, self.repeat), self.rows)
            self.record("postgres", "optimal arrow + stamps", timed(lambda: optimal(True), self.repeat), self.rows)
            pandas_url = url.replace("postgresql://", "postgresql+psycopg2://")
            self.record("postgres", "pandas script", timed(lambda: self.pandas_script(pandas_url), self.repeat),
                        self.pandas_rows)

    # -- overhead on a tiny input ------------------------------------------------

    def overhead(self) -> None:
        small = self.root / "small"
        small.mkdir()
        spec = write_spec(small, "small")
        spec.write_text(spec.read_text().replace('"repo"', '"../repo"').replace(
            "[warehouse]", "") + f'\n[warehouse]\nurl = "duckdb:///{self.db}"\n'
            f'[storage]\nurl = "{self.root}/.batchcast/artifacts"\n')
        cli = str(Path(sys.executable).parent / "batchcast")

        def run(*argv):
            subprocess.run(argv, check=True, capture_output=True, cwd=small)

        direct = textwrap.dedent(f"""
            import duckdb, numpy as np, pyarrow as pa, skops.io as sio, glob
            path = glob.glob("{self.root}/model/model.*")[0]
            data = open(path, "rb").read()
            model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
            con = duckdb.connect("{self.db}")
            t = con.sql("SELECT * FROM small").to_arrow_table()
            X = np.column_stack([t[c].to_numpy() for c in {FEATURES!r}])
            con.register("out", pa.table({{"player_id": t["player_id"], "label": model.predict(X)}}))
            con.execute("CREATE OR REPLACE TABLE scores_direct AS SELECT * FROM out")
            """)
        base = ["run", "application", "--date", DATE, "--model", self.model_run]
        self.record("overhead", "python -c (direct)", timed(lambda: run(sys.executable, "-c", direct), self.repeat))
        self.record("overhead", "batchcast inline", timed(lambda: run(cli, *base, "--executor", "inline"), self.repeat))
        self.record("overhead", "batchcast local (warm venv)",
                    timed(lambda: run(cli, *base, "--executor", "local"), self.repeat))

    # -- training ------------------------------------------------------------------

    def training(self) -> None:
        from sklearn.linear_model import LogisticRegression

        def batchcast_run():
            assert Service(self.spec).run("training").succeeded

        def direct():
            con = duckdb.connect(str(self.db), read_only=True)
            t = con.sql("SELECT * FROM train").to_arrow_table()
            con.close()
            X = np.column_stack([t[c].to_numpy() for c in FEATURES])
            LogisticRegression().fit(X, t["churned"].to_numpy())

        self.record("training", "direct fit", timed(direct, self.repeat), 100_000)
        self.record("training", "batchcast", timed(batchcast_run, self.repeat), 100_000)

    # -- memory ----------------------------------------------------------------------

    def memory(self) -> None:
        measure = textwrap.dedent("""
            import re, sys
            from batchcast import Service
            m = Service(sys.argv[1]).run("application", "2026-01-01", executor="inline")
            assert m.succeeded, m.error
            print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
            """)
        for rows in (1_000_000, 10_000_000):
            con = duckdb.connect(str(self.db))
            con.execute("SELECT setseed(0.5)")
            con.execute("CREATE OR REPLACE TABLE features AS SELECT 'p' || i AS player_id, "
                        + ", ".join(f"random() AS {f}" for f in FEATURES) + f" FROM range({rows}) t(i)")
            con.close()
            out = subprocess.run([sys.executable, "-c", measure, str(self.spec)], check=True,
                                 capture_output=True, text=True).stdout.split()[-1]
            self.results.setdefault("memory", {})[f"{rows:,} rows"] = {"peak_rss_mib": round(int(out) / 1024)}


def ratios(r: dict) -> list[tuple[str, float, str, bool]]:
    def speed(group, name):
        return r[group][name]["rows_per_s"]

    mem = r["memory"]
    overhead = r["overhead"]["batchcast inline"]["seconds"] - r["overhead"]["python -c (direct)"]["seconds"]
    return [
        ("duckdb: batchcast / optimal arrow", speed("duckdb", "batchcast") / speed("duckdb", "optimal arrow"),
         ">= 0.8", None),
        ("duckdb: batchcast / pandas script", speed("duckdb", "batchcast") / speed("duckdb", "pandas script"),
         ">= 20", None),
        ("postgres: batchcast / optimal arrow", speed("postgres", "batchcast")
         / speed("postgres", "optimal arrow (adbc)"), ">= 0.8", None),
        ("duckdb: batchcast / optimal + stamps", speed("duckdb", "batchcast")
         / speed("duckdb", "optimal arrow + stamps"), "report", None),
        ("postgres: batchcast / optimal + stamps", speed("postgres", "batchcast")
         / speed("postgres", "optimal arrow + stamps"), "report", None),
        ("postgres: batchcast / pandas script", speed("postgres", "batchcast")
         / speed("postgres", "pandas script"), ">= 20", None),
        ("memory: 10M / 1M", mem["10,000,000 rows"]["peak_rss_mib"] / mem["1,000,000 rows"]["peak_rss_mib"],
         "<= 1.5", None),
        ("overhead: inline - direct (s)", overhead, "<= 0.5", None),
        ("training: batchcast / direct (time)", r["training"]["batchcast"]["seconds"]
         / r["training"]["direct fit"]["seconds"], "report", None),
    ]


def met(value: float, goal: str) -> str:
    if goal == "report":
        return "-"
    op, bound = goal.split()
    ok = value >= float(bound) if op == ">=" else value <= float(bound)
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pandas-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-") as folder:
        bench = Bench(Path(folder), args.rows, args.pandas_rows, args.repeat)
        bench.setup()
        for step in (bench.duckdb_application, bench.postgres_application, bench.overhead, bench.training,
                     bench.memory):
            print(f"... {step.__name__}", flush=True)
            step()
    results = bench.results
    print(f"\n{'group':<10}{'contender':<30}{'median s':>10}{'rows/s':>13}")
    for group, entries in results.items():
        for name, e in entries.items():
            if "seconds" in e:
                print(f"{group:<10}{name:<30}{e['seconds']:>10.3f}{e.get('rows_per_s', ''):>13}")
            else:
                print(f"{group:<10}{name:<30}{'peak RSS':>10}{str(e['peak_rss_mib']) + ' MiB':>13}")
    print(f"\n{'ratio':<42}{'value':>8}  {'goal':<8}{'':>8}")
    summary = []
    for name, value, goal, _ in ratios(results):
        summary.append({"ratio": name, "value": round(value, 3), "goal": goal, "verdict": met(value, goal)})
        print(f"{name:<42}{value:>8.2f}  {goal:<8}{met(value, goal):>8}")
    out = Path(__file__).parent / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "pandas_rows": args.pandas_rows, "repeat": args.repeat,
                               "results": results, "ratios": summary}, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
