"""Produce a stream's items on threads, a bounded number ahead of their consumer.

:class:`Ahead` overlaps two halves of a pipeline; :func:`in_order` maps one
step over many threads (the model's predictions over batches).

A publish has two halves: reading, predicting and stamping batches (the
producer) and the warehouse ingesting them (the driver pulling the stream).
Run one after the other, each leaves a core idle; DuckDB, Arrow, NumPy and
most models release the GIL while they work, so overlapping the halves uses
both. ``depth`` bounds what waits in between, so memory stays flat.
"""

from __future__ import annotations

import collections
import math
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T, R = TypeVar("T"), TypeVar("R")
_END = object()


class Ahead(Generic[T]):
    """``items``, in order, produced on a thread at most ``depth`` ahead of the consumer.

    Whatever the producer raises is raised to the consumer, in order after
    the items before it, with its traceback. :meth:`close` stops the producer and waits
    for it, so nothing touches the producer's sources (a warehouse cursor)
    after the caller has moved on to closing them.
    """

    def __init__(self, items: Iterator[T], depth: int = 2):
        self._items, self._waiting = items, queue.Queue(maxsize=depth)
        self._stop, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._produce, name="batchcast-ahead", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[T]:
        while True:
            item, error = self._waiting.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item

    def close(self) -> None:
        """Stop the producer after its current item (a model call runs to its end) and wait for it.

        A second Ctrl-C while waiting does not cut the wait short: the caller
        would go on to close the cursor the producer is reading. It is raised
        once the producer has stopped.
        """
        self._stop.set()
        interrupted = None
        # An Event, not Thread.join: Python 3.11 marks a thread stopped when a Ctrl-C interrupts join().
        while not self._done.is_set():
            try:
                self._done.wait()
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put((_END, exc))
        finally:
            try:
                close = getattr(self._items, "close", None)
                if close is not None:
                    close()  # a generator's own cleanup (its finally blocks) runs on its thread
            finally:
                self._done.set()

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._waiting.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def cores(most: int = 8) -> int:
    """The cores this process may use: its CPU affinity (a cpuset), within its cgroup's CPU quota (a Kubernetes
    CPU limit), and at most ``most`` (each thread holds a batch)."""
    try:
        found = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        found = os.cpu_count() or 1
    try:  # cgroup v2: "QUOTA PERIOD", or "max PERIOD" for none
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            found = min(found, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, min(found, most))


def in_order(work: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``work`` of each item on ``threads`` threads, yielded in the items' order.

    At most ``threads + 1`` items are taken ahead of the one yielded, so memory holds that many results; the
    items are read on the caller's thread. The one beyond ``threads`` waits in the pool's queue, so a thread
    that finishes starts the next item at once instead of waiting for the caller to read it. A consumer that
    stops early (an error downstream) cancels what is left.
    """
    if threads <= 1:
        yield from map(work, items)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="batchcast-score")
    pending: collections.deque = collections.deque()
    iterator = iter(items)
    try:
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                break
            except Exception:  # reading failed: what was read before it comes first, as one thread would give it
                while pending:
                    yield pending.popleft().result()
                raise
            pending.append(pool.submit(work, item))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
