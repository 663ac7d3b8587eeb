"""Application streams: peak memory at 10M rows stays within 1.5x of the 1M-row run (DESIGN invariant 5)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchcast import Service
from tests.conftest import make_features, write_python_service

pytestmark = pytest.mark.slow  # moves 1M and 10M rows

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a
# child of a large pytest process would report the parent's size.
MEASURE = """
import re, sys
from batchcast import Service
manifest = Service(sys.argv[1]).run("application", "2026-01-05", executor="inline")
assert manifest.succeeded, manifest.error
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print("RESULT", manifest.rows["written"], peak)
"""


def peak_rss_kib(spec) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(spec)], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    _, rows, rss = line.split()
    return int(rows), int(rss)


def test_memory_does_not_grow_with_rows(tmp_path):
    spec = write_python_service(tmp_path, rows=1_000_000)
    assert Service(spec).run("training").succeeded
    rows_1m, rss_1m = peak_rss_kib(spec)
    make_features(tmp_path / ".batchcast" / "warehouse.duckdb", 10_000_000)
    rows_10m, rss_10m = peak_rss_kib(spec)
    print(f"\npeak RSS: 1M rows {rss_1m / 1024:.0f} MiB, 10M rows {rss_10m / 1024:.0f} MiB, "
          f"ratio {rss_10m / rss_1m:.2f}")
    assert (rows_1m, rows_10m) == (1_000_000, 10_000_000)
    assert rss_10m <= 1.5 * rss_1m
