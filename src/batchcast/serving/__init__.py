"""Online predictions: ``batchcast serve`` (work in progress, issue 14).

- :mod:`~batchcast.serving.requests`: the request formats clients send (MLflow's scoring protocol,
  the Open Inference Protocol v2), read into Arrow tables of the model's features.
"""
