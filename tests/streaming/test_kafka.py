"""``batchcast stream`` on Kafka (noida-db: transactions, read_committed), through the CLI.

Every input must have exactly one output, in the table and for a
read_committed reader of the output topic, whatever happens to the consumer;
the table and the topic must say what ``batchcast run application`` says of
the same rows.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import uuid

import pytest

from batchcast import Service
from tests.conftest import bc
from tests.services import free_port
from tests.streaming.common import Consumer, count, events, get, metric, rows, set_stream, stream_service, until

pytestmark = pytest.mark.slow  # a broker, consumers and kill trials
ROWS = 10_000
DAY = "2026-01-01"
TRIALS = int(os.environ.get("BATCHCAST_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("BATCHCAST_FAULT_SEED", "13"))


@pytest.fixture(scope="module")
def service(tmp_path_factory, kafka_broker):
    """One trained service for the module, and the application's own predictions for its rows."""
    root = tmp_path_factory.mktemp("kafka-stream")
    stream_service(root, ROWS, 'source = "kafka://127.0.0.1:1/unused"\ntable = "unused"\n')
    bc("run", "application", "--date", DAY, cwd=root)
    return root


def topics(broker, *names: str, partitions: int = 3) -> dict[str, str]:
    """Fresh topics for one test: their names by role."""
    unique = uuid.uuid4().hex[:8]
    made = {name: f"{name}-{unique}" for name in names}
    for topic in made.values():
        broker.create_topic(topic, partitions)
    return made


def count_rows(root, table: str, warehouse: str | None = None) -> int:
    """Rows in ``table`` of the DuckDB warehouse, or of the PostgreSQL one at ``warehouse``."""
    if warehouse is None:
        return count(root, table)
    from batchcast.warehouses import open_warehouse

    with open_warehouse(warehouse) as found:
        return found.count(table) if found.columns(table) else 0


def outputs(broker, topic: str) -> list[dict]:
    return [json.loads(r.value) for r in broker.read(topic, read_committed=True, timeout=5)]


def same_as_application(root, table: str) -> None:
    """The stream's rows are the application's rows for the same players: none more, none fewer, equal labels."""
    for a, b in ((table, "scores"), ("scores", table)):
        extra = rows(root, f"SELECT player_id, label FROM {a} EXCEPT SELECT player_id, label FROM {b}")
        assert not extra, f"in {a} but not in {b}: {extra[:5]}"


