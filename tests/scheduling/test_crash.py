"""SIGKILL the scheduler at random moments, restart it, and check every date ran exactly once."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import time
from collections import Counter

import pytest

from batchcast import Service
from tests.conftest import BATCHCAST, query
from tests.scheduling.test_scheduler import TODAY, scheduled, scheduler

pytestmark = pytest.mark.slow  # kill trials (of the scheduler)

KILLS = 20
SEED = int(os.environ.get("BATCHCAST_CRASH_SEED", "20261122"))
ROWS = 200


def test_sigkill_at_random_moments_leaves_every_date_succeeded_exactly_once(tmp_path):
    rng = random.Random(SEED)
    start = TODAY - dt.timedelta(days=11)
    spec = scheduled(tmp_path, f'schedule = "0 0 * * *"\nstart_date = {start}\ncatchup = "all"',
                     training='schedule = "0 0 * * *"', rows=ROWS)
    moments, logs = [], tmp_path / "schedulers.log"
    for _ in range(KILLS):
        with open(logs, "a") as out:
            proc = subprocess.Popen([BATCHCAST, "--spec", str(spec), "scheduler", "--interval", "0.2"], cwd=tmp_path,
                                    stdout=out, stderr=subprocess.STDOUT)
        moments.append(round(rng.uniform(0.05, 2.5), 2))
        time.sleep(moments[-1])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = scheduler(spec, timeout=600)  # the last start runs to the end
    text = logs.read_text() + last.stderr
    # The kills must have landed mid-run, or this test proves nothing about crash recovery.
    assert text.count("adopted ") >= 3, f"seed {SEED}: only {text.count('adopted ')} runs were in flight at a kill"

    dates = [(start + dt.timedelta(days=k)).isoformat() for k in range(12)]
    service = Service(spec)
    states = {r["logical_date"]: r["state"] for r in service.ledger.rows("scores", "2", "application")}
    assert states == {d: "succeeded" for d in dates}, f"seed {SEED}, kills at {moments}"
    succeeded = [m for m in service.runs("application") if m.succeeded]
    assert Counter(m.logical_date.isoformat() for m in succeeded) == {d: 1 for d in dates}, f"seed {SEED}"
    assert [m for m in service.runs("training") if m.succeeded].__len__() == 1
    db = tmp_path / ".batchcast" / "warehouse.duckdb"
    per_date = query(db, "SELECT _logical_date::VARCHAR, count(*), count(DISTINCT player_id), "
                         "count(DISTINCT _run_id), min(_run_id) FROM scores GROUP BY 1 ORDER BY 1")
    assert per_date == [(m.logical_date.isoformat(), ROWS, ROWS, 1, m.run_id) for m in succeeded], f"seed {SEED}"
