"""Publishing rows into PostgreSQL: batchcast against raw adbc_ingest and pandas to_sql doing the same work.

    .venv/bin/python benchmarks/postgres_publish.py [--rows 1000000] [--repeat 5] [--pandas-repeat 1]

The work, for every contender, is what batchcast's publish does: replace one
logical date's rows, in one transaction, of a table that already holds another
date's: DELETE the date's rows, insert the new ones (the 3 columns of data and
batchcast's 4 stamps), commit. Each sample takes a new date, as a daily run
does: its DELETE finds no rows but scans the table.

- batchcast publish: ``Warehouse.publish``, which stamps the rows itself.
- raw adbc: the stamps appended with pyarrow, then DELETE and
  ``adbc_ingest(mode="append")`` on one connection and one commit.
- pandas to_sql: the same stamped rows, DELETE and ``to_sql(if_exists="append")``
  in one SQLAlchemy transaction.

Every contender is a whole process (this script with ``--one``: interpreter
start, imports, reading the rows from a Parquet file written once, connecting,
publishing), raced as ``benchmarks/rounds.py`` says; its CPU seconds and peak
memory are the client's, not the server's. pandas, at ~35k rows/s, has a race
of its own of ``--pandas-repeat`` rounds after its warm-up: in every round of
the main race it would add minutes. PostgreSQL is a throwaway cluster on
127.0.0.1, as the tests start it. Results go to
``benchmarks/results/postgres_publish.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import rounds

RUN_ID, MODEL_RUN = "bench/1/application/20260101T000000000000Z", "bench/1/training/20260101T000000000000Z"
SEED_DAY = dt.date(2025, 12, 31)  # the date every table holds before the race


def data(rows: int) -> pa.Table:
    import numpy as np

    rng = np.random.default_rng(0)
    return pa.table({"player_id": pa.array([f"p{i}" for i in range(rows)]),
                     "label": pa.array(rng.random(rows) > 0.5), "score": pa.array(rng.random(rows))})


def stamped(table: pa.Table, day: dt.date) -> pa.Table:
    """``table`` with the four columns batchcast stamps on every row."""
    n = table.num_rows
    for name, value, kind in [("_logical_date", day, pa.date32()), ("_run_id", RUN_ID, pa.string()),
                              ("_model_run", MODEL_RUN, pa.string()),
                              ("_predicted_at", dt.datetime.now(dt.UTC), pa.timestamp("us", tz="UTC"))]:
        table = table.append_column(name, pa.repeat(pa.scalar(value, kind), n))
    return table


def batchcast_publish(url: str, table: pa.Table, day: dt.date) -> None:
    from batchcast.data.schema import Schema
    from batchcast.warehouses import open_warehouse

    schema = Schema.parse("player_id:STRING,label:BOOL,score:FLOAT64")
    with open_warehouse(url) as wh:
        wh.publish(TABLES["batchcast publish"], schema, table.to_batches(65536), logical_date=day, run_id=RUN_ID,
                   model_run=MODEL_RUN, source="bench")


def adbc_publish(url: str, table: pa.Table, day: dt.date) -> None:
    import adbc_driver_postgresql.dbapi as pg

    name = TABLES["raw adbc"]
    with pg.connect(url) as conn, conn.cursor() as cur:  # not autocommit: one transaction to the commit
        cur.execute(f"DELETE FROM {name} WHERE _logical_date = $1", (day,))
        cur.adbc_ingest(name, stamped(table, day), mode="append")
        conn.commit()


def pandas_publish(url: str, table: pa.Table, day: dt.date) -> None:
    from sqlalchemy import create_engine, text

    name = TABLES["pandas to_sql"]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.begin() as conn:  # to_sql joins the transaction it is given
        conn.execute(text(f"DELETE FROM {name} WHERE _logical_date = :day"), {"day": day})
        stamped(table, day).to_pandas().to_sql(name, conn, if_exists="append", index=False)
    engine.dispose()


TABLES = {"batchcast publish": "bench_batchcast", "raw adbc": "bench_adbc", "pandas to_sql": "bench_pandas"}
PUBLISH = {"batchcast publish": batchcast_publish, "raw adbc": adbc_publish, "pandas to_sql": pandas_publish}


def prepare(url: str, table: pa.Table) -> None:
    """Every contender's table, created alike and holding ``SEED_DAY``'s rows."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as conn, conn.cursor() as cur:
        for name in TABLES.values():
            cur.adbc_ingest(name, stamped(table, SEED_DAY), mode="create")
        conn.commit()


