"""Kafka, through confluent-kafka (librdkafka): ``kafka://host:port[,host:port]/topic[?property=value]``.

The URL and its librdkafka properties are :mod:`~batchcast.brokers.kafka_url`'s.
The consumer never commits by itself: a batch's offsets are committed once
its outputs are delivered, in the output topic's transaction when there is
one (Kafka to Kafka, exactly once), or stored with the rows in a
warehouse's transaction.
"""

from __future__ import annotations

import datetime as dt
import time

from batchcast.brokers.base import Broker, Message, Positions, Source, Topic, next_positions
from batchcast.brokers.kafka_url import KafkaUrl
from batchcast.errors import BatchcastError, BrokerError, BrokerUnavailable, MissingExtra, SpecError

# librdkafka's fetch queue: the memory a backlog may take before the consumer stops fetching.
QUEUE_KB = 16384


def _client():
    try:
        import confluent_kafka
    except ImportError:
        raise MissingExtra("batchcast stream with Kafka", "stream") from None
    return confluent_kafka


def _translate(exc: Exception, doing: str) -> Exception:
    """A client error as a BrokerError: BrokerUnavailable where retrying can succeed."""
    ck = _client()
    error = exc.args[0] if exc.args and isinstance(exc.args[0], ck.KafkaError) else None
    text = error.str() if error is not None else str(exc)
    if error is not None and error.fatal():
        return BrokerError(f"{doing}: {text}", "another instance with the same group and instance name took over "
                                               "(fenced); this one stops, and its open work is not committed")
    return BrokerUnavailable(f"{doing}: {text}", "check that the brokers are up; the batch is retried")


