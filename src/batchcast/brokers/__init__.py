"""Message brokers behind one small port: where ``batchcast stream`` reads events and sends predictions.

- :mod:`~batchcast.brokers.base`: the port (:class:`~batchcast.brokers.base.Source`,
  :class:`~batchcast.brokers.base.Topic`, :class:`~batchcast.brokers.base.Message`).
- :mod:`~batchcast.brokers.kafka`: Kafka (``kafka://host:port/topic``), with transactions.
- :mod:`~batchcast.brokers.kafka_url`: its URL, and the client configuration the URL gives.
- :mod:`~batchcast.brokers.pubsub`: Google Pub/Sub (``pubsub://project/subscription`` or ``/topic``).

A backend is registered by URL scheme in :data:`batchcast.registry.BROKERS`; a third broker
(Kinesis, Redis Streams) is one module here and one row there.
"""
