import pytest

from batchcast.testing.warehouses import DeliveryContract, WarehouseContract

pytestmark = pytest.mark.slow  # PostgreSQL


class TestPostgres(WarehouseContract, DeliveryContract):
    @pytest.fixture
    def warehouse(self, postgres_url, request):
        from batchcast.warehouses import open_warehouse

        schema = "t_" + request.node.name.lower()[:40].replace("[", "_").replace("]", "_").replace("-", "_")
        with open_warehouse(f"{postgres_url}?schema={schema}") as wh:
            yield wh


KILLED_PUBLISH = """
import datetime as dt, sys, time
import pyarrow as pa
from batchcast.data.schema import Schema
from batchcast.warehouses import open_warehouse

def slow():
    for i in range(1000):
        yield pa.record_batch({"player_id": [f"k{i}-{j}" for j in range(1000)], "label": [True] * 1000,
                               "score": [1.0] * 1000})
        if i == 20:
            print("HALFWAY", flush=True)
        time.sleep(0.05)

with open_warehouse(sys.argv[1]) as wh:
    wh.publish("preds", Schema.parse("player_id:STRING,label:BOOL,score:FLOAT64"), slow(),
               logical_date=dt.date(2026, 1, 1), run_id="killed", model_run=None, source="test")
"""


def test_publish_killed_half_way_leaves_the_table_unchanged(postgres_url):
    import subprocess
    import sys

    from batchcast.testing.warehouses import DAY1, batches, publish
    from batchcast.warehouses import open_warehouse

    url = f"{postgres_url}?schema=killed"
    with open_warehouse(url) as wh:
        publish(wh, DAY1, batches(1234))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PUBLISH, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "HALFWAY"  # 21,000 rows are on their way through COPY
    proc.kill()
    proc.wait()
    with open_warehouse(url) as wh:
        assert wh.count("preds", DAY1) == 1234
        assert wh.read("SELECT count(*) AS n FROM preds WHERE _run_id = 'killed'").read_all()["n"][0].as_py() == 0


def test_a_connection_lost_mid_publish_is_transient_and_names_the_write(postgres_url):
    """Issue 26.4: the failed ROLLBACK's own error ('Failed to rollback') was reported, with no fix, as final."""
    import adbc_driver_postgresql.dbapi as pg

    from batchcast.errors import WarehouseUnavailable
    from batchcast.testing.warehouses import DAY1, batches, publish
    from batchcast.warehouses import open_warehouse

    url = f"{postgres_url}?schema=lost"
    with open_warehouse(url) as wh:
        publish(wh, DAY1, batches(1234))

    def dropped_half_way():
        for i, batch in enumerate(batches(50_000)):
            if i == 20:  # what pg_ctl -m immediate stop does to this session: its backend is gone
                with pg.connect(postgres_url) as admin, admin.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE pid <> pg_backend_pid() AND query LIKE 'COPY%'")
                    assert cur.fetchone()[0] is True
            yield batch

    with open_warehouse(url) as wh:
        with pytest.raises(WarehouseUnavailable) as err:
            publish(wh, DAY1, dropped_half_way(), run="svc/1/application/2")
    assert "writing preds in" in err.value.message and "connection was lost" in err.value.message
    assert err.value.transient and "run it again" in err.value.fix
    with open_warehouse(url) as wh:
        assert wh.count("preds", DAY1) == 1234
