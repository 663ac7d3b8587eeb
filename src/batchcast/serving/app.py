"""The ASGI application: MLflow's scoring routes, the Open Inference Protocol v2, and the served model.

The model is held in a :class:`~batchcast.online.slot.Slot`; a swap
replaces one reference, so a request sees the old model or the new one,
never a mix. Every request error
is a 4xx with one line; a model that raises on a valid request is a 422
naming the model's error, never a 500 with a traceback.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchcast.errors import BatchcastError, RequestError
from batchcast.online.batching import Batcher
from batchcast.online.features import decode
from batchcast.online.loading import Served
from batchcast.online.slot import Slot
from batchcast.serving.observe import Observe
from batchcast.serving.openapi import document
from batchcast.serving.requests import mlflow_table, v2_table

HEADER = "X-Batchcast-Model-Run"
V2_DATATYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}
TOO_BIG = "send fewer rows per request, or raise [serve] max_body"


def _listed(y: np.ndarray) -> list:
    """Predictions as JSON values: a NaN or an infinity (which JSON cannot hold) becomes null."""
    if y.dtype.kind != "f" or np.isfinite(y).all():
        return y.tolist()
    return np.where(np.isfinite(y), y, None).tolist()


def create(slot: Slot, max_body: int = 10 * 2**20, batcher: Batcher | None = None, lifespan=None,
           online=None) -> Starlette:
    """The application serving whatever ``slot`` holds; bodies over ``max_body`` bytes get a 413.

    ``online``, an :class:`~batchcast.online.log.OnlineLog`, keeps each request's rows and predictions.
    """
    batcher = batcher or Batcher(max_rows=1)
    metrics = slot.metrics

    async def body(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise RequestError(f"the body is {declared} bytes, over the limit of {max_body}", TOO_BIG, status=413)
        data = b""
        try:
            async for chunk in request.stream():
                data += chunk
                if len(data) > max_body:
                    raise RequestError(f"the body is over the limit of {max_body} bytes", TOO_BIG, status=413)
        except ClientDisconnect:  # gone, or cut off by [serve] request_timeout (serving.protocol): no traceback
            raise RequestError("the connection closed before the body arrived whole", "send the whole request "
                               "at once, or raise [serve] request_timeout", status=408) from None
        return decode(data)

    async def predicted(request: Request, served: Served, table) -> np.ndarray:
        request.state.rows = table.num_rows
        y = await batcher.predict(served, table)
        metrics.calls.set(batcher.calls)
        if online is not None:
            online.add(served, table, y)  # never raises: the log must not fail the request
        return y

    def taking(request: Request, route: str) -> Served:
        served = slot.served  # one model for the whole request, whatever a swap does meanwhile
        request.state.route, request.state.model_run = route, served.run_id
        return served

    async def invocations(request: Request) -> Response:
        served = taking(request, request.scope["path"])
        y = await predicted(request, served, mlflow_table(await body(request), served.features))
        return JSONResponse({"predictions": _listed(y)}, headers={HEADER: served.run_id})

    async def infer(request: Request) -> Response:
        served = taking(request, "/v2/models/{name}/infer")
        if request.path_params["name"] != served.name:
            raise RequestError(f"no model '{request.path_params['name']}' here", f"send to /v2/models/{served.name}"
                               "/infer", status=404)
        document_ = await body(request)
        y = await predicted(request, served, v2_table(document_, served.features))
        output = {"name": "predict", "shape": list(y.shape), "datatype": V2_DATATYPES.get(y.dtype.kind, "BYTES"),
                  "data": _listed(y.ravel())}
        return JSONResponse({"model_name": served.name, "model_version": served.version,
                             "id": document_.get("id"), "outputs": [output]}, headers={HEADER: served.run_id})

    async def model(request: Request) -> Response:
        served = taking(request, "/model")
        return JSONResponse(served.describe(), headers={HEADER: served.run_id})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document(taking(request, "/openapi.json")))

    async def exposition(request: Request) -> Response:
        request.state.route = "/metrics"
        text, media_type = metrics.exposition()
        return Response(text, media_type=media_type)

    async def live(request: Request) -> Response:
        request.state.route = "/v2/health/live"
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        request.state.route = "/v2/health/ready"
        return JSONResponse({"ready": slot.served is not None}, status_code=200 if slot.served else 503)

    async def refused(request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, RequestError) else 422
        return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=status)

    return Starlette(routes=[
        Route("/invocations", invocations, methods=["POST"]),
        Route("/predict", invocations, methods=["POST"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/model", model),
        Route("/openapi.json", openapi),
        Route("/metrics", exposition),
    ], exception_handlers={BatchcastError: refused},  # RequestError and ModelError are BatchcastErrors
        middleware=[Middleware(Observe, metrics=metrics)], lifespan=lifespan)
