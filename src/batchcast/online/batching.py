"""Micro-batching: concurrent requests' rows scored in one model call.

A vectorised model costs nearly the same for 1 row as for 64, so under load
the requests that arrive while the model is busy (or within ``max_wait``)
share its next call. A request is never split, and never mixed with
requests holding another model: a swap in the middle of a batch gives two
calls. When a shared call raises, each request in it is scored alone, so
only the rows that made the model fail get the error.

A batch is scored on the event loop's own thread. On a thread of its own
the model would compete with the loop for the GIL, and each of the loop's
system calls would then wait up to the switch interval (5 ms) to take it
back: at 32 connections that tripled the p99 latency. The loop parses no
new request while the model runs, which is the time they would have waited
for the GIL anyway. A request of ``max_rows`` rows or more is scored the
same way, alone: sent to a thread, 100-row requests at 128 connections had a
p99 of 1.4 s (benchmarks/serving.py). Only a call that should take longer
than ``AWAY`` seconds (by the model's previous call) goes to a thread, so
that the loop still answers /v2/health and /metrics meanwhile: a probe
timing out would restart a pod busy on one large request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import numpy as np

AWAY = 0.05  # seconds: a call expected to take longer is scored on a thread (see above)


@dataclass
class _Pending:
    served: object
    table: object
    future: asyncio.Future


class Batcher:
    def __init__(self, max_rows: int = 64, max_wait: float = 0.002):
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.calls = 0  # model calls made, for the metrics
        self._queue: deque[_Pending] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def predict(self, served, table) -> np.ndarray:
        if self._task is None or self._task.done():
            self._arrived = asyncio.Event()
            self._task = asyncio.create_task(self._run())
        pending = _Pending(served, table, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._arrived.set()
        return await pending.future

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._fail_waiting(RuntimeError("the server is stopping"))

    async def _run(self) -> None:
        try:
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                while self._queue:
                    batch = await self._collect()
                    await self._score(batch)
        except BaseException as exc:  # a request left in the queue would wait for ever
            self._fail_waiting(exc if isinstance(exc, Exception) else RuntimeError(f"batching stopped: {exc!r}"))
            raise

    def _fail_waiting(self, exc: Exception) -> None:
        while self._queue:
            _settle(self._queue.popleft().future, exception=exc)

    async def _collect(self) -> list[_Pending]:
        """Requests up to ``max_rows`` rows, waiting at most ``max_wait`` for more to arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        batch, rows = [], 0
        while True:
            while self._queue and rows + self._queue[0].table.num_rows <= self.max_rows:
                item = self._queue.popleft()
                batch.append(item)
                rows += item.table.num_rows
            if self._queue or rows >= self.max_rows or loop.time() >= deadline:
                return batch or [self._queue.popleft()]
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            except TimeoutError:
                return batch

    async def _score(self, batch: list[_Pending]) -> None:
        by_model: dict[int, list[_Pending]] = {}
        for item in batch:
            by_model.setdefault(id(item.served), []).append(item)
        for group in by_model.values():
            await self._call(group)

    async def _call(self, group: list[_Pending]) -> None:
        import pyarrow as pa

        live = [item for item in group if not item.future.done()]  # a client gone away needs no answer
        if not live:
            return
        try:
            table = pa.concat_tables([item.table for item in live], promote_options="permissive")
            self.calls += 1
            served = live[0].served
            if served.seconds(table.num_rows) > AWAY:
                y = await asyncio.to_thread(served.predict, table)
            else:
                y = served.predict(table)  # on the loop: see the module's docstring
        except Exception as exc:  # noqa: BLE001 - each request gets its own outcome below
            if len(live) == 1:
                _settle(live[0].future, exception=exc)
                return
            for item in live:  # only the rows that made the model fail should fail
                await self._call([item])
            return
        start = 0
        for item in live:
            _settle(item.future, result=y[start:start + item.table.num_rows])
            start += item.table.num_rows


def _settle(future: asyncio.Future, result=None, exception: BaseException | None = None) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
