"""Produce a stream's items on a thread, a bounded number ahead of its consumer.

A publish has two halves: reading, predicting and stamping batches (the
producer) and the warehouse ingesting them (the driver pulling the stream).
Run one after the other, each leaves a core idle; DuckDB, Arrow, NumPy and
most models release the GIL while they work, so overlapping the halves uses
both. ``depth`` bounds what waits in between, so memory stays flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, in order, produced on a thread at most ``depth`` ahead of the caller.

    What the producer raises (a KeyboardInterrupt included) is raised here,
    with its traceback. Closing this generator, or an error in the caller,
    stops the producer before its next item.
    """
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()  # a generator's own cleanup (its finally blocks) runs on its thread

    producer = threading.Thread(target=produce, name="batchcast-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item, error = waiting.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
