"""The script a data scientist would write by hand, doing the work a batchcast application does.

    python benchmarks/baseline.py WAREHOUSE_URL QUERY MODEL_FILE TABLE DATE MODEL_RUN [--batch-size N]

It streams the query's rows in Arrow batches, feeds the model the features
it was trained on (as batchcast does, in the form ``[model] input_format``
names), adds the four stamp columns, and replaces the date's rows of
``TABLE`` in one transaction. WAREHOUSE_URL is ``duckdb:///PATH`` or a
``postgresql://`` URL (written with ADBC). Everything is imported here, in
the process, as a script pays for it: the benchmark times whole processes.
"""

import argparse
import datetime as dt
import json
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa


def features(batch: pa.RecordBatch, names: list[str], fmt: str):
    selected = batch.select(names)
    if fmt == "numpy":
        return np.column_stack([c.to_numpy(zero_copy_only=False) for c in selected.columns])
    return selected.to_pandas() if fmt == "pandas" else selected


def scored(reader, model, meta, args) -> pa.RecordBatchReader:
    schema = pa.schema([("player_id", pa.string()), ("label", pa.bool_()), ("_logical_date", pa.date32()),
                        ("_run_id", pa.string()), ("_model_run", pa.string()),
                        ("_predicted_at", pa.timestamp("us", tz="UTC"))])
    stamps = [dt.date.fromisoformat(args.date), f"script/{args.date}", args.model_run, dt.datetime.now(dt.UTC)]

    def batches():
        for batch in reader:
            label = pa.array(np.asarray(model.predict(features(batch, meta["features"], meta["input_format"]))))
            extra = [pa.repeat(pa.scalar(v, f.type), batch.num_rows)
                     for v, f in zip(stamps, list(schema)[2:], strict=True)]
            yield pa.RecordBatch.from_arrays([batch.column("player_id"), label, *extra], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def duckdb_run(args, model, meta) -> None:
    import duckdb

    con = duckdb.connect(args.url.removeprefix("duckdb://"))
    out = scored(con.cursor().sql(args.query).to_arrow_reader(args.batch_size), model, meta, args)
    con.execute("BEGIN")
    con.execute(f"DELETE FROM {args.table} WHERE _logical_date = ?", [args.date])
    con.register("out", out)
    con.execute(f"INSERT INTO {args.table} SELECT * FROM out")
    con.execute("COMMIT")


def postgres_run(args, model, meta) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(args.url) as source, pg.connect(args.url) as target, source.cursor() as read, \
            target.cursor() as write:
        read.execute(args.query)
        out = scored(read.fetch_record_batch(), model, meta, args)  # batches of the driver's own size
        write.execute(f"DELETE FROM {args.table} WHERE _logical_date = '{args.date}'")
        write.adbc_ingest(args.table, out, mode="append")
        target.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("url", "query", "model", "table", "date", "model_run"):
        parser.add_argument(name)
    parser.add_argument("--batch-size", type=int, default=65536, help="rows per Arrow batch read from DuckDB")
    args = parser.parse_args()
    model = joblib.load(args.model)
    meta = json.loads((Path(args.model).parent / "model_meta.json").read_text())
    (duckdb_run if args.url.startswith("duckdb://") else postgres_run)(args, model, meta)


if __name__ == "__main__":
    main()
