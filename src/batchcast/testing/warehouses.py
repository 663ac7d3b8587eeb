"""The warehouse contract: a backend's test module supplies the fixture ``warehouse``, inherits ``WarehouseContract``.

``warehouse`` is an open ``Warehouse`` in which no table ``preds`` exists yet
(a fresh file, schema or dataset per test). ``batches`` and ``publish`` are
there for a backend's own tests beside the suite.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from batchcast.data.schema import Schema
from batchcast.errors import SchemaError, SpecError

SCHEMA = Schema.parse("player_id:STRING,label:BOOL,score:FLOAT64")
DAY1, DAY2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def batches(n: int, start: int = 0, size: int = 1000):
    for lo in range(start, start + n, size):
        ids = range(lo, min(lo + size, start + n))
        yield pa.record_batch({"player_id": [f"p{i}" for i in ids], "label": [i % 2 == 0 for i in ids],
                               "score": [i / 10 for i in ids]})


def publish(wh, day, data, table="preds", run="svc/1/application/1"):
    return wh.publish(table, SCHEMA, data, logical_date=day, run_id=run, model_run="svc/1/training/0",
                      source="test")


class WarehouseContract:
    def test_creates_table_from_schema_with_stamps(self, warehouse):
        assert warehouse.columns("preds") is None
        assert publish(warehouse, DAY1, batches(2500)) == 2500
        assert warehouse.columns("preds") == {
            "player_id": "STRING", "label": "BOOL", "score": "FLOAT64", "_logical_date": "DATE",
            "_run_id": "STRING", "_model_run": "STRING", "_predicted_at": "TIMESTAMP"}
        row = warehouse.read("SELECT * FROM preds WHERE player_id = 'p3'").read_all().to_pylist()[0]
        assert row["label"] is False and row["_logical_date"] == DAY1
        assert row["_run_id"] == "svc/1/application/1" and row["_model_run"] == "svc/1/training/0"
        assert row["_predicted_at"] is not None

    def test_republishing_a_date_replaces_it(self, warehouse):
        publish(warehouse, DAY1, batches(2500))
        publish(warehouse, DAY1, batches(2000), run="svc/1/application/2")
        publish(warehouse, DAY2, batches(700))
        assert warehouse.count("preds", DAY1) == 2000
        assert warehouse.count("preds", DAY2) == 700
        assert warehouse.count("preds") == 2700
        runs = warehouse.read("SELECT DISTINCT _run_id FROM preds WHERE _logical_date = DATE '2026-01-01'")
        assert runs.read_all()["_run_id"].to_pylist() == ["svc/1/application/2"]

    def test_a_sub_daily_period_replaces_only_its_own_rows(self, warehouse):
        h13, h14 = (dt.datetime(2026, 1, 1, h, tzinfo=dt.UTC) for h in (13, 14))
        publish(warehouse, h13, batches(300))
        publish(warehouse, h14, batches(200))
        publish(warehouse, h13, batches(100), run="svc/1/application/2")
        assert warehouse.columns("preds")["_interval_start"] == "TIMESTAMP"
        assert (warehouse.count("preds", h13), warehouse.count("preds", h14)) == (100, 200)
        assert warehouse.count("preds", DAY1) == 300  # both periods are of the day 2026-01-01
        rows = warehouse.read("SELECT DISTINCT _run_id, _interval_start FROM preds").read_all().to_pylist()
        assert sorted((r["_run_id"], r["_interval_start"].astimezone(dt.UTC)) for r in rows) == [
            ("svc/1/application/1", h14), ("svc/1/application/2", h13)]

    def test_a_daily_table_refuses_sub_daily_rows_naming_the_migration_and_keeps_its_own(self, warehouse):
        publish(warehouse, DAY1, batches(500))
        h13 = dt.datetime(2026, 1, 2, 13, tzinfo=dt.UTC)
        with pytest.raises(SchemaError) as refused:
            publish(warehouse, h13, batches(10))
        assert f"ADD COLUMN _interval_start {warehouse.timestamp_type}" in refused.value.fix
        assert warehouse.count("preds") == 500 and "_interval_start" not in warehouse.columns("preds")
        # Running the statement, and publishing after it, is tested through the CLI on DuckDB (test_periods):
        # here a read's connection stays open until the warehouse closes, and PostgreSQL's ALTER would wait on it.

    def test_append_adds_rows_and_keeps_the_dates_others(self, warehouse):
        publish(warehouse, DAY1, batches(2500))
        added = warehouse.publish("preds", SCHEMA, batches(10, start=5000), logical_date=DAY1, run_id="svc/1/serve/1",
                                  model_run="svc/1/training/0", source="test", append=True)
        assert added == 10 and warehouse.count("preds", DAY1) == 2510
        assert warehouse.publish("preds", SCHEMA, iter(()), logical_date=DAY1, run_id="svc/1/serve/1",
                                 model_run=None, source="test", append=True) == 0
        assert warehouse.count("preds", DAY1) == 2510

    def test_failure_mid_stream_leaves_the_table_untouched(self, warehouse):
        publish(warehouse, DAY1, batches(1500))

        def broken():
            yield from batches(1000)
            raise RuntimeError("model exploded")

        with pytest.raises(RuntimeError):
            publish(warehouse, DAY1, broken(), run="svc/1/application/bad")
        assert warehouse.count("preds", DAY1) == 1500

    def test_bad_value_is_a_schema_error_and_nothing_is_written(self, warehouse):
        publish(warehouse, DAY1, batches(100))

        def bad():
            yield from batches(1000)
            yield pa.record_batch({"player_id": ["x"], "label": ["maybe"], "score": [1.0]})

        with pytest.raises(SchemaError, match="column 'label' cannot be read as BOOL"):
            publish(warehouse, DAY1, bad())
        assert warehouse.count("preds", DAY1) == 100

    def test_declared_schema_must_match_existing_table(self, warehouse):
        publish(warehouse, DAY1, batches(10))
        other = Schema.parse("player_id:STRING,label:STRING,score:FLOAT64")
        declared = "table preds has columns .*label:BOOL.* declared schema is .*label:STRING"
        with pytest.raises(SchemaError, match=declared):
            warehouse.publish("preds", other, batches(5), logical_date=DAY2, run_id="r", model_run=None, source="t")
        assert warehouse.count("preds") == 10

    @pytest.mark.parametrize("hostile", ['preds"; DROP TABLE x; --', "a.b.c", "pr\u00e9ds", "my table",
                                         "1preds", "preds'", "preds`", ""])
    def test_hostile_identifiers_are_refused(self, warehouse, hostile):
        with pytest.raises(SpecError, match="is not a valid table"):
            publish(warehouse, DAY1, batches(1), table=hostile)
        with pytest.raises(SpecError):
            warehouse.count(hostile)

    def test_identifiers_are_validated_and_quoted(self, warehouse):
        quoted = warehouse.quote("analytics.preds")
        assert quoted.startswith(warehouse.quote_char) and quoted.endswith(warehouse.quote_char)
        assert "analytics" in quoted and "preds" in quoted
        publish(warehouse, DAY1, batches(5), table="analytics.preds")
        assert warehouse.count("analytics.preds") == 5

    def test_read_streams_batches(self, warehouse):
        publish(warehouse, DAY1, batches(5000))
        reader = warehouse.read("SELECT player_id FROM preds", batch_size=1000)
        sizes = [b.num_rows for b in reader]
        assert sum(sizes) == 5000 and max(sizes) <= 2048

    def test_slices_of_a_query_hold_every_row_once(self, warehouse):
        """What Beam's workers read: parts by a hash of the ids, NULL ids included, spread over every part."""
        publish(warehouse, DAY1, batches(3000))
        publish(warehouse, DAY2, [pa.record_batch({"player_id": [None, "p1"], "label": [True, True],
                                                   "score": [0.5, 0.5]})])
        query = f"SELECT player_id, {warehouse.quote_ident('_logical_date')} AS day FROM preds;"  # a trailing ;
        parts = [warehouse.read(warehouse.slice(query, ["player_id", "day"], 4, i)).read_all() for i in range(4)]
        seen = [(p, str(d)) for part in parts for p, d in zip(part["player_id"].to_pylist(),
                                                              part["day"].to_pylist(), strict=True)]
        assert len(seen) == 3002 and len(set(seen)) == 3002
        assert min(part.num_rows for part in parts) > 500  # hashed, not one part holding everything
        with pytest.raises(SpecError, match="not a valid"):
            warehouse.slice(query, ["player_id; DROP TABLE preds"], 4, 0)


