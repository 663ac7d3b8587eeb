"""BigQuery against local-bigquery, the emulator that ran every operation here (see the note in the README)."""


import pytest

from batchcast.testing.warehouses import DAY1, WarehouseContract, batches, publish

pytestmark = pytest.mark.slow  # the BigQuery emulator


class TestBigQuery(WarehouseContract):
    @pytest.fixture
    def warehouse(self, bigquery_endpoint, request):
        from batchcast.warehouses import open_warehouse

        dataset = "ds_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:60]
        with open_warehouse(f"bigquery://test/{dataset}") as wh:
            yield wh


def test_table_is_partitioned_by_logical_date(bigquery_endpoint):
    from batchcast.warehouses import open_warehouse

    with open_warehouse("bigquery://test/partitioned") as wh:
        publish(wh, DAY1, batches(10))
        table = wh.client.get_table("test.partitioned.preds")
        assert table.time_partitioning.field == "_logical_date"
        assert not [t.table_id for t in wh.client.list_tables("test.partitioned") if "stage" in t.table_id]
