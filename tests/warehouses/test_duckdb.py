import pytest

from batchcast.errors import WarehouseError
from batchcast.warehouses import open_warehouse
from tests.warehouses.contract import DAY1, WarehouseContract, batches, publish


class TestDuckDB(WarehouseContract):
    @pytest.fixture
    def warehouse(self, tmp_path):
        with open_warehouse(f"duckdb:///{tmp_path}/w.duckdb") as wh:
            yield wh


def test_published_rows_survive_reopening(tmp_path):
    url = f"duckdb:///{tmp_path}/w.duckdb"
    with open_warehouse(url) as wh:
        publish(wh, DAY1, batches(42))
    with open_warehouse(url) as wh:
        assert wh.count("preds") == 42


def test_bad_query_is_translated(tmp_path):
    with open_warehouse(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        with pytest.raises(WarehouseError, match="query failed.*nope"):
            wh.read("SELECT * FROM nope")


def test_unknown_scheme_names_the_known_ones():
    from batchcast.errors import SpecError

    with pytest.raises(SpecError, match="use one of duckdb://"):
        open_warehouse("oracle://x")
