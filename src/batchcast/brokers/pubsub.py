"""Google Pub/Sub, through google-cloud-pubsub: ``pubsub://project/subscription`` to read, ``pubsub://project/topic``
to send.

Messages are pulled synchronously (unary pulls: several times the high-level
streaming pull's rate on the emulator) and acknowledged once their outputs
are delivered; a batch that fails is negatively acknowledged, so Pub/Sub
redelivers it. Pub/Sub has no offsets: a redelivered message is recognised by
its message id. ``PUBSUB_EMULATOR_HOST`` points the client at an emulator,
as Google's own tools read it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from batchcast.brokers.base import Broker, Message, Source, Topic
from batchcast.errors import BrokerError, BrokerUnavailable, MissingExtra, SpecError

PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9._~%+-]{2,254}")
ACK_CHUNK = 1000  # ids per acknowledge request (the API's limit is a request size, not a count)


@dataclass(frozen=True)
class PubSubUrl:
    project: str
    name: str

    @classmethod
    def parse(cls, url: str, where: str) -> PubSubUrl:
        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        if not PROJECT.fullmatch(parts.netloc) or not NAME.fullmatch(name) or parts.query:
            raise SpecError(f"{where} = '{url}' is not pubsub://project/name",
                            "write e.g. pubsub://my-project/churn-events (a project id, then a subscription "
                            "or topic name)")
        return cls(parts.netloc, name)


def _pubsub():
    try:
        from google.cloud import pubsub_v1
    except ImportError:
        raise MissingExtra("batchcast stream with Pub/Sub", "pubsub") from None
    return pubsub_v1


def _translate(exc: Exception, doing: str) -> BrokerError:
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.NotFound | gexc.PermissionDenied | gexc.InvalidArgument):
        return BrokerError(f"{doing}: {exc.message}", "check the project and the name, and the credentials' roles")
    return BrokerUnavailable(f"{doing}: {exc}", "check that Pub/Sub is reachable; the batch is retried")


class PubSubSource(Source):
    def __init__(self, url: str, group: str | None = None):
        self.url = PubSubUrl.parse(url, "[stream] source")
        self._client = None
        self._path = ""

    def start(self, stored=None) -> None:
        self._client = _pubsub().SubscriberClient()
        self._path = self._client.subscription_path(self.url.project, self.url.name)

    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        from google.api_core import exceptions as gexc

        try:
            response = self._client.pull(request={"subscription": self._path, "max_messages": max_messages},
                                         timeout=max(timeout, 0.5), retry=None)
        except gexc.DeadlineExceeded:
            return []
        except gexc.GoogleAPICallError as exc:
            raise _translate(exc, f"pulling from {self.url.name}") from None
        now = dt.datetime.now(dt.UTC)
        return [Message(r.message.data, (r.message.attributes.get("key") or r.message.ordering_key or "").encode()
                        or None, self.url.name, None, None, r.message.message_id, now, r.ack_id)
                for r in response.received_messages]

    def _each_chunk(self, messages: list[Message], call, doing: str) -> None:
        from google.api_core import exceptions as gexc

        ids = [m.handle for m in messages]
        for start in range(0, len(ids), ACK_CHUNK):
            try:
                call(ids[start:start + ACK_CHUNK])
            except gexc.GoogleAPICallError as exc:
                raise _translate(exc, f"{doing} on {self.url.name}") from None

    def done(self, messages: list[Message]) -> None:
        self._each_chunk(messages, lambda ids: self._client.acknowledge(
            request={"subscription": self._path, "ack_ids": ids}), "acknowledging")

    def rewind(self, messages: list[Message]) -> None:
        # An ack deadline of 0 is Pub/Sub's negative acknowledgement: redelivered at once.
        self._each_chunk(messages, lambda ids: self._client.modify_ack_deadline(
            request={"subscription": self._path, "ack_ids": ids, "ack_deadline_seconds": 0}), "redelivering")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class PubSubTopic(Topic):
    """A topic records are published to; the record's key travels as the attribute ``key``."""

    def __init__(self, url: str, transactional_id: str | None = None, where: str = "[stream] topic"):
        self.url = url
        self.parsed = PubSubUrl.parse(url, where)
        self._client = _pubsub().PublisherClient()
        self._path = self._client.topic_path(self.parsed.project, self.parsed.name)

    def send(self, records) -> None:
        futures = [self._client.publish(self._path, value, **({"key": key.decode(errors="replace")} if key else {}))
                   for key, value in records]
        for future in futures:
            try:
                future.result(timeout=60)
            except Exception as exc:  # noqa: BLE001 - the client's errors and the future's timeout alike
                raise _translate(exc, f"publishing to {self.parsed.name}") from None

    def close(self) -> None:
        self._client.stop()


BROKER = Broker(PubSubSource, PubSubTopic, PubSubUrl.parse)
