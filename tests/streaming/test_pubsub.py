"""``batchcast stream`` on Google's Pub/Sub emulator, through the CLI: a subscription in, a table and topics out.

One trained service serves the module (training is the costly part); each
test rewrites its ``[stream]`` table, with topics and subscriptions of its
own (the emulator lives for the whole session). Pub/Sub has no offsets: a
redelivered message is recognised by its message id, and the table holds
each input once however often Pub/Sub delivers it (warehouses/base.py's
``deliver``); a topic sink is at least once.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import signal
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import duckdb
import pytest

from tests.conftest import bc, query
from tests.services import free_port
from tests.streaming.common import Consumer, stream_service, until

pytestmark = pytest.mark.slow

ROWS = 5_000  # feature rows: every event of the module is one of them
ACK_DEADLINE = 10  # seconds; Pub/Sub's least: an unacknowledged message comes back after it


def _name(prefix: str) -> str:
    """A topic or subscription of this test alone: the emulator lives for the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def service(tmp_path_factory, pubsub_emulator) -> Path:
    """The trained service, and the application's own scores of every feature row (table ``scores``)."""
    root = tmp_path_factory.mktemp("pubsub-stream")
    stream_service(root, ROWS, 'source = "pubsub://batchcast-test/unused"\ntable = "unused"\nport = 0\n')
    bc("run", "application", "--date", "2026-01-01", cwd=root)
    return root


def configure(root: Path, stream: str) -> None:
    """Replace the spec's ``[stream]`` table (the model, trained once, stays)."""
    spec = root / "batchcast.toml"
    base = spec.read_text().split("\n[stream]\n")[0]
    spec.write_text(base + "\n[stream]\nport = 0\n" + textwrap.dedent(stream))


def _db(root: Path) -> Path:
    return root / ".batchcast" / "warehouse.duckdb"


def events(root: Path, limit: int | None = None, offset: int = 0) -> list[bytes]:
    """Feature rows as JSON events, in player order."""
    con = duckdb.connect(str(_db(root)), read_only=True)
    try:
        sql = (f"SELECT * EXCLUDE (churned) FROM features ORDER BY player_id LIMIT {limit or ROWS} "
               f"OFFSET {offset}")
        rows = con.sql(sql).to_arrow_table().to_pylist()
    finally:
        con.close()
    for row in rows:
        row["day"] = row["day"].isoformat()
    return [json.dumps(row).encode() for row in rows]


def rows(root: Path, table: str, *, locked_is_zero: bool = True) -> int:
    """Rows in ``table``: 0 while it does not exist, or (unless told otherwise) while a consumer holds the file."""
    try:
        return query(_db(root), f"SELECT count(*) FROM {table}")[0][0]
    except duckdb.CatalogException:
        return 0
    except duckdb.Error:
        if locked_is_zero:
            return 0
        raise


def retained_subscription(ps, name: str, topic: str) -> None:
    """A subscription that keeps acknowledged messages, so that it can be sought back in time."""
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as subscriber:
        subscriber.create_subscription(request={
            "name": ps.subscription_path(name), "topic": ps.topic_path(topic),
            "ack_deadline_seconds": ACK_DEADLINE, "retain_acked_messages": True})


def seek(ps, subscription: str, when: dt.datetime) -> None:
    """Mark every message published since ``when`` unacknowledged: Pub/Sub delivers them again."""
    from google.cloud import pubsub_v1
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    with pubsub_v1.SubscriberClient() as subscriber:
        subscriber.seek(request={"subscription": ps.subscription_path(subscription), "time": stamp})


def metric(port: int, name: str) -> float:
    """One unlabelled sample of the consumer's /metrics (0 while it does not answer yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return next((float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " ")), 0)


def tail(consumer: Consumer, lines: int = 30) -> str:
    """The end of a consumer's log, also once it has exited (``Consumer.text`` needs its file open)."""
    return "\n".join(consumer.log.read_text().splitlines()[-lines:])


