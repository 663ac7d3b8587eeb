"""The message brokers the streaming tests run against, started by tests/services.py: each does what they rely on."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.slow


def _name(prefix: str) -> str:
    """A topic or subscription of this test alone: the brokers live for the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_noida_reads_back_every_record_of_every_partition(kafka_broker):
    topic = _name("many")
    kafka_broker.create_topic(topic, partitions=3)
    values = [b"v%d" % i for i in range(1000)]
    kafka_broker.produce(topic, values, keys=[b"k%d" % i for i in range(1000)])

    records = kafka_broker.read(topic)

    assert sorted(r.value for r in records) == sorted(values)
    assert {r.partition for r in records} == {0, 1, 2}
    assert kafka_broker.url(topic) == f"kafka://{kafka_broker.bootstrap}/{topic}"


def test_noida_hides_an_aborted_transaction_from_read_committed(kafka_broker):
    from confluent_kafka import Producer

    topic = _name("txn")
    kafka_broker.create_topic(topic)
    kafka_broker.produce(topic, [b"before"])
    producer = Producer(kafka_broker.config(**{"transactional.id": _name("tx")}))
    producer.init_transactions(10)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, b"aborted-%d" % i)
    producer.flush(10)
    producer.abort_transaction(10)
    kafka_broker.produce(topic, [b"after"])

    assert kafka_broker.transactions
    assert [r.value for r in kafka_broker.read(topic)] == [b"before", b"after"]
    assert [r.value for r in kafka_broker.read(topic, read_committed=False)] == [
        b"before", *(b"aborted-%d" % i for i in range(5)), b"after"]


def test_noida_keeps_records_and_commits_across_a_restart(kafka_broker):
    from confluent_kafka import Consumer, TopicPartition

    topic, group = _name("kept"), _name("group")
    kafka_broker.create_topic(topic)
    kafka_broker.produce(topic, [b"a", b"b", b"c"])
    consumer = Consumer(kafka_broker.config(**{"group.id": group, "enable.auto.commit": False}))
    consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    consumer.close()

    kafka_broker.restart()

    assert [r.value for r in kafka_broker.read(topic)] == [b"a", b"b", b"c"]
    assert kafka_broker.committed(group, topic) == {0: 2}


def test_tansu_reads_back_what_was_produced(tansu_broker):
    """In four batches: Tansu's high watermark stops at the last batch's first record, and read goes past it."""
    topic = _name("plain")
    tansu_broker.create_topic(topic)
    values = [b"t%d" % i for i in range(100)]
    for start in range(0, 100, 25):
        tansu_broker.produce(topic, values[start:start + 25])

    records = tansu_broker.read(topic, timeout=1)

    assert [r.value for r in records] == values
    assert [r.offset for r in records] == list(range(100))
    assert not tansu_broker.transactions


def test_pubsub_delivers_every_message_once(pubsub_emulator):
    topic, subscription = _name("scores"), _name("scores-sub")
    pubsub_emulator.create_topic(topic)
    pubsub_emulator.create_subscription(subscription, topic)
    datas = [b"m%d" % i for i in range(100)]

    ids = pubsub_emulator.publish(topic, datas, attributes=[{"n": str(i)} for i in range(100)])
    pulled = pubsub_emulator.pull_all(subscription)

    assert len(set(ids)) == 100
    assert sorted(data for data, _, _ in pulled) == sorted(datas)
    assert {message_id for _, _, message_id in pulled} == set(ids)
    assert all(attributes == {"n": data.decode()[1:]} for data, attributes, _ in pulled)
    assert pubsub_emulator.url_subscription(subscription) == f"pubsub://batchcast-test/{subscription}"
