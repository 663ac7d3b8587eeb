"""Publishing 1M rows into PostgreSQL: batchcast vs raw adbc_ingest vs pandas to_sql, in one run.

    .venv/bin/python benchmarks/postgres_publish.py [--rows 1000000] [--repeat 5]

Starts a throwaway PostgreSQL on 127.0.0.1 (as the tests do), generates the
rows once (seeded), and times each contender on the same data. pandas
``to_sql`` runs once: at ~20k rows/s a median of five would take minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batchcast.data.schema import Schema  # noqa: E402
from batchcast.warehouses import open_warehouse  # noqa: E402
from tests.services import postgres  # noqa: E402

SCHEMA = Schema.parse("player_id:STRING,label:BOOL,score:FLOAT64")


def data(rows: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({"player_id": pa.array([f"p{i}" for i in range(rows)]),
                     "label": pa.array(rng.random(rows) > 0.5), "score": pa.array(rng.random(rows))})


DAYS = iter(dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(10_000))


def batchcast_publish(url: str, table: pa.Table) -> None:
    # A new logical date each time: this measures delivery, not the DELETE of a rerun.
    with open_warehouse(url) as wh:
        wh.publish("bench_batchcast", SCHEMA, table.to_batches(65536), logical_date=next(DAYS),
                   run_id="bench/1/application/20260101T000000000000Z",
                   model_run="bench/1/training/20260101T000000000000Z", source="bench")


def stamped(table: pa.Table) -> pa.Table:
    """The same seven columns batchcast writes, built once, outside the timing."""
    n, now = table.num_rows, dt.datetime.now(dt.UTC)
    for name, value, kind in [("_logical_date", dt.date(2026, 1, 1), pa.date32()),
                              ("_run_id", "bench/1/application/20260101T000000000000Z", pa.string()),
                              ("_model_run", "bench/1/training/20260101T000000000000Z", pa.string()),
                              ("_predicted_at", now, pa.timestamp("us", tz="UTC"))]:
        table = table.append_column(name, pa.repeat(pa.scalar(value, kind), n))
    return table


def adbc_ingest(url: str, table: pa.Table, name: str = "bench_adbc") -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as conn, conn.cursor() as cur:
        cur.adbc_ingest(name, table, mode="replace")
        conn.commit()


def pandas_to_sql(url: str, table: pa.Table) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    table.to_pandas().to_sql("bench_pandas", engine, if_exists="replace", index=False)
    engine.dispose()


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    table = data(args.rows)
    seven = stamped(table)
    results = {}
    with postgres() as url:
        for name, fn, rows, repeat in [("batchcast publish", batchcast_publish, table, args.repeat),
                                       ("raw adbc_ingest", adbc_ingest, table, args.repeat),
                                       ("raw adbc, 7 columns", adbc_ingest, seven, args.repeat),
                                       ("pandas to_sql", pandas_to_sql, table, 1)]:
            fn(url, rows.slice(0, 1000))  # warm-up: connections, table creation
            seconds = statistics.median(timed(fn, url, rows) for _ in range(repeat))
            results[name] = {"seconds": round(seconds, 3), "rows_per_s": round(args.rows / seconds), "repeat": repeat}
    base = results["raw adbc_ingest"]["rows_per_s"]
    print(f"{'contender':<20}{'median s':>10}{'rows/s':>12}{'vs adbc':>9}")
    for name, r in results.items():
        print(f"{name:<20}{r['seconds']:>10.2f}{r['rows_per_s']:>12,}{r['rows_per_s'] / base:>9.2f}")
    out = Path(__file__).parent / "results" / "postgres_publish.json"
    out.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))


if __name__ == "__main__":
    main()
