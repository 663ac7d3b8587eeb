"""Micro-batching: concurrent requests share model calls, each gets its own rows back, models never mix.

The served model here is a fake (FakeModel) that records its calls (the batcher
only calls ``predict``); the end-to-end path with a real trained model is
in test_app.py and test_serve_cli.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from batchcast.errors import ModelError
from batchcast.online.batching import Batcher


class FakeModel:
    """Predicts 2x its one column; raises on a negative value; records the rows of every call."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[list[float]] = []
        self.delay = delay

    def seconds(self, rows: int) -> float:  # what Served.seconds says of a call, known here beforehand
        return self.delay

    def predict(self, table):
        values = table.column("x").to_pylist()
        self.calls.append(values)
        time.sleep(self.delay)
        if any(v < 0 for v in values):
            raise ModelError(f"negative value in {values}", "send x >= 0")
        return np.asarray(values) * 2


def rows(*values: float) -> pa.Table:
    return pa.table({"x": pa.array(values, pa.float64())})


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows():
    model = FakeModel(delay=0.01)

    async def main():
        batcher = Batcher(max_rows=64, max_wait=0.05)
        answers = await asyncio.gather(*(batcher.predict(model, rows(i, i + 0.5)) for i in range(40)))
        await batcher.stop()
        return answers

    answers = asyncio.run(main())
    assert [a.tolist() for a in answers] == [[2 * i, 2 * i + 1] for i in range(40)]
    assert len(model.calls) < 40 and max(len(c) for c in model.calls) <= 64
    assert sorted(v for call in model.calls for v in call) == sorted(v for i in range(40) for v in (i, i + 0.5))


def test_a_request_that_makes_the_model_raise_fails_alone():
    model = FakeModel()

    async def main():
        batcher = Batcher(max_rows=64, max_wait=0.05)
        answers = await asyncio.gather(batcher.predict(model, rows(1)), batcher.predict(model, rows(-1)),
                                       batcher.predict(model, rows(3)), return_exceptions=True)
        await batcher.stop()
        return answers

    good, bad, other = asyncio.run(main())
    assert good.tolist() == [2] and other.tolist() == [6]
    assert isinstance(bad, ModelError) and "negative value in [-1.0]" in bad.message


def test_requests_holding_different_models_are_never_in_one_call():
    old, new = FakeModel(), FakeModel()

    async def main():
        batcher = Batcher(max_rows=64, max_wait=0.05)
        answers = await asyncio.gather(*(batcher.predict(old if i % 2 else new, rows(i)) for i in range(10)))
        await batcher.stop()
        return answers

    answers = asyncio.run(main())
    assert [a.tolist() for a in answers] == [[2 * i] for i in range(10)]
    assert sorted(v for c in old.calls for v in c) == [1, 3, 5, 7, 9]
    assert sorted(v for c in new.calls for v in c) == [0, 2, 4, 6, 8]


@pytest.mark.parametrize("max_rows", [1, 4])
def test_a_request_at_or_over_the_limit_is_its_own_call(max_rows):
    model = FakeModel()

    async def main():
        batcher = Batcher(max_rows=max_rows, max_wait=0.05)
        answer = await batcher.predict(model, rows(*range(4)))
        await batcher.stop()
        return answer

    assert asyncio.run(main()).tolist() == [0, 2, 4, 6] and model.calls == [[0, 1, 2, 3]]


def test_requests_over_the_limit_are_scored_on_the_loop_in_order_of_arrival():
    """On a thread of its own a large request fought the loop for the GIL (a p99 of 1.4 s at 128 connections)."""
    model, threads = FakeModel(), []
    predict = model.predict
    model.predict = lambda table: threads.append(threading.get_ident()) or predict(table)

    async def main():
        batcher = Batcher(max_rows=4, max_wait=0.05)
        answers = await asyncio.gather(batcher.predict(model, rows(*range(6))), batcher.predict(model, rows(10)),
                                       batcher.predict(model, rows(11)), batcher.predict(model, rows(*range(20, 26))))
        await batcher.stop()
        return answers

    answers = asyncio.run(main())
    assert [a.tolist() for a in answers] == [[2 * v for v in range(6)], [20], [22], [2 * v for v in range(20, 26)]]
    assert model.calls == [list(range(6)), [10, 11], list(range(20, 26))]
    assert set(threads) == {threading.get_ident()}


def test_a_call_that_should_take_long_goes_to_a_thread_and_the_loop_goes_on_meanwhile():
    model, threads = FakeModel(delay=0.3), []
    predict = model.predict
    model.predict = lambda table: threads.append(threading.get_ident()) or predict(table)

    async def main():
        batcher, ticks = Batcher(max_rows=4, max_wait=0.0), [0]

        async def tick():  # what a health probe needs: the loop's turns
            while True:
                await asyncio.sleep(0.01)
                ticks[0] += 1

        ticking = asyncio.create_task(tick())
        answer = await batcher.predict(model, rows(1, 2))
        ticking.cancel()
        await batcher.stop()
        return answer, ticks[0]

    answer, ticks = asyncio.run(main())
    assert answer.tolist() == [2, 4] and threads[0] != threading.get_ident() and ticks >= 10
