"""The stream's loop: poll a batch, read it, score it with one model, deliver it, commit; again until stopped.

Bad messages never stop a partition: a message that is not JSON, lacks a
feature or holds a wrong type is refused by the reader; when the model
raises on a batch, each message is scored alone, and only those it raises
on are refused. A refused message goes to the dead-letter topic with its
error, or is logged; either way it is counted, and its position passes.

A delivery that fails on a transient error (a broker or a warehouse away)
is retried with the same outputs, the source paused meanwhile, so the
backlog waits in the broker, not in memory; a final error stops the stream
(exit 1), its batch uncommitted. SIGTERM or Ctrl-C ends the loop after the
batch in hand is delivered and committed; the consumer then leaves its group.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

import pyarrow as pa

from batchcast.brokers.base import Message, Source, next_positions
from batchcast.errors import BatchcastError, ModelError
from batchcast.online.slot import Slot
from batchcast.online.watcher import check
from batchcast.redaction import redact
from batchcast.runs.heartbeats import Heart
from batchcast.streaming import outputs
from batchcast.streaming.decode import Reader
from batchcast.streaming.delivery import Delivery, Outputs
from batchcast.streaming.observe import StreamMetrics

log = logging.getLogger("batchcast")
BACKOFF = (0.5, 1, 2, 5, 10, 30)  # seconds between delivery retries; the last repeats
WHERE = "the stream's batch"


@dataclass(frozen=True)
class Pace:
    max_batch: int
    max_wait: float  # seconds
    poll: float  # seconds between checks of the alias


class Stream:
    """One consumer: its source, reader, model slot and sinks."""

    def __init__(self, service, ref: str | None, slot: Slot, reader: Reader, source: Source, delivery: Delivery,
                 pace: Pace):
        self.service, self.ref, self.slot, self.reader = service, ref, slot, reader
        self.source, self.delivery, self.pace = source, delivery, pace
        self.metrics: StreamMetrics = slot.metrics
        self.stopping = threading.Event()
        self.wake = threading.Event()  # SIGHUP: check the alias now
        self.started = False
        self.consumed = 0
        self.heart = Heart(service.store, service.name, service.version, "stream",
                           redact(service.spec.stream.source), pace.poll)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    # -- the loop ------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`; a final error propagates, its batch uncommitted."""
        watcher = threading.Thread(target=self._watch, name="batchcast-watch", daemon=True)
        watcher.start()
        self.source.start(self._stored, self.delivery.revoking)
        self.started = True
        try:
            while not self.stopping.is_set():
                self.metrics.turned = time.monotonic()
                messages = self._poll()
                if not messages:
                    if self.delivery.pending and not self._deliver(Outputs(), []):  # settle the batch in flight
                        break
                    self.delivery.idle()
                    self.metrics.set_lag(self.source.lag())
                    continue
                started = time.monotonic()
                self.metrics.consumed.inc(len(messages))
                self.consumed += len(messages)
                out = self.score(messages)
                if not self._deliver(out, messages):
                    break  # stopped while retrying: the batch stays uncommitted, and comes again
                self.metrics.batch.observe(time.monotonic() - started)
                self.metrics.set_lag(self.source.lag())
        finally:
            self.stopping.set()
            self.wake.set()
            self.delivery.close()
            self.source.close()
            self.heart.stop()

    def _poll(self) -> list[Message]:
        """The next batch; none while the source cannot be read (a transient error is waited out, not fatal)."""
        try:
            return self.source.poll(self.pace.max_batch, self.pace.max_wait)
        except BatchcastError as exc:
            if not exc.transient:
                raise
            log.warning("reading the source failed, trying again in %g s: %s", BACKOFF[1], exc)
            self.stopping.wait(BACKOFF[1])
            return []

    def _stored(self, partitions: list[tuple[str, int]]):
        """The positions the table holds, read when partitions are assigned; a warehouse away is waited for."""
        attempt = 0
        while True:
            try:
                return self.delivery.stored(partitions)
            except BatchcastError as exc:
                if not exc.transient or self.stopping.is_set():
                    raise
                attempt += 1
                delay = BACKOFF[min(attempt, len(BACKOFF)) - 1]
                log.warning("reading the stored positions failed (attempt %d), retrying in %g s: %s", attempt,
                            delay, exc)
                self.stopping.wait(delay)

    def score(self, messages: list[Message]) -> Outputs:
        """The batch's outputs, every row scored by the one model the slot holds now."""
        served = self.slot.served  # one model for the whole batch, whatever a swap does meanwhile
        decoded = self.reader.read(messages, served.features)
        dead = list(decoded.bad)
        scored, owners = [], []
        if decoded.table is not None:
            batch = decoded.table.combine_chunks().to_batches()[0]
            try:
                scored.extend(served.score(batch, self.reader.schema, WHERE))
                owners = decoded.messages
            except Exception:  # noqa: BLE001 - then each message alone: only those the model refuses are refused
                scored, owners = self._one_by_one(served, batch, decoded.messages, dead)
        at = dt.datetime.now(dt.UTC)
        table = pa.Table.from_batches(scored) if scored else None
        out = Outputs(positions=next_positions(messages))
        if table is not None and table.num_rows:
            self.metrics.scored.labels(served.run_id).inc(table.num_rows)
            if self.delivery.table:
                out.rows = outputs.rows(table, owners, served.run_id, at)
            if self.delivery.topic is not None:
                out.records = outputs.records(table, owners, served.run_id, at)
        for message, error in dead:
            self.metrics.dead.labels(type(error).__name__).inc()
            if self.delivery.dead is None:
                log.warning("message %s refused (no [stream] dead_letter): %s", message.id, error)
            else:
                out.dead.append(outputs.dead_letter(message, error, served.run_id))
        return out

    def _one_by_one(self, served, batch: pa.RecordBatch, owners: list[Message], dead: list):
        scored, kept, start = [], [], 0
        while start < len(owners):
            end = start
            while end < len(owners) and owners[end] is owners[start]:
                end += 1
            try:
                scored.append(served.scorer.score(batch.slice(start, end - start), self.reader.schema, WHERE))
                kept += owners[start:end]
            except BatchcastError as exc:
                dead.append((owners[start], exc))
            except Exception as exc:  # noqa: BLE001 - a model's own error type, named in the dead letter
                dead.append((owners[start], ModelError(f"the model raised {type(exc).__name__}: {exc}",
                                                       "fix the model, or the message")))
            start = end
        return scored, kept

    def _deliver(self, out: Outputs, messages: list[Message]) -> bool:
        """Deliver, retrying transient failures with the source paused; False if stopped while retrying."""
        attempt = 0
        while True:
            try:
                added = self.delivery.deliver(out, messages)
            except BatchcastError as exc:
                if not exc.transient:
                    raise
                attempt += 1
                self.metrics.retries.inc()
                delay = BACKOFF[min(attempt, len(BACKOFF)) - 1]
                log.warning("delivering a batch of %d messages failed (attempt %d), retrying in %g s: %s",
                            len(messages), attempt, delay, exc)
                if attempt == 3:
                    self.alert(exc, "retrying")
                self.metrics.set_lag(self.source.lag())  # the backlog grows in the broker meanwhile
                if not self._paused_for(delay):
                    self.source.rewind(messages)
                    return False
                continue
            if attempt:
                log.info("delivered after %d retries", attempt)
            self.metrics.produced.inc(len(out.records))
            self.metrics.delivered.inc(added)
            return True

    def _paused_for(self, seconds: float) -> bool:
        """Wait with the source paused, keeping its group membership; False if stopped meanwhile."""
        self.source.pause()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if self.stopping.wait(min(0.2, max(deadline - time.monotonic(), 0))):
                    return False
                self.source.keepalive()
                self.metrics.turned = time.monotonic()
            return True
        finally:
            self.source.resume()

    # -- swaps ---------------------------------------------------------------

    def _watch(self) -> None:
        """Check the alias every poll (and on SIGHUP), beating the stream's heartbeat as often."""
        fixed = self.ref is not None and "/" in self.ref  # a run id names one model for good: only beats
        refused: set[str] = set()
        while not self.stopping.is_set():
            self.heart.beat(self.slot.served.run_id)
            self.wake.wait(self.pace.poll)
            self.wake.clear()
            if self.stopping.is_set():
                return
            if fixed:
                continue
            try:
                check(self.service, self.slot, self.ref, refused)
            except Exception:  # noqa: BLE001 - an alert or a metric that fails must not stop the swaps
                log.exception("checking for a new model failed; checking again in %s s", self.pace.poll)

    def alert(self, exc: BatchcastError, status: str) -> None:
        """Tell ``[alerts]`` the stream is ``status`` (retrying a delivery, stopped) because of ``exc``."""
        from batchcast import alerts

        try:
            alerts.send(self.service.spec.alerts, alerts.Alert(
                "failure", self.service.name, self.service.version, "stream", dt.date.today().isoformat(),
                status, self.slot.served.run_id, f"batchcast stream is {status}: {exc.message}", exc.fix))
        except Exception:  # noqa: BLE001 - an alert that fails must not stop the retries
            log.exception("the alert could not be sent")
