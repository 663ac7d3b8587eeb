"""`batchcast serve` through the CLI: bound to 127.0.0.1, and swapping to a new champion without a restart."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from batchcast.isolation import environments
from tests.conftest import bc, query, write_python_service
from tests.serving.servers import call, latest, start, stop

ROW = {f"f{i}": 0.5 for i in range(1, 9)}


@pytest.fixture
def server(tmp_path):
    write_python_service(tmp_path, rows=300)
    bc("run", "training", cwd=tmp_path)
    bc("promote", latest(tmp_path), cwd=tmp_path)
    port, proc = start(tmp_path, "--poll", "60")
    yield tmp_path, port, proc
    assert stop(proc) == -signal.SIGTERM  # uvicorn finishes what is in flight, then re-raises the signal


def outward_address() -> str:
    """The machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            pytest.skip("this machine has no default route: no address but loopback to try the bind on")
        return s.getsockname()[0]


def test_it_runs_in_the_models_isolated_environment(server):
    """`batchcast serve` replaced itself with the server in the uv environment a local run gets."""
    _, _, proc = server
    python = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert Path(python).parent.parent.parent == environments.cache_dir() / "venvs", python
    assert Path(python).parent.parent.joinpath(environments.DONE).exists()


def test_it_listens_on_127_0_0_1_only(server):
    _, port, _ = server
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) == 0
    address = outward_address()
    assert not address.startswith("127."), f"no address but loopback to try ({address})"
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex((address, port)) != 0, f"batchcast serve answered on {address}"


def test_a_promotion_is_served_after_sighup_and_no_request_fails_meanwhile(server):
    root, port, proc = server
    described = call(port, "/model")[2]
    before = described["run"]
    assert described["alias"] == "champion"
    failures, served_by, stop = [], set(), threading.Event()

    def client():
        while not stop.is_set():
            status, headers, body = call(port, "/invocations", {"dataframe_records": [ROW]})
            if status != 200:
                failures.append((status, body))
            served_by.add(headers.get("x-batchcast-model-run"))

    thread = threading.Thread(target=client)
    thread.start()
    bc("run", "training", cwd=root)
    bc("promote", latest(root), cwd=root)
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while call(port, "/model")[2]["run"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    thread.join()
    after = call(port, "/model")[2]["run"]
    assert after != before and after == latest(root)
    assert failures == []
    assert served_by == {before, after}


def test_online_predictions_are_logged_to_the_warehouse_beside_the_batch_ones(tmp_path):
    write_python_service(tmp_path, rows=300, extra='[serve]\nlog_table = "online_predictions"\nlog_every = 0.5\n')
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", "2026-01-01", cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    features = [f"f{i}" for i in range(1, 9)]
    rows = query(db, f"SELECT player_id, {', '.join(features)} FROM features ORDER BY player_id LIMIT 40")
    records = [{"player_id": r[0], **dict(zip(features, r[1:], strict=True))} for r in rows]
    port, proc = start(tmp_path)
    try:
        for i in range(0, 40, 10):  # four requests, one of them after a flush
            assert call(port, "/invocations", {"dataframe_records": records[i:i + 10]})[0] == 200
            time.sleep(0.4)
        run = call(port, "/model")[2]["run"]
    finally:
        assert stop(proc) == -signal.SIGTERM  # the last rows are flushed on the way out
    logged = query(db, "SELECT o.player_id, o.prediction, s.label, o._model_run, o.received_at IS NOT NULL "
                       "FROM online_predictions o JOIN scores s USING (player_id) ORDER BY o.player_id")
    assert [r[0] for r in logged] == [r["player_id"] for r in records]
    assert all(online == batch for _, online, batch, _, _ in logged)
    assert {r[3] for r in logged} == {run} and all(r[4] for r in logged)


def test_every_format_through_the_cli_gets_the_application_runs_labels(tmp_path):
    write_python_service(tmp_path, rows=300)
    bc("run", "training", cwd=tmp_path)
    bc("run", "application", "--date", "2026-01-01", cwd=tmp_path)
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    names = [f"f{i}" for i in range(1, 9)]
    found = query(db, f"SELECT {', '.join(names)}, s.label FROM features JOIN scores s USING (player_id) "
                      "ORDER BY player_id LIMIT 30")
    rows, labels = [list(r[:-1]) for r in found], [r[-1] for r in found]
    records = [dict(zip(names, r, strict=True)) for r in rows]
    bodies = {"dataframe_split": {"columns": names, "data": rows}, "dataframe_records": records,
              "instances": records, "inputs": {n: [r[n] for r in records] for n in names}}
    port, proc = start(tmp_path)
    try:
        for key, value in bodies.items():
            status, _, answer = call(port, "/invocations", {key: value})
            assert status == 200 and answer["predictions"] == labels, key
        v2 = {"inputs": [{"name": "rows", "shape": [len(rows), len(names)], "datatype": "FP64", "data": rows}]}
        status, _, answer = call(port, "/v2/models/scores/infer", v2)
        assert status == 200 and answer["outputs"][0]["data"] == labels
        status, _, answer = call(port, "/invocations", {"instances": [{**records[0], "f3": True}]})
        assert status == 400 and "column 'f3' row 0: true is not a number" in answer["error"]
    finally:
        stop(proc)