def ids_in(root: Path, table: str) -> list[str]:
    return [r[0] for r in query(_db(root), f"SELECT _message_id FROM {table}")]


def test_every_message_is_one_row_and_the_table_equals_the_batch_application(service, pubsub_emulator):
    ps = pubsub_emulator
    topic, sub, out, out_sub = _name("events"), _name("events-sub"), _name("scored"), _name("scored-sub")
    ps.create_topic(topic)
    ps.create_subscription(sub, topic, ack_deadline=ACK_DEADLINE)
    ps.create_topic(out)
    ps.create_subscription(out_sub, out)
    table = "stream_" + uuid.uuid4().hex[:8]
    configure(service, f'''
        source = "{ps.url_subscription(sub)}"
        topic = "{ps.url_topic(out)}"
        table = "{table}"
        ''')
    sent = events(service, 2_000)
    ids = ps.publish(topic, sent)
    assert len(set(ids)) == 2_000

    consumer = Consumer(service)
    try:
        until(lambda: rows(service, table) >= 2_000, timeout=60, what="2,000 rows in the table", consumer=consumer)
    finally:
        code = consumer.stop(signal.SIGTERM)
    stopped = time.monotonic()
    assert code == -signal.SIGTERM, tail(consumer)

    (n, distinct), = query(_db(service), f"SELECT count(*), count(DISTINCT _message_id) FROM {table}")
    assert (n, distinct) == (2_000, 2_000)
    assert set(ids_in(service, table)) == set(ids)
    # The same rows scored by `batchcast run application`: equal both ways, on the ids and the prediction.
    players = "(SELECT player_id FROM features ORDER BY player_id LIMIT 2000)"
    batch = f"SELECT player_id, label FROM scores WHERE player_id IN {players}"
    streamed = f"SELECT player_id, label FROM {table}"
    assert query(_db(service), f"SELECT count(*) FROM ({batch})") == [(2_000,)]
    assert query(_db(service), f"{streamed} EXCEPT {batch}") == []
    assert query(_db(service), f"{batch} EXCEPT {streamed}") == []
    (sources,) = query(_db(service), f"SELECT list(DISTINCT _source) FROM {table}")
    assert sources == ([sub],)

    # The topic sink is at least once: a repeat is allowed, a missing record is not.
    records = [json.loads(data) for data, _, _ in ps.pull_all(out_sub, timeout=10)]
    assert len(records) >= 2_000
    assert {r["_message_id"] for r in records} == set(ids)
    assert {r["player_id"] for r in records} == {json.loads(e)["player_id"] for e in sent}
    assert all({"label", "_model_run", "_predicted_at", "_key"} <= r.keys() for r in records)

    # Every input was acknowledged: nothing comes back, even once an unacknowledged one's deadline has passed.
    left = ps.pull_all(sub, timeout=max(1.0, ACK_DEADLINE + 1 - (time.monotonic() - stopped)))
    assert left == []


