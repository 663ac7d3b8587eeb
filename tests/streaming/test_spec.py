"""``[stream]`` in batchcast.toml: every mistake is one line naming the key, the value and the fix."""

from __future__ import annotations

import pytest

from batchcast.errors import SpecError
from batchcast.spec import load_spec
from tests.conftest import bc
from tests.test_spec import GOOD, write

STREAM = '\n[stream]\nsource = "kafka://127.0.0.1:9092/events"\ntable = "scores_stream"\n'


def test_a_stream_takes_the_applications_schema_and_its_defaults(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + STREAM), environ={})
    assert str(spec.stream.schema_) == "player_id:STRING,label:BOOL"
    assert (spec.stream.guarantee, spec.stream.partitions, spec.stream.port) == ("exactly-once", "group", 9464)


@pytest.mark.parametrize("line, expected", [
    ('source = "kafka://127.0.0.1:9092/events"', "[stream] delivers nowhere"),
    ('source = "nats://h:1/x"\ntable = "t"', "[stream] source = 'nats://h:1/x' has an unknown scheme"),
    ('source = "kafka://events"\ntable = "t"', "names no broker as host:port"),
    ('source = "kafka://h:9092/bad topic!"\ntable = "t"', "'bad topic!' is not a Kafka topic name"),
    ('source = "kafka://h:9092/e?Bad-Key=1"\ntable = "t"', "'Bad-Key' is not a librdkafka property name"),
    ('source = "pubsub://p/s"\ntable = "t"', "is not pubsub://project/name"),
    ('source = "pubsub://my-project/events-sub"\ntable = "t"\ngroup = "g"', "group and partitions are Kafka's"),
    ('source = "kafka://h:9092/e"\ntable = "t; drop"', "'t; drop' is not a valid table name"),
    ('source = "kafka://h:9092/e"\ntopic = "kafka://h:9092/out"\ndead_letter = "s3://b/x"',
     "[stream] dead_letter = 's3://b/x' has an unknown scheme"),
    ('source = "kafka://h:9092/e"\ntable = "t"\npartitions = []', "lists no partition"),
    ('source = "kafka://h:9092/e"\ntable = "t"\nguarantee = "exactly-twice"', "guarantee"),
    ('source = "kafka://h:9092/e"\ntable = "t"\ngroup = "a group"', "is not a name"),
])
def test_a_bad_stream_table_is_one_line_with_its_fix(tmp_path, line, expected):
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, GOOD + "\n[stream]\n" + line + "\n"), environ={})
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_stream_without_a_schema_or_an_application_says_which_to_add(tmp_path):
    text = GOOD.split("[actions.application]")[0] + STREAM
    result = bc("validate", cwd=write(tmp_path, text).parent, ok=False)
    assert "[stream] has no schema, and no application action declares one" in result.stderr
    assert "fix:" in result.stderr and "Traceback" not in result.stderr


def test_stream_without_a_stream_table_says_how_to_add_one(tmp_path):
    write(tmp_path, GOOD)
    result = bc("stream", cwd=tmp_path, ok=False)
    assert "has no [stream] table" in result.stderr and "Traceback" not in result.stderr