def counts(url: str, rows: int) -> dict[str, tuple[int, int]]:
    """Each table's rows and dates after the races; raises SystemExit unless every date holds all ``rows``."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as conn, conn.cursor() as cur:
        found = {}
        for contender, name in TABLES.items():
            cur.execute(f"SELECT count(*), count(DISTINCT _logical_date) FROM {name}")
            found[contender] = cur.fetchone()
    wrong = {name: got for name, got in found.items() if got[0] != rows * got[1]}
    if wrong:
        raise SystemExit(f"a contender did not publish all {rows:,} rows of each date (rows, dates): {wrong}")
    return found


def race(url: str, parquet: Path, args: argparse.Namespace) -> dict[str, list[rounds.Sample]]:
    days = (SEED_DAY + dt.timedelta(days=i) for i in itertools.count(1))

    def contender(name: str):
        return lambda: rounds.process([sys.executable, __file__, "--one", name, url, str(parquet),
                                       next(days).isoformat()])

    samples = rounds.race({name: contender(name) for name in ("batchcast publish", "raw adbc")}, args.repeat)
    if args.pandas_repeat:
        samples |= rounds.race({"pandas to_sql": contender("pandas to_sql")}, args.pandas_repeat)
    return samples


def report(samples: dict[str, list[rounds.Sample]], args: argparse.Namespace, tables: dict) -> None:
    summaries = {name: rounds.summary(taken) for name, taken in samples.items()}
    raw = summaries["raw adbc"]["wall_s"]["median"]
    print("| contender | wall s, median (min-max) | rows/s | vs raw adbc | CPU s | peak MiB | samples |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for name, s in summaries.items():
        wall = s["wall_s"]["median"]
        print(f"| {name} | {rounds.spread(s['wall_s'])} | {args.rows / wall:,.0f} | {raw / wall:.2f} | "
              f"{s['cpu_s']['median']:.2f} | {s['peak_mib']['median']:.0f} | {s['samples']} |")
    if "pandas to_sql" in samples:
        print(f"pandas to_sql: {args.pandas_repeat} round(s) of its own after its warm-up (--pandas-repeat)")
    print("each table: " + ", ".join(f"{name} {r:,} rows over {d} dates" for name, (r, d) in tables.items()))
    out = Path(__file__).parent / "results" / "postgres_publish.json"
    out.write_text(json.dumps({"rows": args.rows, "repeat": args.repeat, "pandas_repeat": args.pandas_repeat,
                               "cores": os.cpu_count(), "tables": tables,
                               "contenders": {name: {**summaries[name], "all": [asdict(x) for x in taken]}
                                              for name, taken in samples.items()}}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of batchcast and raw adbc after the warm-up")
    parser.add_argument("--pandas-repeat", type=int, default=1, help="rounds of pandas to_sql; 0 leaves it out")
    parser.add_argument("--one", nargs=4, metavar=("CONTENDER", "URL", "PARQUET", "DATE"),
                        help="(internal) one contender's publish, as a process of its own")
    args = parser.parse_args()
    if args.one:
        name, url, parquet, day = args.one
        PUBLISH[name](url, pq.read_table(parquet), dt.date.fromisoformat(day))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.services import postgres

    table = data(args.rows)
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-pg-") as tmp, postgres() as url:
        parquet = Path(tmp) / "rows.parquet"
        pq.write_table(table, parquet)
        prepare(url, table)
        samples = race(url, parquet, args)
        tables = counts(url, args.rows)
    report(samples, args, tables)


if __name__ == "__main__":
    main()
