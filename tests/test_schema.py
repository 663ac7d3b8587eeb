import pyarrow as pa
import pytest

from batchcast.data.schema import STAMPS, Schema, conform
from batchcast.errors import SchemaError


def test_parse_compact_form_to_arrow():
    schema = Schema.parse("player_id:STRING, label:bool,score:FLOAT64")
    assert schema.names == ["player_id", "label", "score"]
    assert schema.to_arrow() == pa.schema([("player_id", pa.string()), ("label", pa.bool_()),
                                           ("score", pa.float64())])
    assert str(schema) == "player_id:STRING,label:BOOL,score:FLOAT64"


@pytest.mark.parametrize("text, words", [
    ("label:BOOLE", ["unknown type 'BOOLE'", "label:BOOLE", "STRING, INT64, FLOAT64, BOOL, DATE, TIMESTAMP"]),
    ("label", ["'label'", "not 'column:TYPE'"]),
    ("a:STRING,a:BOOL", ["'a' appears twice"]),
    ("bad-name:STRING", ["'bad-name'", "plain identifier"]),
])
def test_parse_errors_name_the_bad_part_and_the_fix(text, words):
    with pytest.raises(SchemaError) as err:
        Schema.parse(text)
    for word in words:
        assert word in str(err.value)
    assert err.value.fix


def test_conform_casts_orders_and_checks():
    schema = Schema.parse("player_id:STRING,label:BOOL")
    batch = pa.record_batch({"label": pa.array(["true", "FALSE", " 1 "]), "player_id": pa.array(["a", "b", "c"])})
    out = conform(batch, schema, "predictions.csv")
    assert out.schema == schema.to_arrow()
    assert out.column("label").to_pylist() == [True, False, True]


def test_conform_missing_extra_and_bad_values_are_named():
    schema = Schema.parse("player_id:STRING,label:BOOL")
    with pytest.raises(SchemaError, match="predictions.csv: column 'label' is declared in the schema but missing"):
        conform(pa.record_batch({"player_id": ["a"]}), schema, "predictions.csv")
    with pytest.raises(SchemaError, match="column 'score' is not in the declared schema"):
        conform(pa.record_batch({"player_id": ["a"], "label": [True], "score": [0.2]}), schema, "f")
    with pytest.raises(SchemaError, match="column 'label' cannot be read as BOOL"):
        conform(pa.record_batch({"player_id": ["a"], "label": ["maybe"]}), schema, "f")


def test_stamps_are_the_documented_columns():
    assert STAMPS.names == ["_logical_date", "_run_id", "_model_run", "_predicted_at"]