def test_kill_trials_leave_exactly_one_row_per_message(service, pubsub_emulator):
    """SIGKILL at random moments, then a restart: redelivered messages are deduplicated by their message id.

    Twenty seeded trials; before each, a 250-event chunk is published, so every consumer has work. Each is
    killed a random 0.3 to 2.0 s after it was started, but never before it holds a batch (its /metrics count
    a pull), and then a random 0 to 0.3 s later: on a loaded machine the model alone can take seconds to
    load, and a kill before the first pull tests nothing. Small batches give many windows to land in
    (pulled, committed, acknowledged). A message pulled and not acknowledged comes back after the
    subscription's 10 s deadline. Whether a kill fell between a commit and its acknowledgement is chance;
    so, at the end, the subscription is also sought back to before the first publish, and Pub/Sub delivers
    every message again to the last consumer, which must add only the rows the kills left missing.
    """
    ps = pubsub_emulator
    topic, sub = _name("kills"), _name("kills-sub")
    ps.create_topic(topic)
    retained_subscription(ps, sub, topic)
    table = "killed_" + uuid.uuid4().hex[:8]
    configure(service, f'''
        source = "{ps.url_subscription(sub)}"
        table = "{table}"
        max_batch = 50
        ''')
    trials, total = 20, 5_000
    chunk = total // trials
    rng = random.Random(20261201)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    ids: list[str] = []
    held, after = [], []  # per trial: whether it had pulled when killed, and the table's rows after the kill
    for trial in range(trials):
        ids += ps.publish(topic, events(service, chunk, offset=trial * chunk))
        started, delay, port = time.monotonic(), rng.uniform(0.3, 2.0), free_port()
        consumer = Consumer(service, "--port", str(port))
        until(lambda c=consumer: "streaming pubsub://" in c.text(), timeout=60, what="the consumer streaming",
              consumer=consumer)
        streaming = time.monotonic()
        while metric(port, "batchcast_stream_messages_total") == 0 and time.monotonic() - streaming < 5:
            time.sleep(0.02)
        time.sleep(max(started + delay - time.monotonic(), rng.uniform(0.0, 0.3)))
        held.append(metric(port, "batchcast_stream_messages_total") > 0)
        assert consumer.stop(signal.SIGKILL) == -signal.SIGKILL, tail(consumer)
        after.append(rows(service, table, locked_is_zero=False))  # no one holds it now
    assert len(set(ids)) == total
    assert sum(held) >= trials // 2, f"trials killed holding messages: {held}"

    seek(ps, sub, before)  # every message, acknowledged or not, is delivered again
    port = free_port()
    consumer = Consumer(service, "--port", str(port))
    try:
        until(lambda: metric(port, "batchcast_stream_messages_total") >= total and rows(service, table) >= total,
              timeout=90, what=f"{total} messages consumed again and {total} rows", consumer=consumer)
        added = metric(port, "batchcast_stream_rows_delivered_total")
    finally:
        code = consumer.stop(signal.SIGTERM)
    assert code == -signal.SIGTERM, tail(consumer)

    (n, distinct), = query(_db(service), f"SELECT count(*), count(DISTINCT _message_id) FROM {table}")
    assert (n, distinct) == (total, total), f"rows after each kill: {after}"
    assert set(ids_in(service, table)) == set(ids)
    assert added == total - after[-1], f"rows after each kill: {after}"


