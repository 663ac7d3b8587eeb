"""Starting a stream in this process: the model loaded and verified, the source and sinks opened, the probes up.

SIGTERM and SIGINT end the loop after the batch in hand; the process then
exits by the signal (as a killed process does, 143 for SIGTERM), so a
supervisor sees why it stopped. SIGHUP checks the alias at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sys

from batchcast import registry
from batchcast.data.ahead import cores
from batchcast.errors import BatchcastError, SpecError
from batchcast.online.loading import load
from batchcast.online.slot import Slot
from batchcast.online.watcher import settle_memory
from batchcast.streaming.consumer import Pace, Stream
from batchcast.streaming.decode import Reader
from batchcast.streaming.delivery import Delivery
from batchcast.streaming.observe import Probes, StreamMetrics

log = logging.getLogger("batchcast")


class JsonLines(logging.Formatter):
    """One JSON object per log line, as log collectors read them."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                "message": record.getMessage()}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line)


def _instance(partitions) -> str:
    """This consumer's default name: the host's (a pod's), and in a group also the process's.

    Its Kafka transactional id is GROUP-NAME. With static partitions that id is what fences a zombie, so it
    must outlive a restart: the host name. In a group, the group's generation fences zombies (KIP-447), and
    two consumers of one host must not fence each other: the process id is added.
    """
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:60] or "stream"
    return host if partitions != "group" else f"{host}-{os.getpid()}"


def build(service, ref: str | None = None, host: str = "127.0.0.1", port: int | None = None,
          guarantee: str | None = None):
    """The :class:`Stream` of ``service``'s ``[stream]``, and its probes (None when the port is 0)."""
    spec = service.spec
    stream = spec.stream
    if stream is None:
        raise SpecError(f"{spec.file} has no [stream] table", "add [stream] with source and topic or table")
    if guarantee is not None:  # batchcast stream --guarantee
        stream.guarantee = guarantee
    group = stream.consumer_group(service.name, service.version)
    instance = stream.instance or _instance(stream.partitions)
    slot = Slot(load(service, ref), StreamMetrics(), threads=stream.threads or cores())
    source = registry.broker(stream.source, "[stream] source").source(stream.source, group, stream.partitions)
    delivery = Delivery(spec, group, instance, source)
    reader = Reader(delivery.schema, tuple(spec.model.ids), stream.format, stream.key_field)
    runner = Stream(service, ref, slot, reader, source, delivery,
                    Pace(stream.max_batch, stream.max_wait_ms / 1000, stream.poll))
    port = stream.port if port is None else port
    probes = Probes(slot.metrics, lambda: runner.started and slot.served is not None, host, port) if port else None
    return runner, probes


def run(spec_file: str, ref: str | None = None, host: str = "127.0.0.1", port: int | None = None,
        guarantee: str | None = None) -> None:
    """``batchcast stream`` in this process, until SIGTERM or Ctrl-C (then exit by that signal)."""
    from batchcast.service import Service

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    log.handlers = [handler]  # the CLI's, when inline: a stream's log is for a collector, one JSON per line
    log.setLevel(logging.INFO)
    log.propagate = False
    service = Service(spec_file)
    runner, probes = build(service, ref, host, port, guarantee)
    got: list[int] = []

    def stop(signum, frame):
        got.append(signum)
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda signum, frame: runner.wake.set())
    settle_memory()
    if probes is not None:
        probes.start()
    s = service.spec.stream
    log.info("streaming %s -> %s with %s of %s/%s (%s)", s.source, ", ".join(filter(None, (s.topic, s.table))),
             runner.slot.served.run_id, service.name, service.version, s.guarantee)
    try:
        runner.run()
    except BatchcastError as exc:  # a final error stops the stream: someone must hear of it
        runner.alert(exc, "stopped")
        raise
    finally:
        if probes is not None:
            probes.stop()
    log.info("stopped: %d messages consumed", runner.consumed)
    if got:  # exit by the signal, as its sender expects
        signal.signal(got[0], signal.SIG_DFL)
        os.kill(os.getpid(), got[0])
