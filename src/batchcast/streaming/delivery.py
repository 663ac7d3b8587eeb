"""The stream's sinks, and the order a batch is written to them in, which is what keeps each guarantee.

1. Sends that no transaction holds, at least once: the dead letters (unless
   they can join the topic's transaction) and an at-least-once topic.
2. The table: the rows and the source's position in one warehouse
   transaction (:meth:`batchcast.warehouses.base.Warehouse.deliver`), so a
   batch delivered twice adds its rows once.
3. A transactional topic (Kafka to Kafka, exactly once): the records, the
   dead letters on the same cluster and the consumed offsets, in one
   transaction; a read_committed reader sees each input once.
4. The source is told (Kafka's commit, Pub/Sub's ack) unless step 3 committed it.

An at-least-once topic with no table is pipelined, as Kafka Streams commits
on an interval rather than per record: a batch's records are sent and the
loop goes on to read and score the next batch while the broker takes them;
the next delivery sends its own records, then waits for the batch before
and only then tells the source (an idle poll, a rebalance and the stop do
too). Two batches are in flight at most.

A crash anywhere repeats the batch from the last position the source
resumes at, and every step above either holds it once already or is the
at-least-once kind. Where the table keeps positions and no topic
transaction does, the source resumes at the table's (:meth:`Delivery.stored`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pyarrow as pa

from batchcast import registry
from batchcast.brokers.base import Positions, Source, Topic, next_positions
from batchcast.errors import BatchcastError, BrokerError, BrokerUnavailable, SpecError
from batchcast.streaming.outputs import Record

log = logging.getLogger("batchcast")


@dataclass
class Outputs:
    """What one batch delivers."""

    rows: pa.Table | None = None  # for the table
    records: list[Record] = field(default_factory=list)  # for the topic
    dead: list[Record] = field(default_factory=list)  # for the dead-letter topic
    positions: Positions = field(default_factory=dict)  # where the source resumes after the batch


class Delivery:
    """The sinks of ``spec``'s ``[stream]``, opened once and written per batch."""

    def __init__(self, spec, group: str, instance: str, source: Source):
        stream = spec.stream
        self.spec, self.group, self.source = spec, group, source
        self.table = stream.table
        if self.table and not registry.warehouse(spec.warehouse_url).load("batchcast stream").streams:
            raise SpecError(f"[stream] table: the warehouse {registry.warehouse(spec.warehouse_url).name}:// cannot "
                            "take a stream's rows exactly once", "stream into DuckDB or PostgreSQL, or into a topic "
                            "the warehouse loads from")
        self.schema = stream.schema_.requiring(spec.model.ids)
        self._warehouse = None
        self.topic: Topic | None = None
        if stream.topic:
            kind = registry.broker(stream.topic, "[stream] topic").topic
            exactly = stream.guarantee == "exactly-once" and kind.transactions and source.positioned
            self.topic = kind(stream.topic, f"{group}-{instance}" if exactly else None)
        self.dead: Topic | None = None
        if stream.dead_letter:
            self.dead = registry.broker(stream.dead_letter, "[stream] dead_letter").topic(
                stream.dead_letter, None, "[stream] dead_letter")
        self.joined = bool(self.topic and self.dead and self.topic.transactional and self.topic.joins(self.dead))
        self.pipelined = self.topic is not None and not self.topic.transactional and not self.table
        self._pending = None  # (wait, records, messages): the batch sent and not yet told to the source
        self._sending = None  # (outputs, wait): the batch being delivered, its records on their way already

    @property
    def warehouse(self):
        if self._warehouse is None:
            from batchcast.warehouses.lookup import open_warehouse

            self._warehouse = open_warehouse(self.spec.warehouse_url)
        return self._warehouse

    def stored(self, partitions: list[tuple[str, int]]) -> Positions:
        """Where the table says each partition resumes, when the table is what holds the position."""
        if not self.table or (self.topic is not None and self.topic.transactional):
            return {}
        return self.warehouse.positions(self.group, partitions)

    def deliver(self, out: Outputs, messages) -> int:
        """Write one batch everywhere, in the order of the module's docstring; the rows the table added."""
        if out.dead and self.dead is not None and not self.joined:
            self.dead.send(out.dead)
        if self.pipelined:
            if self._sending is None or self._sending[0] is not out:  # a retry of this batch sends it once only
                self._sending = (out, self.topic.send_later(out.records) if out.records else None)
            self.settle()  # the batch before: its records have had a batch's time to arrive
            if messages:
                self._pending = (self._sending[1], out.records, messages)
            self._sending = None
            return 0
        if self.topic is not None and not self.topic.transactional and out.records:
            self.topic.send(out.records)
        added = 0
        if self.table and (out.rows is not None or out.positions):
            rows = out.rows if out.rows is not None else _empty(self.schema)
            added = self.warehouse.deliver(self.table, self.schema, rows, consumer=self.group,
                                           positions=out.positions if self.source.positioned else None)
        if self.topic is not None and self.topic.transactional:
            also = [(self.dead, out.dead)] if self.joined and out.dead else []
            self.topic.send_with_position(out.records, out.positions, self.source, also)
        else:
            self.source.done(messages)
        return added

    @property
    def pending(self) -> bool:
        """A pipelined batch is sent and its position not yet told to the source."""
        return self._pending is not None

    def settle(self, timeout: float = 60, resend: bool = True) -> None:
        """Wait for the pipelined batch's records, then tell the source. Records the broker refused are sent again
        (with ``resend``); records still on their way after ``timeout`` s are waited for again at the next call,
        never queued twice. Raises BrokerUnavailable, the batch still pending, if they are not all held."""
        if self._pending is None:
            return
        wait, records, messages = self._pending
        if wait is not None:
            try:
                held = wait(timeout)
            except BatchcastError:
                if not resend:
                    raise
                self.topic.send(records)  # at least once: whatever the broker took of them comes twice
                held = True
            if not held:
                raise BrokerUnavailable(f"sending to {self.topic.url}: records still unacknowledged after "
                                        f"{timeout:g} s", "check that the brokers are up; the batch is retried")
            self._pending = (None, records, messages)
        self.source.done(messages)
        self._pending = None

    def revoking(self) -> None:
        """The group takes partitions away: settle now. If that fails the stream stops (exit 1), uncommitted: a
        later batch's commit would pass over this one, and the partitions' next owner reads both again."""
        try:
            self.settle(10, resend=False)
        except BatchcastError as exc:
            count = len(self._pending[2])
            self._pending = None
            raise BrokerError(f"a batch of {count} messages was not delivered before a rebalance took its "
                              f"partitions: {exc.message}", "the stream stops uncommitted and is restarted; the "
                              "partitions' next owner reads the batch again") from None

    def idle(self) -> None:
        """Nothing is arriving: let go of the warehouse (a DuckDB file takes one writer at a time)."""
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def close(self) -> None:
        """Settle the pipelined batch (briefly, sending nothing again: a stop must not wait out a broker that is
        away), then close."""
        try:
            self.settle(10, resend=False)
        except BatchcastError as exc:
            log.warning("the last batch of %d messages was not committed; it is read again at the next start: %s",
                        len(self._pending[2]), exc)
            self._pending = None
        self.idle()
        for topic in (self.topic, self.dead):
            if topic is not None:
                topic.close()


def positions_of(messages) -> Positions:
    return next_positions(messages)


def _empty(schema) -> pa.Table:
    from batchcast.data.schema import STREAM_STAMPS

    return (schema + STREAM_STAMPS).to_arrow().empty_table()
