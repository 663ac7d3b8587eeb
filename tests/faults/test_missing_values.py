"""No silent NULLs: a required column ('!', and the Python contract's ids) refuses rows without a value."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from batchcast.data.schema import Schema, conform
from batchcast.errors import SchemaError
from tests.conftest import bc, query, write_python_service


def test_required_columns_parse_and_print_with_their_mark():
    schema = Schema.parse("id:INT64!,score:FLOAT64, name : string !")
    assert [c.required for c in schema] == [True, False, True]
    assert str(schema) == "id:INT64!,score:FLOAT64,name:STRING!"


def test_nan_is_stored_as_null():
    batch = pa.record_batch({"score": [0.5, float("nan"), None]})
    assert conform(batch, Schema.parse("score:FLOAT64"), "p.csv").column(0).to_pylist() == [0.5, None, None]


@pytest.mark.parametrize("text, values", [
    ("id:INT64!", [1, None]),
    ("id:FLOAT64!", [1.0, float("nan")]),
    ("id:STRING!", ["a", " "]),
    ("id:STRING!", ["a", None]),
])
def test_a_required_column_refuses_a_row_without_value(text, values):
    with pytest.raises(SchemaError) as err:
        conform(pa.record_batch({"id": values}), Schema.parse(text), "predictions.csv")
    assert err.value.message == (f"predictions.csv: column 'id' is declared '{text}' but 1 rows hold "
                                 "no value (NULL, NaN or empty)")
    assert "drop the '!'" in err.value.fix


def test_an_input_row_without_its_id_fails_the_application_and_keeps_the_table(tmp_path):
    write_python_service(tmp_path, rows=600)
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", "2026-01-01", cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    before = query(db, "SELECT * FROM scores ORDER BY player_id")
    con = duckdb.connect(str(db))
    con.execute("UPDATE features SET player_id = NULL WHERE player_id = 'p7'")
    con.close()
    out = bc("run", "application", "--date", "2026-01-01", cwd=tmp_path, ok=False)
    assert "column 'player_id' is declared 'player_id:STRING!' but 1 rows hold no value" in out.stderr
    assert query(db, "SELECT * FROM scores ORDER BY player_id") == before
