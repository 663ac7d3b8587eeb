"""Batches produced on a thread ahead of the warehouse's ingest: order, errors, memory and stopping."""

from __future__ import annotations

import threading
import time

import pytest

from batchcast.data.ahead import Ahead


def test_items_arrive_in_order_produced_on_another_thread():
    threads = set()

    def items():
        for i in range(100):
            threads.add(threading.current_thread().name)
            yield i

    produced = Ahead(items())
    assert list(produced) == list(range(100))
    produced.close()
    assert threads == {"batchcast-ahead"}


def test_the_producer_runs_at_most_depth_items_ahead():
    made = []

    def items():
        for i in range(50):
            made.append(i)
            yield i

    produced = Ahead(items(), depth=2)
    consumer = iter(produced)
    assert next(consumer) == 0
    time.sleep(0.3)  # time for a runaway producer to make all 50
    # one handed over, two waiting, one made and waiting for room
    assert len(made) <= 4, made
    produced.close()


def test_what_the_producer_raises_reaches_the_consumer_with_its_traceback():
    def items():
        yield 1
        raise ValueError("bad batch 2")

    produced = Ahead(items())
    consumer = iter(produced)
    assert next(consumer) == 1
    with pytest.raises(ValueError, match="bad batch 2") as caught:
        next(consumer)
    assert any(frame.name == "items" for frame in caught.traceback)
    produced.close()


def test_close_stops_the_producer_and_runs_its_cleanup():
    cleaned, made = threading.Event(), []

    def items():
        try:
            for i in range(10_000):
                made.append(i)
                yield i
        finally:
            cleaned.set()

    produced = Ahead(items())
    consumer = iter(produced)
    next(consumer)
    produced.close()  # returns only once the producer has stopped
    assert cleaned.is_set() and len(made) < 10_000 and produced._done.is_set()


def test_a_ctrl_c_while_closing_waits_for_the_producer_then_is_raised():
    """Cutting the wait short would let the caller close a cursor the producer is still reading."""
    import os
    import signal

    call_returned = threading.Event()

    def items():
        yield 1
        time.sleep(1.0)  # a model call in progress when the user presses Ctrl-C again
        call_returned.set()
        yield 2

    # Python leaves SIGINT ignored when it started ignored (a suite started in the background, with nohup):
    # Ctrl-C is what this test is about, so it gets Python's own handler meanwhile.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        produced = Ahead(items(), depth=1)
        consumer = iter(produced)
        assert next(consumer) == 1
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            produced.close()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert call_returned.is_set() and produced._done.is_set()  # it waited out the model call
