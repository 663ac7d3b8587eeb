"""``batchcast stream``: events from a broker scored with the champion, delivered exactly once.

- :mod:`~batchcast.streaming.decode`: messages into the model's features, bad ones set aside with their error.
- :mod:`~batchcast.streaming.outputs`: scored rows as a table's rows, topic records and dead letters.
- :mod:`~batchcast.streaming.delivery`: the sinks, written in the order that keeps each guarantee.
- :mod:`~batchcast.streaming.consumer`: the loop: poll, decode, score, deliver, commit; swaps and stops.
- :mod:`~batchcast.streaming.observe`: its metrics, and the small HTTP port that serves them and the probes.
- :mod:`~batchcast.streaming.runner`: the stream in this process: model, source, sinks, probes, signals.
- :mod:`~batchcast.streaming.isolated`: starting it in the model's environment.
- :mod:`~batchcast.streaming.kubernetes`: ``batchcast render-streaming``, its Deployment and autoscaler.

It stands on the online core (:mod:`batchcast.online`), as ``serve`` does,
and on the brokers' port (:mod:`batchcast.brokers`).
"""
