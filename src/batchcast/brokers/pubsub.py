"""Google Pub/Sub, through google-cloud-pubsub: ``pubsub://project/subscription`` to read, ``pubsub://project/topic``
to send.

Messages are pulled synchronously (unary pulls: several times the high-level
streaming pull's rate on the emulator) and acknowledged once their outputs
are delivered; a batch that fails is negatively acknowledged, so Pub/Sub
redelivers it. Pub/Sub has no offsets: a redelivered message is recognised by
its message id. While a batch is in hand (scored, delivered, its delivery
retried), a thread of the source keeps its messages leased, pushing their
ack deadline out every few seconds: otherwise Pub/Sub hands a batch that
takes longer than the subscription's deadline to another consumer meanwhile.
``PUBSUB_EMULATOR_HOST`` points the client at an emulator, as Google's own
tools read it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from batchcast.brokers.base import Broker, Message, Source, Topic
from batchcast.errors import BrokerError, BrokerUnavailable, MissingExtra, SpecError

PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9._~%+-]{2,254}")
ACK_CHUNK = 1000  # ids per acknowledge request (the API's limit is a request size, not a count)
# Messages in hand are leased again once they have been held RENEW_S seconds since their pull or last lease, for
# LEASE_S seconds from then: a subscription's ack deadline is 10 s at least. A consumer that dies leaves them to
# come back within LEASE_S.
RENEW_S = 3.0
LEASE_S = 20

log = logging.getLogger("batchcast")


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
    def __init__(self, url: str, group: str | None = None, partitions: str = "group"):
        self.url = PubSubUrl.parse(url, "[stream] source")
        self._client = None
        self._path = ""
        self._held: dict[str, float] = {}  # ack id -> when it was pulled or last leased (monotonic)
        self._lock = threading.Lock()  # held around a lease request: what done/rewind take out is not leased again
        self._stopping = threading.Event()
        self._leaser: threading.Thread | None = None

    def start(self, stored=None, revoking=None) -> None:  # no partitions to revoke
        self._client = _pubsub().SubscriberClient()
        self._path = self._client.subscription_path(self.url.project, self.url.name)
        self._stopping.clear()
        self._leaser = threading.Thread(target=self._lease, name="batchcast-pubsub-lease", daemon=True)
        self._leaser.start()

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
        messages = [Message(r.message.data, (r.message.attributes.get("key") or r.message.ordering_key or "").encode()
                            or None, self.url.name, None, None, r.message.message_id, now, r.ack_id)
                    for r in response.received_messages]
        pulled = time.monotonic()
        with self._lock:
            self._held.update((m.handle, pulled) for m in messages)
        return messages

    def _lease(self) -> None:
        """Until closed: push out the ack deadline of the messages held longest, so none expires in hand."""
        while not self._stopping.wait(1.0):
            with self._lock:
                now = time.monotonic()
                due = [ack_id for ack_id, since in self._held.items() if now - since >= RENEW_S]
                if not due:
                    continue
                try:
                    for start in range(0, len(due), ACK_CHUNK):
                        self._client.modify_ack_deadline(request={
                            "subscription": self._path, "ack_ids": due[start:start + ACK_CHUNK],
                            "ack_deadline_seconds": LEASE_S}, timeout=RENEW_S)
                except Exception as exc:  # noqa: BLE001 - a missed lease costs a redelivery, not the stream
                    log.warning("keeping %d messages of %s leased failed (Pub/Sub may deliver them again): %s",
                                len(due), self.url.name, exc)
                    continue
                now = time.monotonic()
                self._held.update((ack_id, now) for ack_id in due if ack_id in self._held)

    def _release(self, messages: list[Message]) -> None:
        with self._lock:
            for m in messages:
                self._held.pop(m.handle, None)

    def _each_chunk(self, messages: list[Message], call, doing: str) -> None:
        from google.api_core import exceptions as gexc

        ids = [m.handle for m in messages]
        for start in range(0, len(ids), ACK_CHUNK):
            try:
                call(ids[start:start + ACK_CHUNK])
            except gexc.GoogleAPICallError as exc:
                raise _translate(exc, f"{doing} on {self.url.name}") from None

    def done(self, messages: list[Message]) -> None:
        self._release(messages)
        self._each_chunk(messages, lambda ids: self._client.acknowledge(
            request={"subscription": self._path, "ack_ids": ids}), "acknowledging")

    def rewind(self, messages: list[Message]) -> None:
        self._release(messages)  # first: no lease may follow the negative acknowledgement
        # An ack deadline of 0 is Pub/Sub's negative acknowledgement: redelivered at once.
        self._each_chunk(messages, lambda ids: self._client.modify_ack_deadline(
            request={"subscription": self._path, "ack_ids": ids, "ack_deadline_seconds": 0}), "redelivering")

    def close(self) -> None:
        self._stopping.set()
        if self._leaser is not None:
            self._leaser.join()
            self._leaser = None
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
