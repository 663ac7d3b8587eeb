"""Seeded kill -9 trials: a run killed at a random point loses nothing and leaves nothing running.

Each trial starts ``batchcast run`` (application or training, inline or local)
in a process group of its own, as a shell would, and kills the whole group with
SIGKILL after a random delay drawn from the seed, anywhere from start-up to
just after the run would have ended. Then: no process of the run is left, no
run commits after the kill, the date holds exactly its rows once (no partial
date, no duplicate), the champion has not moved, and at the end a rerun of
each kind succeeds. BATCHCAST_FAULT_TRIALS (default 20) and
BATCHCAST_FAULT_SEED (default 13) choose how many and which.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid

import pytest

from batchcast import Service
from tests.conftest import BATCHCAST, bc, query, write_python_service
from tests.faults.service import holders_of

pytestmark = pytest.mark.slow  # kill trials

TRIALS = int(os.environ.get("BATCHCAST_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("BATCHCAST_FAULT_SEED", "13"))
DAY = "2026-01-01"
ROWS = 20_000
KINDS = [("application", "inline"), ("application", "local"), ("training", "inline"),
         ("application", "inline"), ("application", "local"), ("training", "local")]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Trained, promoted, applied for DAY; each kind run once, to time it (and build the local venv)."""
    root = tmp_path_factory.mktemp("kills")
    write_python_service(root, rows=ROWS)
    bc("run", "training", cwd=root)
    bc("promote", "latest", cwd=root)
    durations = {}
    for action, executor in set(KINDS):
        started = time.monotonic()
        bc("run", action, "--date", DAY, "--executor", executor, cwd=root)
        durations[action, executor] = time.monotonic() - started
    return root, durations


def _trial(root, action: str, executor: str, delay: float) -> str:
    marker = f"trial-{uuid.uuid4().hex}"
    proc = subprocess.Popen([BATCHCAST, "run", action, "--date", DAY, "--executor", executor], cwd=root,
                            env={**os.environ, "BATCHCAST_FAULT_TRIAL": marker}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return marker if killed else ""


def test_kill_9_at_random_points_loses_nothing(service):
    root, durations = service
    spec = root / "batchcast.toml"
    db = root / ".batchcast" / "warehouse.duckdb"
    champion = Service(spec).model_for().run_id
    rng = random.Random(SEED)
    killed = 0
    for i in range(TRIALS):
        action, executor = KINDS[i % len(KINDS)]
        delay = rng.uniform(0.05, durations[action, executor] * 1.1)
        committed = [(m.run_id, m.status) for m in Service(spec).runs()]
        marker = _trial(root, action, executor, delay)
        after_kill = [(m.run_id, m.status) for m in Service(spec).runs()]
        killed += bool(marker)
        time.sleep(0.5)
        where = f"trial {i} ({action}, {executor}, killed after {delay:.2f} s)"
        assert not (marker and holders_of("BATCHCAST_FAULT_TRIAL", marker)), f"{where}: a process outlived the kill"
        assert [(m.run_id, m.status) for m in Service(spec).runs()] == after_kill, f"{where}: committed after"
        assert len(after_kill) - len(committed) <= 1, where
        assert query(db, f"SELECT count(*), count(DISTINCT player_id) FROM scores "
                         f"WHERE _logical_date = DATE '{DAY}'") == [(ROWS, ROWS)], f"{where}: partial or duplicate"
        assert Service(spec).model_for().run_id == champion, f"{where}: the champion moved"
    print(f"\n{killed} of {TRIALS} trials killed mid-run (seed {SEED}); 0 failures")
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} trials were killed mid-run: the delays are too long"
    for action, executor in set(KINDS):
        bc("run", action, "--date", DAY, "--executor", executor, cwd=root)
    assert query(db, f"SELECT count(*) FROM scores WHERE _logical_date = DATE '{DAY}'") == [(ROWS,)]
