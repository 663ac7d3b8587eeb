"""Requests in MLflow's and the Open Inference Protocol's formats read into the same rows; mistakes are one line."""

from __future__ import annotations

import json

import pytest

from batchcast.errors import RequestError
from batchcast.online.features import Features, decode
from batchcast.serving.requests import mlflow_table, v2_table

FEATURES = Features(("tenure", "spend", "premium", "country"),
                    {"tenure": "number", "spend": "number", "premium": "bool", "country": "string"})
ROWS = [{"tenure": 3, "spend": 12.5, "premium": True, "country": "fr"},
        {"tenure": 40, "spend": 0.0, "premium": False, "country": "de"}]
EXPECTED = {"tenure": [3.0, 40.0], "spend": [12.5, 0.0], "premium": [True, False], "country": ["fr", "de"]}


def mlflow(body: dict):
    return mlflow_table(decode(json.dumps(body).encode()), FEATURES).to_pydict()


def order(row: dict) -> list:
    return [row[name] for name in FEATURES.names]


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": list(ROWS[0]), "data": [list(r.values()) for r in ROWS]}},
    {"dataframe_records": ROWS},
    {"instances": ROWS},
    {"instances": [order(r) for r in ROWS]},
    {"inputs": {name: [r[name] for r in ROWS] for name in ROWS[0]}},
    {"inputs": [order(r) for r in ROWS]},
    {"dataframe_records": [{**r, "player_id": f"p{i}"} for i, r in enumerate(ROWS)], "params": {}},
], ids=["split", "records", "instances-records", "instances-rows", "inputs-columns", "inputs-rows",
        "extra-id-column"])
def test_every_mlflow_format_reads_into_the_same_rows(body):
    assert mlflow(body) == EXPECTED


def test_v2_named_tensors_and_one_tensor_of_rows_read_into_the_same_rows():
    named = {"inputs": [
        {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [3, 40]},
        {"name": "spend", "shape": [2, 1], "datatype": "FP64", "data": [[12.5], [0.0]]},
        {"name": "premium", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["fr", "de"]}]}
    assert v2_table(named, FEATURES).to_pydict() == EXPECTED
    rows = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "BYTES",
                        "data": [v for r in ROWS for v in order(r)]}]}
    assert v2_table(rows, FEATURES).to_pydict() == EXPECTED


@pytest.mark.parametrize(("body", "message"), [
    (b"", "the request body is empty"),
    (b"{not json", "the request body is not JSON"),
    (b"[1, 2]", "the body is a JSON list, not an object"),
    (b'{"records": []}', "the body has keys records"),
    (json.dumps({"dataframe_records": ROWS, "instances": ROWS}).encode(), "keys dataframe_records, instances"),
    (json.dumps({"dataframe_records": [{**ROWS[0], "spend": "lots"}]}).encode(),
     "column 'spend' row 0: \"lots\" is not a number"),
    (json.dumps({"dataframe_records": [{**ROWS[0], "premium": "yes"}]}).encode(),
     "column 'premium' row 0: \"yes\" is not true or false"),
    (json.dumps({"dataframe_records": [{k: v for k, v in ROWS[0].items() if k != "spend"} | {"spnd": 1.0}]}
                ).encode(), "column 'spend' is missing; 'spnd' looks like a misspelling of it"),
    (json.dumps({"dataframe_records": []}).encode(), "the request holds no rows"),
    (json.dumps({"dataframe_records": [1, 2]}).encode(), "dataframe_records is not a list of objects"),
    (json.dumps({"inputs": {"tenure": [1], "spend": [1.0, 2.0]}}).encode(), "columns have different lengths"),
    (json.dumps({"instances": [[1, 2.0]]}).encode(), "instances row 0 has 2 values; the model has 4 features"),
    (json.dumps({"dataframe_split": {"columns": ["tenure"], "data": [[1, 2]]}}).encode(),
     "dataframe_split data row 0 has 2 values for 1 columns"),
    (b'{"dataframe_records": [{"tenure": ' + b"9" * 5000 + b"}]}", "an integer of more than 4300 digits"),
], ids=["empty", "not-json", "not-object", "unknown-key", "two-keys", "not-a-number", "not-a-bool",
        "misspelled", "no-rows", "not-records", "ragged-columns", "short-row", "split-ragged", "huge-integer"])
def test_a_bad_request_is_one_line_naming_what_is_wrong(body, message):
    with pytest.raises(RequestError) as caught:
        mlflow_table(decode(body), FEATURES)
    assert message in caught.value.message and caught.value.fix and caught.value.status == 400
    assert "\n" not in str(caught.value.message)


@pytest.mark.parametrize(("body", "message"), [
    ({"inputs": []}, "the body has no 'inputs' list"),
    ({"inputs": [{"name": "tenure", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
     "input 'tenure' holds 1 values for shape [2]"),
    ({"inputs": [{"name": "tenure", "shape": [1], "datatype": "COMPLEX", "data": [1.0]}]},
     "input 'tenure' has datatype 'COMPLEX'"),
    ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]},
     "input 'x' has shape [1, 3], and 'x' is not a feature"),
    ({"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1.0]}]}, "column 'spend' is missing"),
], ids=["no-inputs", "shape-mismatch", "bad-datatype", "unknown-tensor", "missing-feature"])
def test_a_bad_v2_request_names_the_tensor(body, message):
    with pytest.raises(RequestError) as caught:
        v2_table(body, FEATURES)
    assert message in caught.value.message


@pytest.mark.parametrize("body, said", [
    (b'{"dataframe_records": [{"f1": NaN}]}', "NaN, which is not a JSON number"),
    (b'{"dataframe_records": [{"f1": Infinity}]}', "Infinity, which is not a JSON number"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
])
def test_bodies_json_cannot_mean_are_refused(body, said):
    with pytest.raises(RequestError) as refused:
        decode(body)
    assert said in refused.value.message and refused.value.status == 400
