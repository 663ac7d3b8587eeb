"""Messages into the model's features: a bad message is refused alone, with one line naming what is wrong."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from batchcast.brokers.base import Message, next_positions
from batchcast.data.schema import Schema
from batchcast.errors import RequestError
from batchcast.online.features import Features
from batchcast.streaming import outputs
from batchcast.streaming.decode import Reader

FEATURES = Features(("f1", "f2"), {"f1": "number", "f2": "number"})
SCHEMA = Schema.parse("player_id:STRING,label:BOOL")
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def message(value, offset: int, key: bytes | None = None) -> Message:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Message(raw, key, "events", 0, offset, f"events/0/{offset}", AT)


def test_good_messages_become_one_table_and_each_bad_one_is_refused_alone():
    batch = [message({"player_id": "a", "f1": 1, "f2": 2.5}, 0), message(b"{oops", 1),
             message({"player_id": "b", "f1": 1}, 2), message({"player_id": 7, "f1": 3.0, "f2": 4}, 3),
             message({"player_id": "c", "f1": "x", "f2": 1}, 4), message([1, 2], 5)]
    decoded = Reader(SCHEMA, ("player_id",)).read(batch, FEATURES)
    assert decoded.table.to_pylist() == [{"player_id": "a", "f1": 1.0, "f2": 2.5},
                                         {"player_id": "7", "f1": 3.0, "f2": 4.0}]  # a number id, as its text
    assert [m.offset for m in decoded.messages] == [0, 3]
    refused = {m.offset: e.message for m, e in decoded.bad}
    assert refused == {1: refused[1], 2: "column 'f2' is missing", 4: "column 'f1' row 0: \"x\" is not a number",
                       5: "the message is a JSON list, not an object"}
    assert refused[1].startswith("the message is not JSON")
    assert next_positions(batch) == {("events", 0): 6}  # refused messages are passed too


def test_records_messages_hold_many_rows_and_the_key_fills_the_id():
    batch = [message({"dataframe_records": [{"f1": 1, "f2": 2}, {"f1": 3, "f2": 4}]}, 0, b"k0"),
             message([{"f1": 5, "f2": 6, "player_id": "own"}], 1, b"k1")]
    decoded = Reader(SCHEMA, ("player_id",), "records", key_field="player_id").read(batch, FEATURES)
    assert decoded.table.column("player_id").to_pylist() == ["k0", "k0", "own"]  # a row's own id wins
    assert [m.offset for m in decoded.messages] == [0, 0, 1] and not decoded.bad


def test_outputs_carry_the_model_run_and_the_coordinates():
    batch = [message({"player_id": "a", "f1": 1, "f2": 2}, 41, b"a")]
    scored = pa.table({"player_id": ["a"], "label": [True]})
    [(key, value)] = outputs.records(scored, batch, "svc/1/training/x", AT)
    assert key == b"a" and json.loads(value) == {
        "player_id": "a", "label": True, "_key": "a", "_model_run": "svc/1/training/x",
        "_predicted_at": "2026-01-01T00:00:00+00:00", "_source": "events", "_partition": 0, "_offset": 41,
        "_message_id": "events/0/41"}
    row = outputs.rows(scored, batch, "svc/1/training/x", AT).to_pylist()[0]
    assert row["_offset"] == 41 and row["_message_id"] == "events/0/41" and row["_received_at"] == AT
    letter = json.loads(outputs.dead_letter(message(b"\xff\xfe", 3), RequestError("bad", "fix it"), None)[1])
    assert letter["encoding"] == "base64" and letter["payload"] == "//4=" and letter["error"] == "bad"


def test_documents_orjson_reads_otherwise_than_json_are_read_as_json_reads_them():
    """orjson (the fast path) reads an integer past 64 bits as a float, and refuses NaN and UTF-16."""
    batch = [message(b'{"player_id": 123456789012345678901234567890, "f1": 1, "f2": 2}', 0),
             message('{"player_id": "u", "f1": 1, "f2": 2}'.encode("utf-16"), 1),
             message(b'{"player_id": "n", "f1": NaN, "f2": 2}', 2),
             message(b'{"player_id": "d", "f1": 1e999, "f2": 2}', 3)]
    decoded = Reader(SCHEMA, ("player_id",)).read(batch, FEATURES)
    assert decoded.table.column("player_id").to_pylist() == ["123456789012345678901234567890", "u", "d"]
    assert decoded.table.column("f1").to_pylist()[2] == float("inf")  # json's reading, which orjson refuses
    assert [(m.offset, e.message) for m, e in decoded.bad] == [(2, "the JSON holds NaN, which is not a JSON number")]


def test_records_hold_json_values_only():
    batch = [message({}, o) for o in range(3)]
    scored = pa.table({"score": [0.5, float("nan"), float("inf")], "day": pa.array([AT.date()] * 3),
                       "n": pa.array([1, None, 3], pa.int64())})
    values = [json.loads(v) for _, v in outputs.records(scored, batch, "r", AT)]
    assert [v["score"] for v in values] == [0.5, None, None] and values[0]["day"] == "2026-01-01"
    assert [v["n"] for v in values] == [1, None, 3] and values[2]["_offset"] == 2 and values[2]["_key"] is None