def test_events_scored_into_a_topic_and_a_table_as_the_application_scores_them(service, kafka_broker):
    t = topics(kafka_broker, "events", "predictions")
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        table = "stream_all"
        port = 0
        ''')
    values, keys = events(service)
    kafka_broker.produce(t["events"], values, keys)
    with Consumer(service) as consumer:
        until(lambda: count(service, "stream_all") == ROWS, 120, "10,000 rows in the table", consumer)
        assert consumer.stop() == -signal.SIGTERM, consumer.text()  # exits by the signal, after its batch
    same_as_application(service, "stream_all")
    found = rows(service, "SELECT count(*) AS n, count(DISTINCT _message_id) AS ids, count(DISTINCT _model_run) "
                          "AS runs FROM stream_all")
    assert found == [{"n": ROWS, "ids": ROWS, "runs": 1}]
    records = outputs(kafka_broker, t["predictions"])
    assert len(records) == ROWS and len({r["_message_id"] for r in records}) == ROWS
    table = {r["player_id"]: r["label"] for r in rows(service, "SELECT player_id, label FROM scores")}
    assert {r["player_id"]: r["label"] for r in records} == table
    assert all(r["_key"] == r["player_id"] for r in records)  # keyed as the event was


def kill_trials(root, broker, sink: str, table: str, warehouse: str | None = None) -> list[int]:
    """Seeded SIGKILL trials of a consumer streaming ROWS events into ``sink``; the table's rows after each kill.

    Each life gets a new share of the events and works on it in small batches (5 messages, a transaction
    each), so a kill after a random 1 to 2.5 s (about 1 s of start-up) lands in the middle of its share, with
    batches in flight; the counts after each kill show that it did.
    """
    t = topics(broker, "events", "predictions")
    set_stream(root, f'''
        source = "{broker.url(t['events'])}"
        topic = "{broker.url(t['predictions'])}"
        table = "{table}"
        partitions = "all"
        max_batch = 5
        max_wait_ms = 5
        port = 0
        {sink}''')
    values, keys = events(root)
    draw, seen, share = random.Random(SEED), [], -(-ROWS // TRIALS)
    for trial in range(TRIALS):
        part = slice(trial * share, (trial + 1) * share)
        broker.produce(t["events"], values[part], keys[part])
        consumer = Consumer(root)
        # From its start line, not from its launch: a loaded machine's start-up took longer than the whole window.
        until(lambda c=consumer: "streaming" in c.text(), 60, "the consumer's start", consumer)
        time.sleep(draw.uniform(0.1, 1.5))
        assert consumer.stop(signal.SIGKILL) == -signal.SIGKILL, consumer.text()
        seen.append((count_rows(root, table, warehouse), min(part.stop, ROWS)))
    # The last life takes what is left in batches of 500: at 5 a batch a loaded CI machine took over 120 s.
    spec = root / "batchcast.toml"
    spec.write_text(spec.read_text().replace("max_batch = 5\n", "max_batch = 500\n"))
    with Consumer(root) as consumer:
        until(lambda: count_rows(root, table, warehouse) >= ROWS, 180, "every input delivered", consumer)
        consumer.stop()
    ids = [r["_message_id"] for r in outputs(broker, t["predictions"])]
    assert len(ids) == ROWS and len(set(ids)) == ROWS, f"{len(ids)} records for {len(set(ids))} inputs"
    return seen


def test_kill_trials_leave_exactly_one_output_per_input(service, kafka_broker):
    """SIGKILL at seeded random points, restarted each time: each input once in the table and on the topic."""
    seen = kill_trials(service, kafka_broker, "", "stream_killed")
    found = rows(service, "SELECT count(*) AS n, count(DISTINCT _message_id) AS ids FROM stream_killed")
    assert found == [{"n": ROWS, "ids": ROWS}]  # none missing, none twice
    same_as_application(service, "stream_killed")
    assert sum(0 < n < sent for n, sent in seen) >= TRIALS // 2, f"too few kills landed mid-stream: {seen}"


def test_kill_trials_into_postgresql_hold_the_offsets_in_its_transaction(service, kafka_broker, postgres_url):
    """The same trials with PostgreSQL as the warehouse: its transaction holds the rows and the positions."""
    url = f"{postgres_url}?schema=streamed"
    seen = kill_trials(service, kafka_broker, f'\n[warehouse]\nurl = "{url}"\n', "stream_pg", url)
    from batchcast.warehouses import open_warehouse

    with open_warehouse(url) as pg, pg.read("SELECT count(*) AS n, count(DISTINCT _message_id) AS ids, "
                                            "count(DISTINCT player_id) AS players FROM stream_pg") as reader:
        assert reader.read_all().to_pylist() == [{"n": ROWS, "ids": ROWS, "players": ROWS}]
    positions = "SELECT sum(next_offset)::bigint AS n FROM _batchcast_stream_positions"
    with open_warehouse(url) as pg, pg.read(positions) as r:
        assert r.read_all().to_pylist() == [{"n": ROWS}]  # three partitions' positions: every event, once
    assert sum(0 < n < sent for n, sent in seen) >= TRIALS // 2, f"too few kills landed mid-stream: {seen}"


def committed(broker, group: str, topic: str) -> int:
    """The offsets ``group`` has committed on ``topic``, summed over its partitions (0 where none is)."""
    from confluent_kafka import Consumer as Client, TopicPartition

    client = Client(broker.config(**{"group.id": group}))
    try:
        found = client.committed([TopicPartition(topic, p) for p in broker.partitions(topic)], timeout=10)
    finally:
        client.close()
    return sum(max(tp.offset, 0) for tp in found)


def test_at_least_once_into_a_topic_alone_loses_nothing_and_commits_the_batch_in_flight(service, kafka_broker):
    """A topic and no table is pipelined: a batch's offsets are committed once its records are held, while the
    next batch is scored. Kills lose nothing; an idle stream commits its last batch; after SIGTERM a new start
    has nothing to repeat."""
    t, group, port = topics(kafka_broker, "events", "predictions"), f"alo-{uuid.uuid4().hex[:8]}", free_port()
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        guarantee = "at-least-once"
        group = "{group}"
        partitions = "all"
        max_batch = 20
        max_wait_ms = 5
        port = {port}
        ''')
    values, keys = events(service)
    draw, seen, share = random.Random(SEED), [], 2000

    def sent() -> float:
        return metric(get(port, "/metrics")[1], "batchcast_stream_records_produced_total")

    for trial in range(4):  # kills with a batch in flight: sent, not yet committed
        part = slice(trial * share, (trial + 1) * share)
        kafka_broker.produce(t["events"], values[part], keys[part])
        consumer = Consumer(service)
        until(lambda: sent() >= 100, 60, "the consumer's first batches", consumer)  # from there, a fast one
        time.sleep(draw.uniform(0, 0.1))
        assert consumer.stop(signal.SIGKILL) == -signal.SIGKILL, consumer.text()
        seen.append((len({r["_message_id"] for r in outputs(kafka_broker, t["predictions"])}), part.stop))
    kafka_broker.produce(t["events"], values[4 * share:], keys[4 * share:])
    with Consumer(service) as consumer:
        # Nothing more arrives: the last batch is committed by the idle poll, not by a next batch.
        until(lambda: committed(kafka_broker, group, t["events"]) == ROWS, 120, "every offset committed", consumer)
        assert consumer.stop() == -signal.SIGTERM, consumer.text()
    records = outputs(kafka_broker, t["predictions"])
    assert {r["_message_id"] for r in records} == {f"{t['events']}/{p}/{o}" for p, o in offsets(kafka_broker,
                                                                                               t["events"])}
    with Consumer(service) as again:  # started after the stop: its committed offsets are the end
        until(lambda: "streaming" in again.text(), 60, "the consumer's start", again)
        time.sleep(2)
        again.stop()
    assert len(outputs(kafka_broker, t["predictions"])) == len(records)  # nothing read again
    assert sum(0 < n < sent for n, sent in seen) >= 2, f"too few kills landed mid-stream: {seen}"


