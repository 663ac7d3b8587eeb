"""The OpenAPI 3.1 document of ``batchcast serve``, written from the served model's features.

Clients and generators (and schemathesis, in the tests) read it at
``GET /openapi.json``; it changes with the model, since the features do.
"""

from __future__ import annotations

JSON_TYPES = {"number": "number", "bool": "boolean", "string": "string"}
ERROR = {"type": "object", "required": ["error", "fix"],
         "properties": {"error": {"type": "string"}, "fix": {"type": "string"}}}


def document(served) -> dict:
    features = list(served.features.names)
    value = {name: _value(served.features.kinds.get(name)) for name in features}
    record = {"type": "object", "properties": value, "required": features}
    rows = {"type": "array", "minItems": 1, "items": record}
    matrix = {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": len(features),
                                                        "maxItems": len(features)}}
    mlflow = {"oneOf": [
        _one("dataframe_split", {"type": "object", "required": ["columns", "data"], "properties": {
            "columns": {"type": "array", "items": {"type": "string"}}, "data": matrix}}),
        _one("dataframe_records", rows),
        _one("instances", {"oneOf": [rows, matrix]}),
        _one("inputs", {"oneOf": [{"type": "object", "properties": {
            n: {"type": "array", "items": v} for n, v in value.items()}, "required": features}, matrix]}),
    ]}
    predictions = {"type": "object", "required": ["predictions"], "properties": {"predictions": {"type": "array"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{served.name} {served.version} (batchcast serve)", "version": served.version,
                 "description": f"Predictions of training run {served.run_id}; features in order: "
                                f"{', '.join(features)}."},
        "paths": {
            "/invocations": _post("Predict (MLflow scoring protocol)", mlflow, predictions),
            "/predict": _post("Predict (the same as /invocations)", mlflow, predictions),
            "/v2/models/{name}/infer": {**_post("Predict (Open Inference Protocol v2)", _v2(features), _v2_out(),
                                                not_found=True),
                                        "parameters": [{"name": "name", "in": "path", "required": True,
                                                        "schema": {"type": "string"}}]},
            "/v2/health/live": _get("Liveness", {"type": "object"}),
            "/v2/health/ready": _get("Readiness: 200 once a model is loaded", {"type": "object"}),
            "/model": _get("The model being served", {"type": "object", "required": ["run", "features"]}),
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
    }


def _value(kind: str | None) -> dict:
    return {"type": [JSON_TYPES[kind], "null"]} if kind in JSON_TYPES else {}


def _one(key: str, schema: dict) -> dict:
    return {"type": "object", "required": [key], "properties": {key: schema}, "additionalProperties": False}


def _post(summary: str, request: dict, response: dict, not_found: bool = False) -> dict:
    errors = {str(code): {"description": text, "content": {"application/json": {"schema": ERROR}}}
              for code, text in ((400, "The request names a missing column or a bad value"),
                                 (404, "No model of that name is served here"),
                                 (413, "The body is over [serve] max_body"),
                                 (422, "The model raised on these rows")) if code != 404 or not_found}
    return {"post": {"summary": summary,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                     "responses": {"200": {"description": "One prediction per row",
                                           "content": {"application/json": {"schema": response}}}, **errors}}}


def _get(summary: str, schema: dict) -> dict:
    return {"get": {"summary": summary, "responses": {"200": {
        "description": summary, "content": {"application/json": {"schema": schema}}}}}}


def _v2(features: list[str]) -> dict:
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "enum": features},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["FP64", "FP32", "INT64", "INT32", "BOOL", "BYTES"]},
        "data": {"type": "array"}}}
    return {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "inputs": {"type": "array", "minItems": 1, "items": tensor}}}


def _v2_out() -> dict:
    return {"type": "object", "required": ["model_name", "outputs"], "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"}, "outputs": {"type": "array"}}}
