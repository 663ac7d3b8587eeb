import pytest

from batchcast.errors import WarehouseError
from batchcast.testing.warehouses import DAY1, DeliveryContract, WarehouseContract, batches, publish
from batchcast.warehouses import open_warehouse


class TestDuckDB(WarehouseContract, DeliveryContract):
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


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b"not a database" * 100), "it is not a DuckDB database"),
    (lambda p: p.mkdir(), "it is a folder, not a DuckDB file"),
])
def test_a_bad_file_is_not_mistaken_for_a_lock(tmp_path, make, says):
    """A corrupt file or a folder used to get the fix 'wait for the other process' (issue 13, defect 6)."""
    from batchcast.errors import WarehouseUnavailable

    path = tmp_path / "w.duckdb"
    make(path)
    with pytest.raises(WarehouseError) as err:
        open_warehouse(f"duckdb:///{path}").count("preds")
    assert says in err.value.message and "wait" not in (err.value.fix or "")
    assert not isinstance(err.value, WarehouseUnavailable)  # final, so the scheduler does not retry it


def test_no_progress_bar_reaches_the_cli_output(tmp_path):
    # DuckDB draws one on stdout for queries over 2 s; stdout is the CLI's (issue 13, defect 11).
    with open_warehouse(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        assert wh.con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
        reader = wh.read("SELECT current_setting('enable_progress_bar') AS bar")
        assert reader.read_all().column("bar").to_pylist() == [False]


def test_lock_wait_must_be_seconds(tmp_path):
    from batchcast.errors import SpecError

    with pytest.raises(SpecError, match="lock_wait=soon is not a number of seconds"):
        open_warehouse(f"duckdb:///{tmp_path}/w.duckdb?lock_wait=soon")
