"""Operating a stream on Kafka (noida-db): a slow sink, a rebalance, a zombie, the probes, the model's environment."""

from __future__ import annotations

import json
import signal
import time

import duckdb
import pytest

from tests.services import free_port
from tests.streaming.common import Consumer, count, events, get, metric, rows, set_stream, stream_service, until
from tests.streaming.test_kafka import outputs, topics

pytestmark = pytest.mark.slow  # a broker and consumers
ROWS = 6000


@pytest.fixture(scope="module")
def service(tmp_path_factory, kafka_broker):
    root = tmp_path_factory.mktemp("operations")
    stream_service(root, ROWS, 'source = "kafka://127.0.0.1:1/unused"\ntable = "unused"\n')
    return root


def test_a_slow_sink_pauses_the_source_and_the_batch_is_delivered_once_it_is_back(service, kafka_broker):
    t = topics(kafka_broker, "events")
    port = free_port()
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        table = "stream_slow"
        max_batch = 100
        port = {port}

        [warehouse]
        url = "duckdb:///.batchcast/warehouse.duckdb?lock_wait=0.2"
        ''')
    values, keys = events(service)
    with Consumer(service) as consumer:
        until(lambda: get(port, "/health/ready")[0] == 200, 30, "ready", consumer)
        kafka_broker.produce(t["events"], values[:100], keys[:100])
        until(lambda: count(service, "stream_slow") == 100, 30, "a first batch", consumer)  # then it idles
        holder = duckdb.connect(str(service / ".batchcast" / "warehouse.duckdb"))  # the warehouse away: locked
        try:
            kafka_broker.produce(t["events"], values[100:], keys[100:])
            until(lambda: metric(get(port, "/metrics")[1], "batchcast_stream_batch_retries_total") >= 2, 30,
                  "retries while the warehouse is locked", consumer)
            status, text = get(port, "/metrics")
            assert metric(text, "batchcast_stream_lag") > 0  # the backlog waits in the broker
            assert metric(text, "batchcast_stream_messages_total") < ROWS
            assert get(port, "/health/live")[0] == 200  # retrying is alive
        finally:
            holder.close()
        until(lambda: count(service, "stream_slow") == ROWS, 60, "every row once the warehouse is back", consumer)
        text = get(port, "/metrics")[1]
        assert consumer.stop() == -signal.SIGTERM
    assert "retrying in" in consumer.text() and "delivered after" in consumer.text()
    assert rows(service, "SELECT count(DISTINCT _message_id) AS n FROM stream_slow") == [{"n": ROWS}]
    assert metric(text, "batchcast_stream_rows_delivered_total") == ROWS
    assert 'batchcast_model_info{alias="",model_run="scores/2/training/' in text  # the run, as a label


def test_a_rebalance_hands_partitions_over_and_nothing_is_delivered_twice(service, kafka_broker):
    t = topics(kafka_broker, "events", "predictions")
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        table = "stream_rebalanced"
        group = "rebalanced"
        max_batch = 20
        port = 0
        ''')
    values, keys = events(service)
    kafka_broker.produce(t["events"], values, keys)
    first = Consumer(service)
    until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.3)) > 200, 60, "the first consumer", first)
    with Consumer(service) as second:  # joins the group: the partitions are shared out again
        until(lambda: "streaming" in second.text(), 30, "the second consumer", second)
        time.sleep(2)
        assert first.stop() == -signal.SIGTERM  # leaves: its partitions go to the second
        until(lambda: count(service, "stream_rebalanced") == ROWS, 90, "the rest, by the second", second)
        second.stop()
    ids = [r["_message_id"] for r in outputs(kafka_broker, t["predictions"])]
    assert len(ids) == ROWS == len(set(ids))
    assert rows(service, "SELECT count(DISTINCT _message_id) AS n, count(*) AS rows FROM stream_rebalanced") == [
        {"n": ROWS, "rows": ROWS}]


def test_a_fenced_zombie_never_commits(service, kafka_broker, webhook):
    """Two consumers with one instance name: the newer fences the older, whose open batch never commits."""
    url, received = webhook
    t = topics(kafka_broker, "events", "predictions")
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        partitions = "all"
        instance = "pod-0"
        max_batch = 5
        port = 0

        [alerts]
        webhook = "{url}"
        ''')
    values, keys = events(service)
    kafka_broker.produce(t["events"], values, keys)  # small batches: work in hand when its successor starts
    zombie = Consumer(service)
    until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.3)) > 100, 60, "the first consumer", zombie)
    with Consumer(service) as successor:
        assert zombie.wait(60) == 1, zombie.text()  # fenced: it stops, with one line saying why
        assert "fenced" in zombie.text()
        assert [a["batchcast"]["status"] for a in received] == ["stopped"] and "fenced" in received[0]["text"]
        until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.5)) >= ROWS, 90, "every input", successor)
        successor.stop()
    ids = [r["_message_id"] for r in outputs(kafka_broker, t["predictions"])]
    assert len(ids) == ROWS == len(set(ids))  # nothing the zombie had open was committed


def test_the_model_environment_streams_as_inline_does(service, kafka_broker):
    """Without --inline, batchcast stream runs in the model's own environment (built once, with the broker client)."""
    t = topics(kafka_broker, "events", "predictions", partitions=1)
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        port = 0
        ''')
    values, keys = events(service, 200)
    kafka_broker.produce(t["events"], values, keys)
    consumer = Consumer(service, inline=False)
    until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.3)) >= 200, 300, "200 predictions", consumer)
    assert consumer.stop() == -signal.SIGTERM
    assert "building the isolated environment" in consumer.text() or "streaming" in consumer.text()
    records = outputs(kafka_broker, t["predictions"])
    assert sorted(r["player_id"] for r in records) == sorted(json.loads(v)["player_id"] for v in values)
