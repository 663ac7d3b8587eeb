"""The dashboard's pages as HTML, in process: a grid paged and filtered by period, a run's log paged."""

from __future__ import annotations

import datetime as dt
import html
import re

from batchcast import Service
from batchcast.ui import grid_html, run_page
from batchcast.ui.runview import LOG_LINES
from batchcast.ui.views import PAGE
from tests.conftest import bc, write_python_service


def test_a_grid_pages_by_period_newest_first_and_filters_by_state(tmp_path):
    spec = write_python_service(tmp_path, rows=200)
    bc("run", "training", "--date", "2026-03-01", cwd=tmp_path)
    service = Service(spec)
    skipped = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(PAGE + 5)]
    service.ledger.add("scores", "2", "application", skipped, "skipped")
    first, second = grid_html(service), grid_html(service, page=2)
    assert re.findall(r'data-period="([^"]+)"', first)[:2] == ["2026-03-01", str(skipped[-1])]
    assert len(re.findall(r'data-period="', first)) == PAGE and "page 1 of 2" in first
    assert re.findall(r'data-period="([^"]+)"', second) == [str(d) for d in reversed(skipped[:6])]
    only = grid_html(service, state="succeeded")
    assert re.findall(r'data-period="([^"]+)"', only) == ["2026-03-01"]
    assert 'class="cell skipped"' in first and 'class="cell succeeded"' in only


def test_a_run_page_shows_its_log_a_page_at_a_time(tmp_path):
    spec = write_python_service(tmp_path, rows=200)
    bc("run", "training", cwd=tmp_path)
    service = Service(spec)
    [run] = service.runs()
    lines = service.log(run).splitlines()
    assert 1 < len(lines) < LOG_LINES  # one page: the whole log, and no link to another
    page = html.unescape(run_page([service], run.run_id))
    assert "page 1 of 1" in page and 'id="log-earlier"' not in page and lines[-1].split(" INFO ")[-1] in page
    assert "accuracy" in page and '{"C": 0.5}' in page  # the metrics, and the params it was trained with


def test_a_rerun_of_a_bad_date_or_of_a_period_already_rerunning_is_refused_in_one_line(tmp_path):
    import pytest

    from batchcast.errors import SpecError
    from batchcast.ui.operations import MAX_RERUNS, Operations

    service = Service(write_python_service(tmp_path, rows=200))
    ops = Operations()
    try:
        with pytest.raises(SpecError, match=r"logical date '2026-13-01' is not YYYY-MM-DD"):
            ops.do(service, "rerun", {"action": "application", "date": "2026-13-01"}, "ana")
        ops.pending.add(("scores", "2", "application", "2026-01-01"))  # as while its run is in flight
        with pytest.raises(SpecError, match="application for 2026-01-01 is already being rerun"):
            ops.do(service, "rerun", {"action": "application", "date": "2026-01-01"}, "ana")
        ops.pending.update(("scores", "2", "application", f"2025-01-{k:02d}") for k in range(1, MAX_RERUNS))
        with pytest.raises(SpecError, match=f"{MAX_RERUNS} reruns are already waiting or running"):
            ops.do(service, "rerun", {"action": "application", "date": "2026-01-02"}, "ana")
    finally:
        ops.close()
    assert not service.runs() and not service.ledger.done("scores", "2")  # nothing ran, nothing recorded
