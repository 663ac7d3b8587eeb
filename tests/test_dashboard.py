"""The dashboard in a real headless Chromium (Debian's, through its chromedriver and Selenium): a login, actions
from the grid and the models page, their refusals, pages that run nothing a run wrote, and screenshots."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from batchcast import Service
from batchcast.runs.heartbeats import heartbeats
from tests.conftest import BATCHCAST, bc, bc_json, write_python_service
from tests.serving.servers import free_port, start as start_serve, stop as stop_serve

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-for-the-test"
SCREENSHOTS = Path(__file__).resolve().parent.parent / ".test-artifacts" / "dashboard"
PAYLOAD = "<img src=x onerror=alert(1)><script>alert(2)</script>"  # what a run may write: a column name, say
DATES = ["2026-01-01", "2026-01-02", "2026-01-03"]


def browser():
    """Chromium headless, driven by the chromedriver next to it; Selenium downloads nothing when given both."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as Driver

    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        if os.environ.get("BATCHCAST_REQUIRE_ALL"):
            pytest.fail("chromium and chromium-driver are required: apt-get install chromium chromium-driver")
        pytest.skip("chromium and its chromedriver are not installed: apt-get install chromium chromium-driver "
                    "(make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1100", "--disable-background-networking", "--no-first-run"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Driver(executable_path=found[1]), options=options)


