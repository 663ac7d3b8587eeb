"""Online predictions: ``batchcast serve``.

- :mod:`~batchcast.serving.requests`: the request formats clients send (MLflow's scoring protocol,
  the Open Inference Protocol v2), read into Arrow tables of the model's features.
- :mod:`~batchcast.serving.loading`: the trained artifact of either contract, checksums verified.
- :mod:`~batchcast.serving.app`, :mod:`~batchcast.serving.batching`, :mod:`~batchcast.serving.observe`,
  :mod:`~batchcast.serving.openapi`: the ASGI application, micro-batching, metrics and access logs,
  the OpenAPI document.
- :mod:`~batchcast.serving.server`, :mod:`~batchcast.serving.isolated`: uvicorn, the watcher that swaps
  models, and the start in the model's environment.
- :mod:`~batchcast.serving.online`, :mod:`~batchcast.serving.kubernetes`: the online log table, and the
  objects ``kubernetes render-serving`` writes.
"""
