"""The predicted column's distribution, counted as rows are published: what the dashboard plots by period."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from batchcast import Service
from batchcast.data.distribution import SAMPLE, Distribution
from tests.conftest import bc, write_python_service


def test_an_application_records_the_share_of_each_predicted_value_as_the_table_holds_it(tmp_path):
    write_python_service(tmp_path, rows=600)
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", "2026-01-01", cwd=tmp_path)
    [run] = Service(tmp_path / "batchcast.toml").runs("application")
    recorded = run.outputs["predicted"]
    with duckdb.connect(str(tmp_path / ".batchcast" / "warehouse.duckdb"), read_only=True) as con:
        table = dict(con.execute("SELECT lower(label::VARCHAR), count(*) / sum(count(*)) OVER () FROM scores "
                                 "GROUP BY 1").fetchall())
    assert recorded["column"] == "label" and recorded["rows"] == 600 and recorded["nulls"] == 0
    assert recorded["shares"].keys() == table.keys()
    assert all(abs(recorded["shares"][k] - table[k]) < 1e-9 for k in table)


def test_a_quantity_gives_quantiles_of_a_bounded_sample():
    counted = Distribution("score")
    values = np.random.default_rng(1).normal(10, 2, size=300_000)
    for chunk in np.array_split(values, 7):
        counted.add(pa.array(np.append(chunk, np.nan)))  # a NaN has no place among quantiles
    found = counted.result()
    assert found["rows"] == 300_007 and "shares" not in found and len(counted.sample) == SAMPLE
    assert abs(found["quantiles"]["0.5"] - 10) < 0.15 and abs(found["quantiles"]["0.95"] - (10 + 1.645 * 2)) < 0.3


def test_few_distinct_numbers_are_classes():
    counted = Distribution("segment")
    counted.add(pa.array([1, 2, 2, None, 3, 3, 3]))
    assert counted.result() == {"column": "segment", "rows": 7, "nulls": 1,
                                "shares": {"1": 1 / 6, "2": 2 / 6, "3": 3 / 6}}


def test_text_with_many_values_keeps_no_count_of_each():
    counted = Distribution("player_id")
    for start in range(0, 100_000, 10_000):
        counted.add(pa.array([f"p{i}" for i in range(start, start + 10_000)]))
    assert counted.counts is None and len(counted.sample) == 0  # bounded: nothing per value is kept
    assert counted.result() == {"column": "player_id", "rows": 100_000, "nulls": 0, "distinct": "over 20"}
