"""Work folders of a process killed with SIGKILL are removed by the next one (issue 13, defect 9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from batchcast.isolation.scratch import root, scratch_dir

HOLD = ("from batchcast.isolation.scratch import scratch_dir; import time; print(scratch_dir('run'), flush=True); "
        "time.sleep(60)")


def test_a_killed_process_work_folder_is_swept_by_the_next(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    left = Path(child.stdout.readline().strip())
    assert left.is_dir() and left.parent == root()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert left.is_dir()  # nothing of the killed process cleaned up after it
    mine = scratch_dir("run")
    assert not left.exists() and mine.is_dir()
    assert mine.name.startswith(f"{os.getpid()}-run-")
    mine.rmdir()


def test_a_live_process_work_folder_is_kept():
    child = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    try:
        held = Path(child.stdout.readline().strip())
        scratch_dir("run").rmdir()
        assert held.is_dir()
    finally:
        child.kill()
        child.wait()
