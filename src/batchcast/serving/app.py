"""The ASGI application: MLflow's scoring routes, the Open Inference Protocol v2, and the served model.

The model is held in a :class:`Slot`; a swap replaces one reference, so a
request sees the old model or the new one, never a mix. Every request error
is a 4xx with one line; a model that raises on a valid request is a 422
naming the model's error, never a 500 with a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchcast import models
from batchcast.errors import BatchcastError, ModelError
from batchcast.service import CHAMPION
from batchcast.serving.requests import Features, RequestError, decode, mlflow_table, v2_table

HEADER = "X-Batchcast-Model-Run"
V2_DATATYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


@dataclass
class Served:
    """One loaded, verified model and what a client may ask about it."""

    run_id: str
    name: str
    version: str
    model: Any
    meta: dict
    features: Features
    alias: str | None = None
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def predict(self, table) -> np.ndarray:
        return np.asarray(models.call(self.model, "predict", models.as_input(table, list(self.features.names),
                                                                           self.meta["input_format"])))

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "run": self.run_id, "alias": self.alias,
                "features": list(self.features.names), "loaded_at": self.loaded_at}


def load(service, ref: str | None = None) -> Served:
    """The training run ``ref`` (default: the champion, else the latest), its checksums verified first."""
    from batchcast.checks import PROFILE

    manifest = service.model_for(ref)
    folder = Path(tempfile.mkdtemp(prefix="batchcast-serve-"))
    service.store.fetch(manifest, "output", folder)  # verifies every file's sha256 against the manifest
    model, meta = models.load(folder, service.spec.model_path)
    profile = folder / PROFILE
    features = Features.of(meta, json.loads(profile.read_text()) if profile.exists() else None)
    named = ref or CHAMPION  # model_for chose the champion when there was one
    alias = named if service.store.alias(service.name, service.version, named) == manifest.run_id else None
    return Served(manifest.run_id, service.name, service.version, model, meta, features, alias)


class Slot:
    """The model being served; :meth:`swap` replaces it in one assignment."""

    def __init__(self, served: Served | None = None):
        self.served = served

    def swap(self, served: Served) -> None:
        self.served = served


def create(slot: Slot, max_body: int = 10 * 2**20) -> Starlette:
    """The application serving whatever ``slot`` holds; bodies over ``max_body`` bytes get a 413."""

    async def body(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise RequestError(f"the body is {declared} bytes, over the limit of {max_body}",
                               "send fewer rows per request, or raise [serve] max_body", status=413)
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > max_body:
                raise RequestError(f"the body is over the limit of {max_body} bytes",
                                   "send fewer rows per request, or raise [serve] max_body", status=413)
        return decode(data)

    async def predicted(served: Served, table) -> np.ndarray:
        return await asyncio.to_thread(served.predict, table)

    async def invocations(request: Request) -> Response:
        served = slot.served  # one model for the whole request, whatever a swap does meanwhile
        table = mlflow_table(await body(request), served.features)
        y = await predicted(served, table)
        return JSONResponse({"predictions": y.tolist()}, headers={HEADER: served.run_id})

    async def infer(request: Request) -> Response:
        served = slot.served
        document = await body(request)
        y = await predicted(served, v2_table(document, served.features))
        output = {"name": "predict", "shape": list(y.shape), "datatype": V2_DATATYPES.get(y.dtype.kind, "BYTES"),
                  "data": y.ravel().tolist()}
        return JSONResponse({"model_name": served.name, "model_version": served.version, "id": document.get("id"),
                             "outputs": [output]}, headers={HEADER: served.run_id})

    async def model(request: Request) -> Response:
        return JSONResponse(slot.served.describe(), headers={HEADER: slot.served.run_id})

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
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
    ], exception_handlers={RequestError: refused, ModelError: refused, BatchcastError: refused})
