"""The broker port: a source of messages, and topics to send records to.

A :class:`Source` hands out batches of :class:`Message` and is told when a
batch is delivered (:meth:`Source.done`: Kafka commits the offsets, Pub/Sub
acknowledges) or must come again (:meth:`Source.rewind`). Where it came from
is in each message (``source``, ``partition``, ``offset``, ``id``), so a
warehouse can store the position with the rows in one transaction.

A :class:`Topic` sends records and returns once the broker holds them
(or, :meth:`Topic.send_later`, returns at once and is waited for later). A
topic that can join the source's transaction (Kafka to Kafka) says so with
:attr:`Topic.transactional`, and then sends the records and the source's
new position in one transaction (:meth:`Topic.send_with_position`).

Backends translate their client's errors into
:class:`~batchcast.errors.BrokerError` (final) or
:class:`~batchcast.errors.BrokerUnavailable` (worth retrying).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

# Positions: (topic, partition) -> the offset of the next message to read.
Positions = dict[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class Message:
    """One event as a broker delivered it."""

    value: bytes | None
    key: bytes | None
    source: str  # the topic (Kafka) or the subscription (Pub/Sub) it was read from
    partition: int | None  # Kafka only
    offset: int | None  # Kafka only
    id: str  # unique in its source: Pub/Sub's message id, Kafka's topic/partition/offset
    received_at: dt.datetime
    handle: object = None  # what the broker needs to acknowledge it (Pub/Sub's ack id)


def next_positions(messages: list[Message]) -> Positions:
    """Where each partition of ``messages`` resumes after them (Kafka's committed offset: the next one)."""
    positions: Positions = {}
    for m in messages:
        if m.partition is not None:
            key = (m.source, m.partition)
            positions[key] = max(positions.get(key, 0), m.offset + 1)
    return positions


class Source(abc.ABC):
    """Where a stream's events come from: a Kafka topic in a consumer group, or a Pub/Sub subscription."""

    #: Messages carry offsets that resume a partition (Kafka); otherwise redelivered ones are told apart by id.
    positioned: bool = False

    @abc.abstractmethod
    def start(self, stored: Callable[[list[tuple[str, int]]], Positions] | None = None,
              revoking: Callable[[], None] | None = None) -> None:
        """Connect and join. ``stored(partitions)`` gives positions kept outside the broker (a warehouse's);
        a partition it names resumes there, the others at the broker's own committed position.
        ``revoking()`` is called before the group takes partitions away, while their positions can still be
        committed."""

    @abc.abstractmethod
    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first."""

    @abc.abstractmethod
    def done(self, messages: list[Message]) -> None:
        """The batch is delivered: commit its position (Kafka) or acknowledge it (Pub/Sub)."""

    @abc.abstractmethod
    def rewind(self, messages: list[Message]) -> None:
        """The batch was not delivered: read it again (Kafka seeks back; Pub/Sub redelivers)."""

    def pause(self) -> None:
        """Stop fetching (the sink is slow) while staying in the group."""

    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""

    def keepalive(self) -> None:
        """Called while paused, so the broker does not take the partitions away (Kafka's poll interval)."""

    def lag(self) -> dict[str, int]:
        """Messages not yet read, by partition (``topic/partition``); empty where the broker cannot tell."""
        return {}

    def group_metadata(self):
        """The consumer group's metadata, for a transactional topic's offsets (Kafka only)."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group and disconnect."""


class Topic(abc.ABC):
    """Where records are sent: predictions, or dead letters."""

    url: str
    #: This topic's sends are transactions (it was opened with a transactional id).
    transactional: bool = False
    #: The broker has transactions that can hold a source's position (Kafka's); the others send at least once.
    transactions: bool = False

    @abc.abstractmethod
    def send(self, records: list[tuple[bytes | None, bytes]]) -> None:
        """Send ``(key, value)`` records; returns once the broker holds every one of them."""

    def send_later(self, records: list[tuple[bytes | None, bytes]]) -> Callable[[float], bool]:
        """Start sending ``records`` and return ``wait(timeout)``: True once the broker holds every one of them,
        False if some are still on their way after ``timeout`` s, and it raises as :meth:`send` does if the broker
        refused any; meanwhile the caller goes on. Here: sent at once."""
        self.send(records)
        return lambda timeout: True

    def send_with_position(self, records: list[tuple[bytes | None, bytes]], positions: Positions, source: Source,
                           also: list[tuple[Topic, list[tuple[bytes | None, bytes]]]] = ()) -> None:
        """Send ``records`` (and ``also``'s, to topics of the same cluster) and commit ``source``'s ``positions``,
        in one transaction: a transactional topic only."""
        raise NotImplementedError

    def joins(self, other: Topic) -> bool:
        """Whether ``other``'s records can go in this topic's transactions (the same cluster)."""
        return False

    def close(self) -> None:
        """Release the connection."""


@dataclass(frozen=True)
class Broker:
    """What a broker module gives the registry: its source and topic classes, and its URL's check."""

    source: type[Source]
    topic: type[Topic]
    check: Callable[[str, str], object]  # (url, where) -> the parsed URL; SpecError if it is not one
