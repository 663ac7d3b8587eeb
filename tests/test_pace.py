"""Progress of long work as log lines: at most one per interval, with the count and the rate."""

from __future__ import annotations

import logging

from batchcast.data.pace import Pace


def test_pace_logs_at_most_once_per_interval_with_count_and_rate(caplog):
    now = [100.0]
    pace = Pace(logging.getLogger("batchcast"), "scored", every=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="batchcast"):
        for _ in range(30):  # 30 batches of 65,536 rows, one a second
            now[0] += 1
            pace.add(65_536)
    assert [r.getMessage() for r in caplog.records] == [
        "scored 655,360 rows so far (65,536 rows/s)", "scored 1,310,720 rows so far (65,536 rows/s)",
        "scored 1,966,080 rows so far (65,536 rows/s)"]
