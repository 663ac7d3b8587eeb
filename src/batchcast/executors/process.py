"""Running a child process with a timeout that kills its whole tree."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from batchcast.errors import ExecutorError, RunTimeout


def run(argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, timeout: float) -> int:
    """Run ``argv`` with stdout and stderr appended to ``log_path``; return its exit code.

    The child leads a new process group, so a timeout (RunTimeout) or an
    interrupt kills everything it started, not only the child.
    """
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise ExecutorError(f"cannot start '{argv[0]}': {exc.strerror}",
                                "check the command and that its program is installed") from None
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            raise RunTimeout(f"'{' '.join(argv)}' ran longer than its timeout of {timeout:g} s and was killed",
                             "raise [actions.*] timeout, or make the job faster") from None
        except BaseException:
            _kill_tree(proc)
            raise


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, for an error message."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])
