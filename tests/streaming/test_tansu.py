"""``batchcast stream`` at least once on Tansu, a Kafka-protocol broker without real transactions.

Tansu accepts the transaction API, but a read_committed reader still sees
aborted records (ENVIRONMENT.md), so exactly-once cannot be tested on it;
these tests run ``guarantee = "at-least-once"`` against it, through the CLI:
a topic in, a topic and a DuckDB table out. The table still holds each input
once, since its rows and the source's positions are written in one warehouse
transaction; the topic may repeat a record, and must miss none.
"""

from __future__ import annotations

import json
import signal
import textwrap
import uuid
from pathlib import Path

import duckdb
import pytest

from tests.conftest import bc, query
from tests.streaming.common import Consumer, stream_service, until

pytestmark = pytest.mark.slow

ROWS = 1_000


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """The trained service, and the application's own scores of every feature row (table ``scores``)."""
    root = tmp_path_factory.mktemp("tansu-stream")
    stream_service(root, ROWS, 'source = "kafka://127.0.0.1:9/unused"\ntable = "unused"\nport = 0\n')
    bc("run", "application", "--date", "2026-01-01", cwd=root)
    return root


def _db(root: Path) -> Path:
    return root / ".batchcast" / "warehouse.duckdb"


def events(root: Path) -> tuple[list[bytes], list[bytes]]:
    """Every feature row as a JSON event (values), keyed by player id (keys)."""
    con = duckdb.connect(str(_db(root)), read_only=True)
    try:
        rows = con.sql("SELECT * EXCLUDE (churned) FROM features ORDER BY player_id").to_arrow_table().to_pylist()
    finally:
        con.close()
    for row in rows:
        row["day"] = row["day"].isoformat()
    return [json.dumps(row).encode() for row in rows], [row["player_id"].encode() for row in rows]


def rows(root: Path, table: str) -> int:
    """Rows in ``table`` (0 while it does not exist, or while the consumer holds the file's lock)."""
    try:
        return query(_db(root), f"SELECT count(*) FROM {table}")[0][0]
    except duckdb.Error:
        return 0


def tail(consumer: Consumer, lines: int = 30) -> str:
    """The end of a consumer's log, also once it has exited (``Consumer.text`` needs its file open)."""
    return "\n".join(consumer.log.read_text().splitlines()[-lines:])


@pytest.mark.parametrize("partitions", ["all", "group"])
def test_at_least_once_scores_every_event_on_tansu(service, tansu_broker, partitions):
    """On Tansu (asserted), at least once: every event scored into the table once and into the topic at least once.

    ``all``: the consumer assigns itself the three partitions; ``group``: it joins a consumer group, with the
    short session Tansu needs (a join waits half of session.timeout.ms).
    """
    assert tansu_broker.name == "tansu" and not tansu_broker.transactions  # this is Tansu, not noida-db
    tag = uuid.uuid4().hex[:8]
    source, out, table = f"events-{tag}", f"scored-{tag}", f"tansu_{partitions}_{tag}"
    tansu_broker.create_topic(source, partitions=3)
    tansu_broker.create_topic(out)
    values, keys = events(service)
    tansu_broker.produce(source, values, keys=keys)
    inputs = tansu_broker.read(source, timeout=1)
    assert len(inputs) == ROWS
    spec = service / "batchcast.toml"
    spec.write_text(spec.read_text().split("\n[stream]\n")[0] + "\n[stream]\n" + textwrap.dedent(f'''
        source = "{tansu_broker.url(source)}?session.timeout.ms=6000"
        group = "tansu-{tag}"
        {'' if partitions == 'group' else 'partitions = "all"'}
        topic = "{tansu_broker.url(out)}"
        table = "{table}"
        guarantee = "at-least-once"
        port = 0
        '''))

    consumer = Consumer(service)
    try:
        until(lambda: rows(service, table) >= ROWS, timeout=60, what=f"{ROWS} rows", consumer=consumer)
        assert f"streaming kafka://{tansu_broker.bootstrap}/{source}" in consumer.text()
    finally:
        code = consumer.stop(signal.SIGTERM)
    assert code == -signal.SIGTERM, tail(consumer)

    message_ids = {f"{source}/{r.partition}/{r.offset}" for r in inputs}
    (n, distinct), = query(_db(service), f"SELECT count(*), count(DISTINCT _message_id) FROM {table}")
    assert (n, distinct) == (ROWS, ROWS)
    assert {r[0] for r in query(_db(service), f"SELECT _message_id FROM {table}")} == message_ids
    assert {r[0] for r in query(_db(service), f"SELECT DISTINCT _partition FROM {table}")} == {0, 1, 2}
    streamed, batch = f"SELECT player_id, label FROM {table}", "SELECT player_id, label FROM scores"
    assert query(_db(service), f"{streamed} EXCEPT {batch}") == []
    assert query(_db(service), f"{batch} EXCEPT {streamed}") == []

    records = tansu_broker.read(out, timeout=1)
    assert len(records) >= ROWS  # at least once: a repeat is allowed, a missing record is not
    decoded = [json.loads(r.value) for r in records]
    assert {d["_message_id"] for d in decoded} == message_ids
    assert all(r.key == d["player_id"].encode() == d["_key"].encode() for r, d in zip(records, decoded, strict=True))