class KafkaSource(Source):
    positioned = True

    def __init__(self, url: str, group: str, partitions: str | list[int] = "group"):
        self.url = KafkaUrl.parse(url, "[stream] source")
        self.group = group
        self.partitions = partitions  # "group": the group assigns them; "all" or a list: this consumer takes them
        self._consumer = None
        self._assigned: list = []
        self._metadata = None

    def start(self, stored=None, revoking=None) -> None:
        ck = _client()
        config = {**self.url.config(), "group.id": self.group, "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "queued.max.messages.kbytes": QUEUE_KB}
        self._consumer = ck.Consumer(config)

        def assigned(consumer, partitions):
            kept = stored([(p.topic, p.partition) for p in partitions]) if stored else {}
            for p in partitions:
                if (p.topic, p.partition) in kept:
                    p.offset = kept[(p.topic, p.partition)]
            consumer.assign(partitions)
            self._assigned = list(partitions)
            self._metadata = None  # a new generation of the group

        def revoked(consumer, partitions):
            if revoking is not None:
                revoking()
            self._assigned = []
            self._metadata = None

        if self.partitions == "group":
            self._consumer.subscribe([self.url.topic], on_assign=assigned, on_revoke=revoked)
            return
        # Assigned by us, not by the group: no membership to lose when the process is killed (some brokers keep a
        # dead member's partitions for good), and positions are the group's committed ones, or the table's.
        chosen = [ck.TopicPartition(self.url.topic, p) for p in self._chosen()]
        try:
            committed = {(p.topic, p.partition): p.offset for p in self._consumer.committed(chosen, timeout=30)}
        except Exception as exc:
            raise _translate(exc, f"reading the committed offsets of {self.group}") from None
        for p in chosen:
            found = committed.get((p.topic, p.partition), -1)
            p.offset = found if found >= 0 else ck.OFFSET_BEGINNING
        assigned(self._consumer, chosen)

    def _chosen(self) -> list[int]:
        try:
            found = self._consumer.list_topics(self.url.topic, timeout=30).topics[self.url.topic]
        except Exception as exc:
            raise _translate(exc, f"reading the partitions of {self.url.topic}") from None
        if found.error is not None:
            raise BrokerError(f"[stream] source: topic {self.url.topic}: {found.error.str()}",
                              "create the topic, or correct its name in [stream] source")
        known = sorted(found.partitions)
        if self.partitions == "all":
            return known
        missing = [p for p in self.partitions if p not in known]
        if missing:
            raise SpecError(f"[stream] partitions: {self.url.topic} has no partition {missing[0]} "
                            f"(it has {len(known)})", f"list partitions among 0..{len(known) - 1}, or write \"all\"")
        return list(self.partitions)

    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        now = dt.datetime.now(dt.UTC)
        try:
            polled = self._consumer.consume(max_messages, timeout)
        except BatchcastError:  # raised by ``stored`` in a rebalance: the warehouse's own error
            raise
        except Exception as exc:
            raise _translate(exc, f"reading {self.url.topic}") from None
        messages = []
        for m in polled:
            if m.error():
                if m.error().fatal():
                    raise BrokerError(f"reading {self.url.topic}: {m.error().str()}", "see the broker's log")
                continue  # librdkafka retries transient fetch errors itself
            messages.append(Message(m.value(), m.key(), m.topic(), m.partition(), m.offset(),
                                    f"{m.topic()}/{m.partition()}/{m.offset()}", now))
        return messages

    def _partitions(self, positions: Positions) -> list:
        ck = _client()
        return [ck.TopicPartition(topic, partition, offset) for (topic, partition), offset in positions.items()]

    def done(self, messages: list[Message]) -> None:
        if not messages:
            return
        try:
            self._consumer.commit(offsets=self._partitions(next_positions(messages)), asynchronous=False)
        except Exception as exc:
            raise _translate(exc, f"committing the offsets of {self.url.topic}") from None

    def rewind(self, messages: list[Message]) -> None:
        first: Positions = {}
        for m in messages:
            first[(m.source, m.partition)] = min(first.get((m.source, m.partition), m.offset), m.offset)
        held = {(p.topic, p.partition) for p in self._assigned}
        for tp in self._partitions({k: v for k, v in first.items() if k in held}):  # a revoked one: its new owner's
            try:
                self._consumer.seek(tp)
            except Exception:  # noqa: BLE001 - not fetching yet: resume there instead
                self._consumer.assign([tp])

    def pause(self) -> None:
        if self._assigned:
            self._consumer.pause(self._assigned)

    def resume(self) -> None:
        if self._assigned:
            self._consumer.resume(self._assigned)

    def keepalive(self) -> None:
        # Paused, so the group keeps us as a member without our taking more work. A message fetched before
        # the pause may still come back: it is put back, or the batch after the retries would skip it.
        m = self._consumer.poll(0)
        if m is not None and not m.error():
            self._consumer.seek(_client().TopicPartition(m.topic(), m.partition(), m.offset()))

    def lag(self) -> dict[str, int]:
        lags = {}
        for tp in self._consumer.position(self._assigned) if self._assigned else []:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                lags[f"{tp.topic}/{tp.partition}"] = max(high - tp.offset, 0)
        return lags

    def group_metadata(self):
        if self._metadata is None:  # asked for at every transaction, and it costs milliseconds
            self._metadata = self._consumer.consumer_group_metadata()
        return self._metadata

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()  # leaves the group: a member that vanishes blocks it until its session ends
            self._consumer = None


class KafkaTopic(Topic):
    """A topic records go to; ``transactional_id`` makes its sends transactions (exactly once)."""

    transactions = True

    def __init__(self, url: str, transactional_id: str | None = None, where: str = "[stream] topic"):
        self.url = url
        self.parsed = KafkaUrl.parse(url, where)
        self.transactional = transactional_id is not None
        config = {**self.parsed.config(), "linger.ms": 5, "enable.idempotence": True}
        if transactional_id:
            # A killed instance's open transaction holds read_committed readers back until it times out, unless
            # its successor (the same id) aborts it at once: 15 s, not Kafka's 60, for the ids that change.
            config.update({"transactional.id": transactional_id, "transaction.timeout.ms": 15000})
        self._producer = _client().Producer(config)
        if transactional_id:
            try:
                self._producer.init_transactions(30)  # fences any earlier instance with the same id
            except Exception as exc:
                raise _translate(exc, f"starting transactions on {self.parsed.topic}") from None

    def joins(self, other: Topic) -> bool:
        return isinstance(other, KafkaTopic) and other.parsed.bootstrap == self.parsed.bootstrap

    def _produce(self, topic: str, records, delivered=None) -> None:
        """``delivered(err, msg)`` is called for each record; in a transaction, the commit reports a failure."""
        for key, value in records:
            while True:
                try:
                    self._producer.produce(topic, value, key, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.05)
        self._producer.poll(0)

    def send(self, records) -> None:
        if not self.send_later(records)(60):
            raise BrokerUnavailable(f"sending to {self.parsed.topic}: records unacknowledged after 60 s",
                                    "check that the brokers are up; the batch is retried")

    def send_later(self, records):
        left, failed = [len(records)], []

        def delivered(err, msg):
            left[0] -= 1
            if err is not None:
                failed.append(err.str())

        self._produce(self.parsed.topic, records, delivered)

        def wait(timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while left[0] > 0 and not failed and time.monotonic() < deadline:
                self._producer.poll(min(0.1, max(deadline - time.monotonic(), 0)))
            if failed:  # librdkafka gave up on them (after its own retries): they must be sent again
                raise BrokerUnavailable(f"sending to {self.parsed.topic}: {failed[0]}; {len(failed)} records "
                                        "not delivered", "check that the brokers are up; the batch is retried")
            return left[0] == 0

        return wait

    def send_with_position(self, records, positions, source, also=()) -> None:
        ck = _client()
        p = self._producer
        try:
            p.begin_transaction()
            self._produce(self.parsed.topic, records)
            for topic, extra in also:
                self._produce(topic.parsed.topic, extra)
            offsets = [ck.TopicPartition(t, part, off) for (t, part), off in positions.items()]
            if offsets:
                p.send_offsets_to_transaction(offsets, source.group_metadata(), 30)
            p.commit_transaction(60)
        except Exception as exc:
            error = _translate(exc, f"the transaction on {self.parsed.topic}")
            if error.transient:  # a fenced producer cannot abort, and must not try
                try:
                    p.abort_transaction(30)
                except Exception:  # noqa: BLE001 - the commit's own error is the one to report
                    pass
            raise error from None

    def close(self) -> None:
        try:
            self._producer.flush(10)
        except Exception:  # noqa: BLE001 - a fenced producer cannot flush; what stopped it was reported already
            pass


BROKER = Broker(KafkaSource, KafkaTopic, KafkaUrl.parse)