def offsets(broker, topic: str) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in broker.read(topic, timeout=5)]


def test_bad_messages_go_to_the_dead_letter_topic_and_the_partition_moves_on(service, kafka_broker):
    t = topics(kafka_broker, "events", "predictions", "dead", partitions=1)
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        dead_letter = "{kafka_broker.url(t['dead'])}"
        max_batch = 50
        port = 0
        ''')
    values, keys = events(service, 300)
    good = json.loads(values[0])
    bad = {b"not json {": "is not JSON",
           json.dumps({k: v for k, v in good.items() if k != "f3"}).encode(): "column 'f3' is missing",
           json.dumps({**good, "f2": "high"}).encode(): "column 'f2' row 0: \"high\" is not a number",
           json.dumps({**good, "f1": 666}).encode(): "f1 = 666 is a value this model refuses"}
    mixed, mixed_keys, rounds = [], [], 0
    for i, (value, key) in enumerate(zip(values, keys, strict=True)):
        mixed.append(value)
        mixed_keys.append(key)
        if i % 70 == 10:  # each bad kind among good ones, inside batches of good messages
            rounds += 1
            for payload in bad:
                mixed.append(payload)
                mixed_keys.append(b"bad")
    kafka_broker.produce(t["events"], mixed, mixed_keys)
    with Consumer(service, "--guarantee", "at-least-once") as consumer:  # plain sends: dead letters the same
        until(lambda: len(kafka_broker.read(t["predictions"], timeout=1)) >= 300, 60, "300 predictions", consumer)
        consumer.stop()
    assert "(at-least-once)" in consumer.text()
    assert len(outputs(kafka_broker, t["predictions"])) == 300  # every good message, once
    letters = outputs(kafka_broker, t["dead"])
    assert len(letters) == rounds * len(bad)
    for letter in letters:
        payload = letter["payload"].encode()
        assert bad[payload] in letter["error"], letter
        assert letter["fix"] and letter["_partition"] == 0 and letter["_offset"] >= 0 and letter["_key"] == "bad"
        assert letter["_model_run"].startswith("scores/2/training/")


def beats(service, source: str) -> list[dict]:
    from batchcast.runs.heartbeats import heartbeats

    found = Service(service / "batchcast.toml")
    return [b for b in heartbeats(found.store, found.name, found.version) if b["where"] == source]


def test_a_promotion_during_a_stream_swaps_between_batches(service, kafka_broker):
    t = topics(kafka_broker, "events", "predictions", partitions=1)
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        max_batch = 100
        poll = 0.5
        port = 0
        ''')
    first = bc("run", "training", cwd=service).stdout.split()[0]  # the champion while the first half streams
    bc("promote", first, cwd=service)
    values, keys = events(service, 2000)
    with Consumer(service) as consumer:
        kafka_broker.produce(t["events"], values[:1000], keys[:1000])
        until(lambda: len(kafka_broker.read(t["predictions"], timeout=1)) >= 1000, 60, "the first half", consumer)
        second = bc("run", "training", cwd=service).stdout.split()[0]
        bc("promote", second, cwd=service)
        consumer.signal(signal.SIGHUP)  # check the alias now
        until(lambda: f"now serving {second}" in consumer.text(), 30, "the swap", consumer)
        kafka_broker.produce(t["events"], values[1000:], keys[1000:])
        until(lambda: len(kafka_broker.read(t["predictions"], timeout=1)) >= 2000, 60, "the second half", consumer)
        # The dashboard's view of it: one heartbeat for this source (the module's earlier streams, some killed,
        # left their own), naming the model now streaming.
        source = kafka_broker.url(t["events"])
        until(lambda: [(b["kind"], b["run_id"]) for b in beats(service, source)] == [("stream", second)], 10,
              "a beat", consumer)
        consumer.stop()
    assert beats(service, source) == []  # removed at a clean stop
    records = sorted(outputs(kafka_broker, t["predictions"]), key=lambda r: r["_offset"])
    assert [r["_offset"] for r in records] == list(range(2000))  # none lost, none twice
    runs = [r["_model_run"] for r in records]
    switch = runs.index(second)
    assert set(runs[:switch]) == {first} and set(runs[switch:]) == {second}  # the old run, then the new one
    assert switch >= 1000
    by_batch: dict[str, set] = {}
    for r in records:
        by_batch.setdefault(r["_predicted_at"], set()).add(r["_model_run"])
    assert all(len(used) == 1 for used in by_batch.values())  # never a mix within a batch


