"""A run its user stops stays stopped: Ctrl-C records it cancelled, kill -9 leaves no worker behind."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.service import held_service, holders, kill_group, rows_for, start_held, statuses, stop_held

DAY = "2026-01-02"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    held_service(root)
    return root


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_ctrl_c_is_one_line_and_a_cancelled_run(service, executor, tmp_path):
    hold = tmp_path / "hold"
    proc = start_held(service, hold, "run", "application", "--date", DAY, "--executor", executor)
    out, err = stop_held(proc, hold, signal.SIGINT)
    hold.unlink(missing_ok=True)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "cancelled:" in err
    assert statuses(service, "application")[-1] == "cancelled"
    assert rows_for(service, DAY) == 0
    assert not holders(hold)


def test_sigterm_cancels_like_ctrl_c(service, tmp_path):
    hold = tmp_path / "hold"
    proc = start_held(service, hold, "run", "application", "--date", DAY, "--executor", "local")
    _, err = stop_held(proc, hold, signal.SIGTERM)
    hold.unlink(missing_ok=True)
    assert proc.returncode == 130 and "Traceback" not in err
    assert statuses(service, "application")[-1] == "cancelled"


@pytest.mark.parametrize("action", ["application", "training"])
def test_kill_9_of_the_group_stops_the_local_worker(service, action, tmp_path):
    hold = tmp_path / "hold"
    before = statuses(service, action)
    proc = start_held(service, hold, "run", action, "--date", DAY, "--executor", "local")
    kill_group(proc)
    hold.unlink()  # a worker that survived would now finish, commit and publish
    time.sleep(3)
    assert not holders(hold), "the worker outlived its killed parent"
    assert statuses(service, action) == before
    assert rows_for(service, DAY) == 0
