"""Prediction requests in the formats clients already send, read into one Arrow table of features.

- MLflow's scoring protocol (``POST /invocations``): ``dataframe_split``,
  ``dataframe_records``, ``instances`` or ``inputs``, so a client of
  ``mlflow models serve`` switches without changes.
- The Open Inference Protocol v2 (``POST /v2/models/{name}/infer``) that
  KServe and Seldon speak: named tensors, one per feature, or one tensor of
  rows in the training's feature order.

The columns found are checked and typed by
:func:`batchcast.online.features.table`, which knows no transport. Every
mistake is a :class:`~batchcast.errors.RequestError`: one line naming the
key, column or value, and the fix, answered with a 4xx; nothing here raises
anything else.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from batchcast.errors import RequestError
from batchcast.online.features import Features, records, table

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
V2_TYPES = {"BOOL": "bool", "BYTES": "string", **{t: "number" for t in (
    "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64")}}


def mlflow_table(document: Any, features: Features) -> pa.Table:
    """The rows of an MLflow scoring request, as the model's features."""
    if not isinstance(document, dict):
        raise RequestError(f"the body is a JSON {type(document).__name__}, not an object",
                           f"wrap the rows in one of {', '.join(MLFLOW_KEYS)}")
    found = [k for k in MLFLOW_KEYS if k in document]
    unknown = sorted(set(document) - set(MLFLOW_KEYS) - {"params"})
    if len(found) != 1 or unknown:
        what = f"keys {', '.join(found + unknown)}" if found or unknown else "no key"
        raise RequestError(f"the body has {what}", f"send exactly one of {', '.join(MLFLOW_KEYS)}")
    key = found[0]
    value = document[key]
    if key == "dataframe_split":
        columns = _split(value)
    elif key == "dataframe_records" or (key == "instances" and _rows_are_records(value)):
        columns = records(value, key)
    elif key == "inputs" and isinstance(value, dict):
        columns = _columnar(value, key)
    else:
        columns = _tensor(value, key, features)
    return table(columns, features)


def v2_table(document: Any, features: Features) -> pa.Table:
    """The rows of an Open Inference Protocol v2 infer request, as the model's features."""
    inputs = document.get("inputs") if isinstance(document, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("the body has no 'inputs' list", 'send {"inputs": [{"name": ..., "shape": [N], '
                           '"datatype": "FP64", "data": [...]}]}, one tensor per feature')
    tensors = {}
    for i, tensor in enumerate(inputs):
        name, data, shape = _tensor_fields(tensor, i)
        tensors[name] = (data, shape)
    if len(tensors) == 1 and next(iter(tensors)) not in features.names:  # one tensor of whole rows
        (name, (data, shape)), = tensors.items()
        if len(shape) != 2 or shape[1] != len(features.names):
            raise RequestError(f"input '{name}' has shape {shape}, and '{name}' is not a feature",
                               f"send one tensor per feature, or one of shape [N, {len(features.names)}] "
                               f"in the order {', '.join(features.names)}")
        rows = [data[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]
        return table(_tensor(rows, "inputs", features), features)
    return table({name: data for name, (data, _) in tensors.items()}, features)


def _tensor_fields(tensor: Any, i: int) -> tuple[str, list, list[int]]:
    if not isinstance(tensor, dict) or not all(k in tensor for k in ("name", "shape", "datatype", "data")):
        raise RequestError(f"inputs[{i}] is not a tensor", "give it name, shape, datatype and data")
    name, shape, datatype, data = tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"]
    if not isinstance(name, str):
        raise RequestError(f"inputs[{i}] has name {json.dumps(name)}", "name each tensor with a string")
    if not isinstance(datatype, str) or datatype not in V2_TYPES:
        raise RequestError(f"input '{name}' has datatype {datatype!r}", f"use one of {', '.join(V2_TYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RequestError(f"input '{name}' has shape {shape!r}", "give the shape as a list of sizes, e.g. [3]")
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise RequestError(f"input '{name}' holds {len(flat)} values for shape {shape}",
                           "make the data match the shape")
    return name, flat, shape


def _flatten(data: Any) -> list:
    """A tensor's values in row-major order, however its data is nested (without recursing on the nesting)."""
    if not isinstance(data, list):
        return [data]
    while any(isinstance(d, list) for d in data):
        data = [v for item in data for v in (item if isinstance(item, list) else [item])]
    return data


def _split(value: Any) -> dict[str, list]:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) \
            or not isinstance(value.get("data"), list):
        raise RequestError("dataframe_split needs 'columns' and 'data' lists",
                           'send {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}')
    names = value["columns"]
    if not all(isinstance(name, str) for name in names):
        raise RequestError(f"dataframe_split columns {json.dumps(names)[:200]} are not all strings",
                           "name the columns with strings")
    for r, row in enumerate(value["data"]):
        if not isinstance(row, list) or len(row) != len(names):
            raise RequestError(f"dataframe_split data row {r} has {len(row) if isinstance(row, list) else 'no'} "
                               f"values for {len(names)} columns", "give every row one value per column")
    return {name: [row[c] for row in value["data"]] for c, name in enumerate(names)}


def _rows_are_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(row, dict) for row in value)


def _columnar(value: dict, key: str) -> dict[str, list]:
    columns = {name: v if isinstance(v, list) else [v] for name, v in value.items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise RequestError(f"{key} columns have different lengths ({', '.join(map(str, sorted(lengths)))})",
                           "give every column one value per row")
    return columns


def _tensor(value: Any, key: str, features: Features) -> dict[str, list]:
    """Rows given as lists of values, in the training's feature order."""
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise RequestError(f"{key} is neither a list of rows nor of objects",
                           f"send rows as objects by feature name, or as lists in the order "
                           f"{', '.join(features.names)}")
    for r, row in enumerate(value):
        if len(row) != len(features.names):
            raise RequestError(f"{key} row {r} has {len(row)} values; the model has {len(features.names)} "
                               f"features", f"give them in the order {', '.join(features.names)}")
    return {name: [row[c] for row in value] for c, name in enumerate(features.names)}