def test_bad_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(service, pubsub_emulator):
    ps = pubsub_emulator
    topic, sub, dead, dead_sub = _name("mixed"), _name("mixed-sub"), _name("dead"), _name("dead-sub")
    ps.create_topic(topic)
    ps.create_subscription(sub, topic, ack_deadline=ACK_DEADLINE)
    ps.create_topic(dead)
    ps.create_subscription(dead_sub, dead)
    table = "mixed_" + uuid.uuid4().hex[:8]
    configure(service, f'''
        source = "{ps.url_subscription(sub)}"
        table = "{table}"
        dead_letter = "{ps.url_topic(dead)}"
        ''')
    good = events(service, 300)
    template = json.loads(good[0])
    missing = {k: v for k, v in template.items() if k != "f3"} | {"player_id": "bad-missing"}
    bad = {
        "not-json": b'{"player_id": "bad-json", "f1": ',
        "missing": json.dumps(missing).encode(),
        "wrong-type": json.dumps(template | {"player_id": "bad-type", "f1": "high"}).encode(),
        "model-error": json.dumps(template | {"player_id": "bad-model", "f1": 666}).encode(),
        "not-utf-8": b"\xff\xfe\x00 not text",
    }
    mixed = good[:100] + [bad["not-json"]] + good[100:150] + [bad["missing"], bad["wrong-type"]] \
        + good[150:200] + [bad["model-error"], bad["not-utf-8"]]
    published = dict(zip(ps.publish(topic, mixed), mixed, strict=True))
    bad_ids = {message_id: kind for message_id, data in published.items() for kind, b in bad.items() if data == b}
    assert len(bad_ids) == 5

    consumer = Consumer(service)
    try:
        until(lambda: rows(service, table) >= 200, timeout=60, what="the 200 good rows", consumer=consumer)
        later = ps.publish(topic, good[200:])  # after the bad ones: the stream kept going
        until(lambda: rows(service, table) >= 300, timeout=60, what="the 100 later rows", consumer=consumer)
        assert consumer.proc.poll() is None
    finally:
        code = consumer.stop(signal.SIGTERM)
    assert code == -signal.SIGTERM, tail(consumer)

    good_ids = set(published) - set(bad_ids) | set(later)
    assert sorted(ids_in(service, table)) == sorted(good_ids)
    letters = {json.loads(data)["_message_id"]: json.loads(data) for data, _, _ in ps.pull_all(dead_sub, timeout=10)}
    assert set(letters) == set(bad_ids)
    for message_id, kind in bad_ids.items():
        letter = letters[message_id]
        if kind == "not-utf-8":  # as it came, in base64
            assert (letter["encoding"], base64.b64decode(letter["payload"])) == ("base64", published[message_id])
        else:
            assert (letter["encoding"], letter["payload"]) == ("utf-8", published[message_id].decode()), kind
        assert letter["_source"] == sub
        assert letter["fix"]
    by_kind = {kind: letters[message_id] for message_id, kind in bad_ids.items()}
    assert "not JSON" in by_kind["not-json"]["error"] and "not JSON" in by_kind["not-utf-8"]["error"]
    assert "'f3'" in by_kind["missing"]["error"] and "missing" in by_kind["missing"]["error"]
    assert "'f1'" in by_kind["wrong-type"]["error"] and "high" in by_kind["wrong-type"]["error"]
    assert "f1 = 666" in by_kind["model-error"]["error"] and "ValueError" in by_kind["model-error"]["error"]
    assert by_kind["model-error"]["type"] == "ModelError"
    assert {letter["type"] for kind, letter in by_kind.items() if kind != "model-error"} == {"RequestError"}


def test_a_batch_whose_delivery_waits_is_not_handed_to_another_consumer(service, pubsub_emulator):
    """While a batch's delivery waits (the warehouse file locked by another process for longer than the
    subscription's 10 s ack deadline), the consumer keeps its messages leased: a second consumer of the
    subscription gets none of them, and once the lock goes every message is one row, consumed once."""
    import warnings

    from google.cloud import pubsub_v1

    ps = pubsub_emulator
    topic, sub = _name("held"), _name("held-sub")
    ps.create_topic(topic)
    ps.create_subscription(sub, topic, ack_deadline=ACK_DEADLINE)
    table = "held_" + uuid.uuid4().hex[:8]
    configure(service, f'''
        source = "{ps.url_subscription(sub)}"
        table = "{table}"
        ''')
    port = free_port()
    stolen, sent = [], events(service, 100)
    lock = duckdb.connect(str(_db(service)))  # this process writes the file now: the consumer's delivery waits
    try:
        consumer = Consumer(service, "--port", str(port))
        try:
            ids = ps.publish(topic, sent)
            until(lambda: metric(port, "batchcast_stream_messages_total") >= 100, timeout=30,
                  what="the batch in the consumer's hands", consumer=consumer)
            with pubsub_v1.SubscriberClient() as other, warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # return_immediately: right for the emulator
                deadline = time.monotonic() + ACK_DEADLINE + 3
                while time.monotonic() < deadline:
                    response = other.pull(subscription=ps.subscription_path(sub), max_messages=1000,
                                          return_immediately=True, timeout=5)
                    stolen += [r.message.message_id for r in response.received_messages]  # never acknowledged
                    time.sleep(0.5)
        finally:
            lock.close()
        until(lambda: rows(service, table) >= 100, timeout=60, what="100 rows", consumer=consumer)
        consumed = metric(port, "batchcast_stream_messages_total")
    finally:
        code = consumer.stop(signal.SIGTERM)
    assert code == -signal.SIGTERM, tail(consumer)
    assert stolen == [], f"{len(set(stolen))} messages in the consumer's hands were delivered to another"
    assert consumed == 100
    assert sorted(ids_in(service, table)) == sorted(ids)
