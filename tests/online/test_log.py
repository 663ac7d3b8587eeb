"""The online log: appends off the request path, no row written twice, nothing unbounded when the warehouse fails."""

from __future__ import annotations

import logging
import types

import numpy as np
import pyarrow as pa
import pytest

from batchcast.online.features import Features
from batchcast.online.log import OnlineLog
from batchcast.online.metrics import Metrics
from batchcast.spec import load_spec
from tests.conftest import query, write_python_service

FEATURES = Features(("f1",), {"f1": "number"}, ("player_id",))


def served(run: str):
    """What the log reads of a served model: its run and its features."""
    return types.SimpleNamespace(run_id=run, features=FEATURES)


def rows(*ids: str) -> pa.Table:
    return pa.table({"player_id": list(ids), "f1": [float(len(i)) for i in ids]})


def online(root, warehouse: str | None = None, max_rows: int = 1000, metrics: Metrics | None = None) -> OnlineLog:
    write_python_service(root, rows=10, extra=f'[warehouse]\nurl = "{warehouse}"\n' if warehouse else "")
    return OnlineLog(load_spec(root / "batchcast.toml"), "online", every=60, max_rows=max_rows, metrics=metrics)


def test_a_group_the_table_cannot_hold_is_dropped_and_the_others_are_written_once(tmp_path):
    log = online(tmp_path)
    log.add(served("svc/1/training/a"), rows("p1", "p2"), np.array([True, False]))
    assert log.flush() == 2
    log.add(served("svc/1/training/a"), rows("p3"), np.array([True]))
    log.add(served("svc/1/training/b"), rows("p4"), np.array(["high"]))  # another model, another type
    assert log.flush() == 1
    assert log.flush() == 0
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT player_id, prediction, _model_run FROM online ORDER BY player_id") == [
        ("p1", True, "svc/1/training/a"), ("p2", False, "svc/1/training/a"), ("p3", True, "svc/1/training/a")]


def test_rows_wait_while_the_warehouse_fails_and_are_written_once_it_is_back(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the warehouse's folder should be")
    log = online(tmp_path, f"duckdb:///{blocker}/w.duckdb")
    log.add(served("svc/1/training/a"), rows("p1"), np.array([1.5]))
    assert log.flush() == 0
    log.add(served("svc/1/training/a"), rows("p2"), np.array([2.5]))
    blocker.unlink()
    assert log.flush() == 2 and log.flush() == 0
    assert query(blocker / "w.duckdb", "SELECT player_id, prediction FROM online ORDER BY 1") == [
        ("p1", 1.5), ("p2", 2.5)]


def test_past_max_rows_waiting_the_oldest_are_dropped(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    log = online(tmp_path, f"duckdb:///{blocker}/w.duckdb", max_rows=3)
    for i in range(5):
        log.add(served("svc/1/training/a"), rows(f"p{i}"), np.array([float(i)]))
    blocker.unlink()
    assert log.flush() == 3
    assert [r[0] for r in query(blocker / "w.duckdb", "SELECT player_id FROM online ORDER BY 1")] == ["p2", "p3", "p4"]


def test_a_prediction_the_log_cannot_hold_does_not_raise(tmp_path):
    log = online(tmp_path)
    log.add(served("svc/1/training/a"), rows("p1"), np.array([object()]))  # str() of it is still logged
    log.add(served("svc/1/training/a"), rows("p1", "p2"), np.array([1.0]))  # wrong length: dropped, no raise
    assert log.flush() == 1


def test_many_one_row_requests_are_appended_together_within_duckdbs_memory_limit(tmp_path):
    """26.2: 20,000 one-row requests in one flush; appended as 20,000 Arrow batches they exhausted DuckDB's 256 MB."""
    log = online(tmp_path, max_rows=100_000)
    one = rows("p1")
    for _ in range(20_000):
        log.add(served("svc/1/training/a"), one, np.array([0.5]))
    assert log.flush() == 20_000
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    assert query(db, "SELECT count(*), count(DISTINCT received_at) > 1 FROM online") == [(20_000, True)]


def test_rows_not_written_by_shutdown_are_counted_as_dropped_and_said(tmp_path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the warehouse's folder should be")
    metrics = Metrics()
    log = online(tmp_path, f"duckdb:///{blocker}/w.duckdb", metrics=metrics)
    log.start()
    for i in range(3):
        log.add(served("svc/1/training/a"), rows(f"p{i}"), np.array([1.0]))
    with caplog.at_level(logging.INFO, logger="batchcast"):
        log.stop()
    assert metrics.registry.get_sample_value("batchcast_online_log_dropped_rows_total") == 3
    assert "online log: stopped: 0 rows written to online, 3 rows dropped" in caplog.text


@pytest.mark.parametrize("started", [True, False])
def test_shutdown_flushes_what_is_pending_and_says_nothing_was_lost(tmp_path, caplog, started):
    metrics = Metrics()
    log = online(tmp_path, metrics=metrics)
    if started:
        log.start()
    log.add(served("svc/1/training/a"), rows("p1", "p2"), np.array([True, False]))
    with caplog.at_level(logging.INFO, logger="batchcast"):
        log.stop()
    assert query(tmp_path / ".batchcast" / "warehouse.duckdb", "SELECT count(*) FROM online") == [(2,)]
    assert metrics.registry.get_sample_value("batchcast_online_log_rows_total") == 2
    assert "online log: stopped: 2 rows written to online, 0 rows dropped" in caplog.text
