"""The online core: what ``batchcast serve`` and ``batchcast stream`` share; it knows no transport.

- :mod:`~batchcast.online.loading`: the served model, a training run loaded by the one verified loader
  (:func:`batchcast.model.loading.load_run`) and scored by the one scorer.
- :mod:`~batchcast.online.features`: the model's features, and decoded rows (records) read into one Arrow table.
- :mod:`~batchcast.online.slot`, :mod:`~batchcast.online.watcher`: the model being served and its swap, and
  the watcher that swaps in what the alias names.
- :mod:`~batchcast.online.batching`: micro-batching, concurrent callers' rows in one model call.
- :mod:`~batchcast.online.log`: the online log table (``[serve] log_table``), appended off the request path.
- :mod:`~batchcast.online.metrics`: the Prometheus metrics.
"""
