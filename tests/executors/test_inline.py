import sys

import pytest

from batchcast.testing.executors import ExecutorContract


class TestInline(ExecutorContract):
    @pytest.fixture
    def executor(self):
        return "inline"

    def check_interpreter(self, prefix):
        assert prefix == sys.prefix  # no isolation: batchcast's own environment
