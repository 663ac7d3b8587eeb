"""Batches scored on several threads: the same rows in the same order as one thread, memory bounded, errors in order."""

from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from batchcast import Service
from batchcast.data.ahead import in_order
from batchcast.data.schema import Schema
from batchcast.errors import ModelError
from batchcast.model.scoring import Scorer
from batchcast.online.features import Features
from batchcast.online.loading import Served
from batchcast.online.slot import Slot
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
        assert len(taken) <= len(out) + 4  # read ahead by at most the threads and one waiting for a thread
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
    assert got == [0, 1, 2, 3, 4] and max(started) <= 8  # 5 to 8 in flight (3 threads, 1 waiting), none after


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


class SleepyModel:
    """Sleeps 20 us a row (time.sleep releases the GIL, as a forest's predict does) and predicts 3x its column."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []  # (rows, thread)

    def predict(self, frame):
        self.calls.append((len(frame), threading.get_ident()))
        time.sleep(20e-6 * len(frame))
        if (frame["x"] < 0).any():
            raise ValueError("a negative x")
        return frame["x"].to_numpy() * 3


def _served(model, threads: int):
    served = Served("svc/1/training/20260101T000000000000Z", "svc", "1", Scorer(model, ("x",)),
                    Features(("x",), {"x": "number"}))
    return Slot(served, threads=threads).served


def _rows(*values):
    return pa.table({"x": pa.array(values, pa.float64())})


def test_serve_and_stream_split_a_batch_one_thread_would_take_long_on_and_keep_a_quick_one_whole():
    model = SleepyModel()
    served = _served(model, threads=2)
    values = [float(v) for v in range(4096)]
    first = served.predict(_rows(*values))  # 80 ms on one thread: unknown until timed, so whole
    second = served.predict(_rows(*values))  # now known to be worth two threads
    small = served.predict(_rows(*values[:3000]))  # 60 ms, but slices under Slices.MIN_ROWS cost more than they save
    assert first.tolist() == second.tolist() == [3 * v for v in values] and small.tolist() == first.tolist()[:3000]
    assert [rows for rows, _ in model.calls] == [4096, 2048, 2048, 3000]
    assert len({thread for _, thread in model.calls[1:3]}) == 2
    scored = served.score(pa.RecordBatch.from_pydict({"x": values}), Schema.parse("y:FLOAT64"), "the stream")
    assert len(scored) == 2 and np.concatenate([b.column(0).to_numpy() for b in scored]).tolist() == first.tolist()


def test_a_slice_that_fails_raises_the_model_s_error_after_every_slice_has_ended():
    model = SleepyModel()
    served = _served(model, threads=2)
    served.predict(_rows(*map(float, range(4096))))
    with pytest.raises(ModelError, match="a negative x"):
        served.predict(_rows(*map(float, range(2048)), *[-1.0] * 2048))  # the second slice fails
    assert [rows for rows, _ in model.calls] == [4096, 2048, 2048]


def test_one_thread_never_splits():
    model = SleepyModel()
    served = _served(model, threads=1)
    for _ in range(2):
        served.predict(_rows(*map(float, range(4096))))
    assert [rows for rows, _ in model.calls] == [4096, 4096]
