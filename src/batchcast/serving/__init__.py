"""Online predictions over HTTP: ``batchcast serve``, on the online core (:mod:`batchcast.online`).

- :mod:`~batchcast.serving.requests`: the request formats clients send (MLflow's scoring protocol,
  the Open Inference Protocol v2), read into Arrow tables of the model's features.
- :mod:`~batchcast.serving.app`, :mod:`~batchcast.serving.observe`, :mod:`~batchcast.serving.openapi`: the ASGI
  application, the middleware that counts and logs each request, the OpenAPI document.
- :mod:`~batchcast.serving.server`, :mod:`~batchcast.serving.isolated`: uvicorn and the watcher, and the start
  in the model's environment.
- :mod:`~batchcast.serving.kubernetes`: the objects ``kubernetes render-serving`` writes.
"""
