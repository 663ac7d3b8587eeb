"""The served model answers each request format with what `batchcast run application` writes for the same rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from starlette.testclient import TestClient

from batchcast import Service
from batchcast.online.loading import load
from batchcast.online.slot import Slot
from batchcast.online.watcher import check
from batchcast.serving.app import HEADER, create
from tests.conftest import bc, query, write_python_service

FEATURES = [f"f{i}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    write_python_service(root, rows=300)
    bc("run", "training", cwd=root)
    bc("run", "application", "--date", "2026-01-01", cwd=root)
    return root


def batch_rows(root, limit=25):
    """Feature rows of the input and the labels the batch application wrote for them."""
    db = root / ".batchcast" / "warehouse.duckdb"
    rows = query(db, f"SELECT {', '.join(FEATURES)}, s.label FROM features f JOIN scores s "
                     f"USING (player_id) ORDER BY player_id LIMIT {limit}")
    return [dict(zip(FEATURES, r[:-1], strict=True)) for r in rows], [r[-1] for r in rows]


def test_every_format_gets_the_batch_predictions(trained):
    served = load(Service(trained / "batchcast.toml"))
    client = TestClient(create(Slot(served)))
    records, labels = batch_rows(trained)
    bodies = {
        "/invocations": {"dataframe_records": records},
        "/predict": {"dataframe_split": {"columns": FEATURES, "data": [[r[f] for f in FEATURES] for r in records]}},
    }
    for path, body in bodies.items():
        answer = client.post(path, json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == labels
        assert answer.headers[HEADER] == served.run_id
    v2 = client.post("/v2/models/scores/infer", json={"inputs": [
        {"name": f, "shape": [len(records)], "datatype": "FP64", "data": [r[f] for r in records]} for f in FEATURES]})
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == labels and v2.json()["outputs"][0]["datatype"] == "BOOL"
    assert client.get("/model").json()["run"] == served.run_id
    assert client.get("/v2/health/ready").status_code == 200


def test_bad_requests_are_4xx_naming_the_column(trained):
    client = TestClient(create(Slot(load(Service(trained / "batchcast.toml"))), max_body=2000))
    records, _ = batch_rows(trained, 1)
    misspelled = {("f9" if k == "f8" else k): v for k, v in records[0].items()}
    answer = client.post("/invocations", json={"dataframe_records": [misspelled]})
    assert answer.status_code == 400
    assert "column 'f8' is missing; 'f9' looks like a misspelling" in answer.json()["error"]
    answer = client.post("/invocations", json={"dataframe_records": [{**records[0], "f3": "abc"}]})
    assert answer.status_code == 400 and "column 'f3' row 0: \"abc\" is not a number" in answer.json()["error"]
    assert client.post("/invocations", content=b"").status_code == 400
    big = client.post("/invocations", json={"dataframe_records": records * 100})
    assert big.status_code == 413 and "over the limit of 2000" in big.json()["error"]
    assert "Traceback" not in big.text


def test_an_integer_python_will_not_read_is_a_400_not_a_500(trained):
    client = TestClient(create(Slot(load(Service(trained / "batchcast.toml")))), raise_server_exceptions=False)
    answer = client.post("/invocations", content=b'{"dataframe_records": [{"f1": ' + b"9" * 5000 + b"}]}")
    assert answer.status_code == 400, answer.text
    assert "an integer of more than 4300 digits" in answer.json()["error"] and answer.json()["fix"]


def test_a_swap_changes_the_model_between_requests(trained):
    service = Service(trained / "batchcast.toml")
    slot = Slot(load(service))
    client = TestClient(create(slot))
    first = client.get("/model").headers[HEADER]
    bc("run", "training", cwd=trained)
    slot.swap(load(service, "latest"))
    second = client.get("/model").headers[HEADER]
    assert first != second and second == service.model_for("latest").run_id


def test_metrics_count_requests_rows_and_the_model(trained):
    client = TestClient(create(Slot(load(Service(trained / "batchcast.toml")))))
    records, _ = batch_rows(trained, limit=3)
    assert client.post("/invocations", json={"dataframe_records": records}).status_code == 200
    assert client.post("/invocations", json={"dataframe_records": [{"f1": 1}]}).status_code == 400
    text = client.get("/metrics").text
    run = Service(trained / "batchcast.toml").model_for().run_id
    assert f'batchcast_requests_total{{model_run="{run}",route="/invocations",status="200"}} 1.0' in text
    assert f'batchcast_requests_total{{model_run="{run}",route="/invocations",status="400"}} 1.0' in text
    assert f'batchcast_rows_predicted_total{{model_run="{run}"}} 3.0' in text
    assert f'batchcast_model_info{{alias="",model_run="{run}"}} 1.0' in text
    assert 'batchcast_request_seconds_count{route="/invocations"} 2.0' in text


def test_a_new_target_that_fails_verification_is_refused_alerted_once_and_the_old_one_serves(tmp_path, webhook):
    url, received = webhook
    write_python_service(tmp_path, rows=300, extra=f'[alerts]\nwebhook = "{url}"\n')
    bc("run", "training", cwd=tmp_path)
    service = Service(tmp_path / "batchcast.toml")
    slot = Slot(load(service))
    old = slot.served.run_id
    bc("run", "training", cwd=tmp_path)
    new = service.model_for("latest").run_id
    bc("promote", new, cwd=tmp_path)
    stored = tmp_path / ".batchcast" / "artifacts" / new / "output" / "model.joblib"
    stored.write_bytes(stored.read_bytes()[:-10])  # truncated after it was sealed
    refused: set[str] = set()
    assert check(service, slot, None, refused) is None
    assert check(service, slot, None, refused) is None
    assert slot.served.run_id == old
    assert len(received) == 1 and received[0]["batchcast"]["run_id"] == new
    assert "model.joblib" in received[0]["text"] and old in received[0]["text"]
    assert 'batchcast_model_swaps_total{outcome="refused"} 2.0' in slot.metrics.exposition()[0].decode()
    client = TestClient(create(slot))
    assert client.get("/model").headers[HEADER] == old


class NanModel:
    """A model (any object with predict) whose prediction for a negative f1 is NaN."""

    def predict(self, X):
        return np.where(X["f1"] < 0, np.nan, X["f1"] * 2)


def test_a_nan_prediction_is_null_and_a_model_name_not_served_is_a_404(trained):
    served = load(Service(trained / "batchcast.toml"))
    served.scorer = dataclasses.replace(served.scorer, model=NanModel())
    client = TestClient(create(Slot(served)))
    row = dict.fromkeys(FEATURES, 1.0)
    answer = client.post("/invocations", json={"dataframe_records": [row, {**row, "f1": -1.0}]})
    assert answer.status_code == 200 and answer.json()["predictions"] == [2.0, None]
    v2 = {"inputs": [{"name": f, "shape": [1], "datatype": "FP64", "data": [1.0]} for f in FEATURES]}
    assert client.post(f"/v2/models/{served.name}/infer", json=v2).json()["outputs"][0]["data"] == [2.0]
    other = client.post("/v2/models/other/infer", json=v2)
    assert other.status_code == 404 and f"/v2/models/{served.name}/infer" in other.json()["fix"]