def test_sigterm_under_load_loses_nothing_and_repeats_nothing(service, kafka_broker):
    t = topics(kafka_broker, "events", "predictions")
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        table = "stream_terminated"
        max_batch = 100
        port = 0
        ''')
    values, keys = events(service)
    kafka_broker.produce(t["events"], values[:2000], keys[:2000])
    consumer = Consumer(service)
    until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.5)) > 0, 60, "a first output", consumer)
    kafka_broker.produce(t["events"], values[2000:], keys[2000:])  # the backlog it is stopped in
    assert consumer.stop() == -signal.SIGTERM, consumer.text()
    done = len(outputs(kafka_broker, t["predictions"]))
    assert 0 < done < ROWS
    with Consumer(service) as again:  # the same group: the first one left it cleanly
        until(lambda: count(service, "stream_terminated") == ROWS, 120, "the rest", again)
        again.stop()
    ids = [r["_message_id"] for r in outputs(kafka_broker, t["predictions"])]
    assert len(ids) == ROWS == len(set(ids))
    assert rows(service, "SELECT count(DISTINCT _message_id) AS n FROM stream_terminated") == [{"n": ROWS}]


def test_stream_serve_and_application_give_the_same_predictions(service, kafka_broker):
    """One scorer for every path: the same rows streamed, served over HTTP and applied as a batch agree."""
    from tests.serving.servers import call, start, stop

    t = topics(kafka_broker, "events", partitions=1)
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        table = "stream_same"
        port = 0
        ''')
    values, keys = events(service, 500)
    kafka_broker.produce(t["events"], values, keys)
    with Consumer(service) as consumer:
        until(lambda: count(service, "stream_same") == 500, 60, "500 rows", consumer)
        consumer.stop()
    port, server = start(service, "--inline")
    try:
        records = [json.loads(v) for v in values]
        status, _, answer = call(port, "/invocations", {"dataframe_records": records})
    finally:
        stop(server)
    assert status == 200
    served = {r["player_id"]: bool(p) for r, p in zip(records, answer["predictions"], strict=True)}
    streamed = {r["player_id"]: r["label"] for r in rows(service, "SELECT player_id, label FROM stream_same")}
    applied = {r["player_id"]: r["label"] for r in rows(
        service, "SELECT player_id, label FROM scores WHERE player_id IN (SELECT player_id FROM stream_same)")}
    assert served == streamed == applied and len(served) == 500


def test_a_new_champion_that_fails_verification_is_refused_alerted_and_the_old_one_streams_on(
        service, kafka_broker, webhook):
    url, received = webhook
    t = topics(kafka_broker, "events", "predictions", partitions=1)
    set_stream(service, f'''
        source = "{kafka_broker.url(t['events'])}"
        topic = "{kafka_broker.url(t['predictions'])}"
        poll = 60
        port = 0

        [alerts]
        webhook = "{url}"
        ''')
    old = bc("run", "training", cwd=service).stdout.split()[0]
    bc("promote", old, cwd=service)
    values, keys = events(service, 400)
    with Consumer(service) as consumer:
        kafka_broker.produce(t["events"], values[:200], keys[:200])
        until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.5)) >= 200, 60, "the first 200", consumer)
        new = bc("run", "training", cwd=service).stdout.split()[0]
        bc("promote", new, cwd=service)
        stored = service / ".batchcast" / "artifacts" / new / "output" / "model.joblib"
        stored.write_bytes(stored.read_bytes()[:-10])  # truncated after it was sealed and promoted
        consumer.signal(signal.SIGHUP)
        until(lambda: received, 30, "the alert", consumer)
        kafka_broker.produce(t["events"], values[200:], keys[200:])
        until(lambda: len(kafka_broker.read(t["predictions"], timeout=0.5)) >= 400, 60, "the rest", consumer)
        consumer.stop()
    assert f"model {new} not swapped in, still serving {old}" in consumer.text()
    assert {r["_model_run"] for r in outputs(kafka_broker, t["predictions"])} == {old}
    assert len(received) == 1 and received[0]["batchcast"]["run_id"] == new