STREAMED = Schema.parse("player_id:STRING,score:FLOAT64")


def streamed(offsets, partition: int = 0, source: str = "events", score=None) -> pa.Table:
    """A stream's scored rows for Kafka ``offsets`` of one partition, stamped as ``batchcast stream`` stamps them."""
    now = dt.datetime.now(dt.UTC)
    n = len(offsets)
    return pa.table({
        "player_id": [f"p{o}" for o in offsets], "score": score if score is not None else [o / 10 for o in offsets],
        "_model_run": ["svc/1/training/0"] * n, "_predicted_at": [now] * n, "_received_at": [now] * n,
        "_source": [source] * n, "_partition": [partition] * n, "_offset": list(offsets),
        "_message_id": [f"{source}/{partition}/{o}" for o in offsets]})


class DeliveryContract:
    """``Warehouse.deliver``: a stream's rows and its positions in one transaction, each input once."""

    def test_a_batch_delivered_again_adds_only_what_is_new(self, warehouse):
        first = warehouse.deliver("preds", STREAMED, streamed(range(10)), consumer="g", positions={("events", 0): 10})
        assert first == 10
        again = warehouse.deliver("preds", STREAMED, streamed(range(5, 15)), consumer="g",
                                  positions={("events", 0): 15})
        assert again == 5 and warehouse.count("preds") == 15
        assert warehouse.positions("g", [("events", 0), ("events", 1)]) == {("events", 0): 15}

    def test_a_zombie_behind_the_stored_position_adds_nothing_and_moves_nothing(self, warehouse):
        warehouse.deliver("preds", STREAMED, streamed(range(20)), consumer="g", positions={("events", 0): 20})
        assert warehouse.deliver("preds", STREAMED, streamed(range(5)), consumer="g", positions={("events", 0): 5}) == 0
        assert warehouse.positions("g", [("events", 0)]) == {("events", 0): 20}
        other = warehouse.deliver("preds", STREAMED, streamed(range(5)), consumer="other",
                                  positions={("events", 0): 5})
        assert other == 5  # another consumer group's positions are its own

    def test_without_positions_a_message_id_is_delivered_once(self, warehouse):
        assert warehouse.deliver("preds", STREAMED, streamed(range(8)), consumer="sub", positions=None) == 8
        assert warehouse.deliver("preds", STREAMED, streamed(range(4, 12)), consumer="sub", positions=None) == 4
        ids = warehouse.read("SELECT count(DISTINCT _message_id) AS n FROM preds").read_all()["n"][0].as_py()
        assert ids == 12 == warehouse.count("preds")

    def test_a_refused_delivery_writes_neither_rows_nor_positions(self, warehouse):
        warehouse.deliver("preds", STREAMED, streamed(range(3)), consumer="g", positions={("events", 0): 3})
        with pytest.raises(SchemaError, match="score"):
            warehouse.deliver("preds", STREAMED, streamed(range(3, 6), score=["x", "y", "z"]), consumer="g",
                              positions={("events", 0): 6})
        assert warehouse.count("preds") == 3
        assert warehouse.positions("g", [("events", 0)]) == {("events", 0): 3}

    def test_positions_before_any_delivery_are_empty(self, warehouse):
        assert warehouse.positions("g", [("events", 0)]) == {}
