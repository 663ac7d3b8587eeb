"""A pytest plugin: with BATCHCAST_REQUIRE_ALL=1 (as in .ci/run) a skipped test fails."""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A backend whose service could not start must not pass CI by skipping."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("BATCHCAST_REQUIRE_ALL") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped, but BATCHCAST_REQUIRE_ALL=1 requires every backend: {report.longrepr}"
