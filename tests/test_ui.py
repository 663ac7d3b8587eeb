"""The example service on an every-minute schedule, run by the scheduler, seen in the dashboard by headless Chromium."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from batchcast import Service
from tests.conftest import BATCHCAST, bc, bc_json

TODAY = dt.datetime.now(dt.UTC).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("headless Chromium is not installed: apt-get install chromium (make test does)")
    return found


def browse(url: str, *, screenshot: Path | None = None) -> str:
    """The DOM Chromium built from ``url`` (or a screenshot of it)."""
    extra = [f"--screenshot={screenshot}", "--window-size=1400,2600"] if screenshot else ["--dump-dom"]
    result = subprocess.run([chromium(), *CHROMIUM_FLAGS, *extra, url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def every_minute(tmp_path):
    """The example service, both actions daily at the current minute (so today is due at once), run by
    `batchcast scheduler` until both succeeded. (An every-minute schedule has a period per minute.)"""
    bc("init", "svc", "--name", "churn", cwd=tmp_path)
    svc = tmp_path / "svc"
    spec = svc / "batchcast.toml"
    now = dt.datetime.now(dt.UTC)
    daily = f'"{now.minute} {now.hour} * * *"'
    spec.write_text(spec.read_text().replace('"0 3 * * 1"', daily).replace('"0 6 * * *"', daily))
    proc = subprocess.Popen([BATCHCAST, "scheduler", "--interval", "1"], cwd=svc, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = {(r["action"], r["status"]) for r in bc_json("runs", cwd=svc)}
            if {("training", "succeeded"), ("application", "succeeded")} <= done:
                break
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert {("training", "succeeded"), ("application", "succeeded")} <= done, out
    return svc


def test_the_scheduler_runs_an_every_minute_service_by_itself(every_minute):
    listed = bc_json("runs", cwd=every_minute)
    assert sorted((r["action"], r["logical_date"], r["status"]) for r in listed) == [
        ("application", TODAY.isoformat(), "succeeded"), ("training", TODAY.isoformat(), "succeeded")]
    application = next(r for r in listed if r["action"] == "application")
    training = next(r for r in listed if r["action"] == "training")
    assert application["model_run"] == training["run_id"] and application["rows"]["written"] == 1000


@pytest.fixture
def dashboard(every_minute):
    svc = every_minute
    spec = svc / "batchcast.toml"
    good = spec.read_text()
    spec.write_text(good.replace("label:BOOL", "label:BOOL,churn_risk:FLOAT64"))
    bc("run", "application", "--date", str(YESTERDAY), cwd=svc, ok=False)  # a failed run for the page to show
    spec.write_text(good)
    first = Service(spec).runs("training")[0].run_id
    bc("run", "training", "--date", str(TODAY), cwd=svc)  # a second training: the metrics plot gets a line
    bc("promote", first, cwd=svc)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([BATCHCAST, "ui", "--port", str(port)], cwd=svc, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        yield svc, base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_the_dashboard_shows_runs_failures_plots_and_champions(dashboard):
    svc, base = dashboard
    service = Service(svc / "batchcast.toml")
    failed = next(m for m in service.runs("application") if not m.succeeded)
    skipped = [YESTERDAY - dt.timedelta(days=400 + k) for k in range(40)]  # a catchup=latest restart's
    service.ledger.add("churn", "1", "application", skipped, "skipped")

    front = browse(base + "/")  # the overview: one row per service, its newest runs and champion
    [row] = re.findall(r'<tr class="service-row (\w+)" id="service-churn-1">(.*?)</tr>', front, re.S)
    assert row[0] == "green" and 'href="/services/churn/1"' in row[1]  # today's runs succeeded
    assert service.runs("training")[0].run_id.rsplit("/", 1)[-1] in row[1] and "accuracy" in row[1]

    dom = browse(base + "/services/churn/1")
    [folded] = re.findall(r'<tr class="run skipped">(.*?)</tr>', dom, re.S)  # 40 dates, one row
    assert f"40 application dates skipped by catchup=latest, {min(skipped)}..{max(skipped)}" in folded
    schedule = Service(svc / "batchcast.toml").spec.action("application").schedule
    assert f"<code>{schedule}</code>" in dom
    succeeded_rows = re.findall(r'<tr class="run succeeded">(.*?)</tr>', dom, re.S)
    assert len(succeeded_rows) == 3  # two trainings, one application
    assert "run running" not in dom  # a committed run is shown by its manifest, whatever the ledger lags
    [failed_row] = re.findall(r'<tr class="run failed">(.*?)</tr>', dom, re.S)
    assert str(YESTERDAY) in failed_row and "churn_risk" in failed_row and f'href="/runs/{failed.run_id}"' in failed_row
    durations = re.search(r'<figure class="durations">(.*?)</figure>', dom, re.S).group(1)
    assert re.search(r'<polyline class="series" data-series="application" data-points="2"', durations)
    # Both trainings are today's: a period is drawn by its newest run, once.
    assert re.search(r'<polyline class="series" data-series="training" data-points="1"', durations)
    metrics = re.search(r'<figure class="metrics">(.*?)</figure>', dom, re.S).group(1)
    assert re.search(r'<polyline class="series" data-series="accuracy" data-points="2"', metrics)
    predicted = re.search(r'<figure class="predicted">(.*?)</figure>', dom, re.S).group(1)
    assert re.search(r'<rect class="share" data-series="(true|false)"', predicted)  # the label's classes, by date
    champions = re.search(r'<table class="champions">(.*?)</table>', dom, re.S).group(1)
    assert service.runs("training")[0].run_id in champions
    upcoming = re.search(r'<table class="upcoming">(.*?)</table>', dom, re.S).group(1)
    assert upcoming.count("<tr>") == 7  # header + 3 per scheduled action

    grid = browse(base + "/services/churn/1/grid?state=failed")  # only the periods with a failure
    assert re.findall(r'data-period="([^"]+)"', grid) == [str(YESTERDAY)]
    page = browse(f"{base}/runs/{failed.run_id}")
    assert f'<h2 class="run-id">{failed.run_id}</h2>' in page and "churn_risk" in page
    assert '"status": "failed"' in page and "ERROR" in page  # the manifest, and the run's own log
    assert "list runs with 'batchcast runs'" in browse(f"{base}/runs/churn/1/application/nope")


def test_a_port_in_use_is_one_line_and_exit_1(adopted):
    """It printed a full traceback (issue 13, defect 7)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = bc("ui", "--port", str(port), cwd=adopted, ok=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use",
                                       "fix: pass another --port, or stop what listens there"]
