"""Batches scored on several threads: the same rows in the same order as one thread, memory bounded, errors in order."""

from __future__ import annotations

import threading
import time

import pytest

from batchcast import Service
from batchcast.data.ahead import in_order
from batchcast.errors import ModelError
from tests.conftest import query, write_python_service


def test_results_come_in_the_items_order_with_at_most_n_taken_ahead():
    taken, running, most = [], [0], [0]
    lock = threading.Lock()

    def items():
        for i in range(40):
            taken.append(i)
            yield i

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (i % 5))  # later items finish first
        with lock:
            running[0] -= 1
        return i * i

    out = []
    for result in in_order(work, items(), 3):
        out.append(result)
        assert len(taken) <= len(out) + 3  # read ahead by at most the threads
    assert out == [i * i for i in range(40)] and most[0] == 3


def test_the_first_failing_item_raises_first_and_nothing_after_it_is_started_beyond_the_threads():
    started = []

    def work(i):
        started.append(i)
        if i in (5, 7):
            time.sleep(0.01 if i == 5 else 0)  # 7 fails first in time, 5 first in order
            raise ModelError(f"item {i}", "fix")
        return i

    got = []
    with pytest.raises(ModelError, match="item 5"):
        for result in in_order(work, iter(range(100)), 3):
            got.append(result)
    assert got == [0, 1, 2, 3, 4] and max(started) <= 7  # 5, 6 and 7 in flight, none after


def test_an_error_reading_items_comes_after_the_results_of_the_items_read_before_it():
    def items():
        yield from range(3)
        raise OSError("the input broke")

    def work(i):
        if i == 1:
            raise ModelError("item 1", "fix")
        return i

    got = []
    with pytest.raises(ModelError, match="item 1"):  # as one thread would: item 1 fails before item 3 is read
        for result in in_order(work, items(), 4):
            got.append(result)
    assert got == [0]


def test_an_application_on_threads_writes_what_one_thread_writes(tmp_path):
    spec = write_python_service(tmp_path, rows=30_000)
    spec.write_text(spec.read_text().replace("[actions.application]\n", "[actions.application]\nbatch_size = 1000\n"))
    service = Service(spec)
    assert service.run("training", "2026-01-01").succeeded
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    written = {}
    for threads in (1, 3):
        spec.write_text(spec.read_text().replace("batch_size = 1000\n", f"batch_size = 1000\nthreads = {threads}\n")
                        if "threads =" not in spec.read_text()
                        else spec.read_text().replace("threads = 1\n", f"threads = {threads}\n"))
        applied = Service(spec).run("application", "2026-01-05")
        assert applied.succeeded, applied.error
        assert applied.outputs["scoring"] == {"threads": threads} and applied.rows["written"] == 30_000
        written[threads] = query(db, "SELECT player_id, label FROM scores ORDER BY rowid")  # as inserted
    assert written[3] == written[1] and len(written[1]) == 30_000