def start_ui(root: Path, *args: str, password: str | None = PASSWORD) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BATCHCAST_UI_PASSWORD"}
    if password:
        env["BATCHCAST_UI_PASSWORD"] = password
    proc = subprocess.Popen([BATCHCAST, "ui", "--port", str(port), *args], cwd=root, env=env,
                            stdout=(root / "ui.log").open("a"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
            return base, proc
        except OSError:
            assert proc.poll() is None, (root / "ui.log").read_text()
            time.sleep(0.1)
    raise AssertionError((root / "ui.log").read_text())


def stop_ui(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A service with two trainings, three applied dates and one failed run whose error carries HTML, and its
    dashboard started with a password; a serve process beating its heartbeat meanwhile."""
    root = tmp_path_factory.mktemp("dashboard")
    spec = write_python_service(root, rows=400)
    for _ in range(2):
        bc("run", "training", cwd=root)
    for day in DATES:
        bc("run", "application", "--date", day, cwd=root)
    good = spec.read_text()
    spec.write_text(good.replace("SELECT * EXCLUDE (churned) FROM features", f'SELECT \\"{PAYLOAD}\\" FROM features'))
    bc("run", "application", "--date", "2026-01-04", cwd=root, ok=False)
    spec.write_text(good)
    base, proc = start_ui(root)
    yield root, base
    stop_ui(proc)


@pytest.fixture
def driver():
    found = browser()
    yield found
    found.quit()


def log_in(driver, base: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.ID, "user").send_keys("ana")
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    wait(lambda: "/login" not in driver.current_url or "wrong name or password" in driver.page_source, 30, 0.1)


def shows(driver, text: str) -> None:
    """Wait for the page a click led to: a form's submission is not waited for by Selenium's click."""
    wait(lambda: text in driver.page_source, timeout=30, every=0.1)


def champion(root: Path) -> str | None:
    return next((m["run_id"] for m in bc_json("models", cwd=root) if "champion" in m["aliases"]), None)


def wait(condition, timeout: float = 120, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(every)
    raise AssertionError("the condition did not hold in time")


def test_a_wrong_password_is_refused_and_the_right_one_opens_every_page(ui, driver):
    root, base = ui
    driver.get(base + "/services/scores/2/grid")
    assert driver.current_url.startswith(base + "/login")  # nothing is shown before a login
    log_in(driver, base, "not-the-password")
    shows(driver, "wrong name or password")
    assert driver.current_url.startswith(base + "/login")
    driver.get(base + "/")
    assert driver.current_url.startswith(base + "/login")
    log_in(driver, base)
    shows(driver, 'id="service-scores-2"')
    assert driver.current_url == base + "/"
    cookie = driver.get_cookie("batchcast_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_rerun_from_the_grid_runs_the_period_again(ui, driver):
    from selenium.webdriver.common.by import By

    root, base = ui
    before = {m.run_id for m in Service(root / "batchcast.toml").runs("application")}
    log_in(driver, base)
    driver.get(base + "/services/scores/2/grid")
    cell = driver.find_element(By.CSS_SELECTOR, f'tr[data-period="{DATES[1]}"] td[data-action="application"]')
    cell.find_element(By.CSS_SELECTOR, "button.rerun").click()
    shows(driver, f"rerun of application for {DATES[1]} started")
    new = wait(lambda: [m for m in Service(root / "batchcast.toml").runs("application") if m.run_id not in before])
    assert [(periods_of(m), m.status.value) for m in new] == [(DATES[1], "succeeded")]
    driver.refresh()
    cell = driver.find_element(By.CSS_SELECTOR, f'tr[data-period="{DATES[1]}"] td[data-action="application"]')
    assert cell.find_element(By.TAG_NAME, "a").get_attribute("href").endswith("/runs/" + new[0].run_id)
    [done] = [d for d in Service(root / "batchcast.toml").ledger.done("scores", "2") if "rerun" in d["what"]]
    assert done["who"] == "ana"


def periods_of(manifest) -> str:
    return manifest.logical_date.isoformat()


def test_promote_and_roll_back_from_the_models_page_move_the_champion(ui, driver):
    from selenium.webdriver.common.by import By

    root, base = ui
    first, second = [m.run_id for m in Service(root / "batchcast.toml").runs("training")]
    log_in(driver, base)
    for run in (first, second):
        driver.get(base + "/services/scores/2/models")
        row = driver.find_element(By.CSS_SELECTOR, f'tr.model[data-run="{run}"]')
        row.find_element(By.CSS_SELECTOR, "button.promote").click()
        shows(driver, f"promoted {run} to champion")
        assert champion(root) == run
    driver.find_element(By.ID, "rollback-champion").click()
    shows(driver, f"rolled champion back to {first}")
    assert champion(root) == first
    moves = Service(root / "batchcast.toml").alias_history()["champion"]
    assert [m["by"].split(" from ")[0] for m in moves] == ["ana (dashboard)"] * 3
    assert "ana (dashboard)" in bc("models", cwd=root).stdout


def post(base: str, path: str, form: dict, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(form).encode(),
                                     headers={"Cookie": f"batchcast_session={cookie}"} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_no_action_without_a_login_or_without_the_form_s_csrf_token(ui, driver):
    root, base = ui
    log_in(driver, base)
    session = driver.get_cookie("batchcast_session")["value"]
    held = champion(root)
    target = next(m.run_id for m in Service(root / "batchcast.toml").runs("training") if m.run_id != held)
    done = len(Service(root / "batchcast.toml").ledger.done("scores", "2"))
    form = {"run": target, "alias": "champion"}
    code, page = post(base, "/services/scores/2/do/promote", form, session)
    assert code == 403 and "no valid CSRF token" in page
    code, page = post(base, "/services/scores/2/do/promote", {**form, "csrf": "0" * 64}, session)
    assert code == 403 and "no valid CSRF token" in page
    code, page = post(base, "/services/scores/2/do/pause", {"action": "application"})
    assert code == 403 and "not logged in" in page
    assert champion(root) == held and len(Service(root / "batchcast.toml").ledger.done("scores", "2")) == done
    assert not Service(root / "batchcast.toml").ledger.paused("scores", "2")


def test_without_a_credential_it_only_reads_and_only_on_loopback(ui):
    root, _ = ui
    base, proc = start_ui(root, password=None)
    try:
        code, page = post(base, "/services/scores/2/do/pause", {"action": "application"})
        assert code == 403 and "started without a credential" in page
        with urllib.request.urlopen(base + "/services/scores/2/grid", timeout=30) as answer:
            assert answer.status == 200 and 'class="rerun"' not in answer.read().decode()
        assert not Service(root / "batchcast.toml").ledger.paused("scores", "2")
    finally:
        stop_ui(proc)
    env = {k: v for k, v in os.environ.items() if k != "BATCHCAST_UI_PASSWORD"}
    out = subprocess.run([BATCHCAST, "ui", "--host", "0.0.0.0", "--port", str(free_port())], cwd=root, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.splitlines() == [
        "error: refusing to listen on 0.0.0.0 without a credential: anyone who can reach it could act",
        "fix: set BATCHCAST_UI_PASSWORD (or pass --password-file), or listen on 127.0.0.1"]


def test_no_page_runs_what_a_run_wrote(ui, driver):
    from selenium.webdriver.common.by import By

    root, base = ui
    failed = next(m for m in Service(root / "batchcast.toml").runs("application") if not m.succeeded)
    assert PAYLOAD in failed.error["message"]  # the run's own error carries the markup
    log_in(driver, base)
    pages = ["/", "/services/scores/2", "/services/scores/2/grid", "/services/scores/2/models",
             f"/runs/{failed.run_id}", "/services/scores/2/grid?state=" + urllib.parse.quote(PAYLOAD),
             "/runs/" + urllib.parse.quote(PAYLOAD)]
    for page in pages:
        driver.get(base + page)
        assert not driver.find_elements(By.CSS_SELECTOR, "img, script, [onerror]"), page
        assert "<img src=x" not in driver.page_source, page
    driver.get(f"{base}/runs/{failed.run_id}")
    assert "<img src=x onerror=alert(1)>" in driver.find_element(By.CSS_SELECTOR, "p.error").text  # shown as text


def test_screenshots_of_every_page_and_the_server_it_serves(ui, driver):
    """Writes .test-artifacts/dashboard/*.png (the README names them); the overview names the serving process."""
    root, base = ui
    port, served = start_serve(root, "--poll", "1", "--inline")
    try:
        beat = wait(lambda: heartbeats(Service(root / "batchcast.toml").store, "scores", "2"), timeout=60)
        assert beat[0]["kind"] == "serve" and beat[0]["where"] == f"http://127.0.0.1:{port}"
        log_in(driver, base)
        assert f"serve http://127.0.0.1:{port}: {beat[0]['run_id'].rsplit('/', 1)[-1]}" in re.sub(
            r"\s+", " ", driver.page_source)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        service = Service(root / "batchcast.toml")
        pages = {"overview": "/", "service": "/services/scores/2", "grid": "/services/scores/2/grid",
                 "run": f"/runs/{service.runs('application')[0].run_id}", "models": "/services/scores/2/models"}
        for name, page in pages.items():
            driver.get(base + page)
            shot = SCREENSHOTS / f"{name}.png"
            shot.unlink(missing_ok=True)
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(1400, max(900, min(height + 40, 4000)))
            driver.save_screenshot(str(shot))
            width, tall = struct.unpack(">II", shot.read_bytes()[16:24])  # the PNG header's IHDR
            shown = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            assert [width, tall] == shown and width == 1400 and shot.stat().st_size > 20_000, (name, width, tall)
    finally:
        stop_serve(served)
    assert not heartbeats(Service(root / "batchcast.toml").store, "scores", "2")  # removed at a clean stop
    print(f"\nscreenshots in {SCREENSHOTS}: {json.dumps(sorted(p.name for p in SCREENSHOTS.iterdir()))}")
