from pathlib import Path

pytest_plugins = ["pytester"]

ROOT = str(Path(__file__).resolve().parents[1])


def test_skips_fail_only_when_every_backend_is_required(pytester, monkeypatch):
    pytester.makepyfile("import pytest\n\ndef test_backend():\n    pytest.skip('no server here')\n")
    monkeypatch.setenv("PYTHONPATH", ROOT)
    monkeypatch.delenv("BATCHCAST_REQUIRE_ALL", raising=False)
    pytester.runpytest_subprocess("-p", "tests.require_all").assert_outcomes(skipped=1)
    monkeypatch.setenv("BATCHCAST_REQUIRE_ALL", "1")
    result = pytester.runpytest_subprocess("-p", "tests.require_all")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*BATCHCAST_REQUIRE_ALL=1*no server here*"])
