"""Running a child process with a timeout that kills its whole tree."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from batchcast.errors import ExecutorError, RunTimeout


def interrupt(signum, frame) -> None:
    """A signal handler for SIGINT and SIGTERM: a scheduler's kill cancels a run as Ctrl-C does."""
    raise KeyboardInterrupt


def run(argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, timeout: float,
        grace: float = 0.0) -> int:
    """Run ``argv`` with stdout and stderr appended to ``log_path``; return its exit code.

    The child leads a new process group, so a timeout (RunTimeout) or an
    interrupt kills everything it started, not only the child. It also dies
    with this process: a ``kill -9`` of ``batchcast run`` must not leave a
    worker that later commits and publishes a run its user believes stopped.
    With ``grace``, the child first gets SIGTERM and that long to stop what it
    started elsewhere (a Beam job on a cluster) before the tree is killed.
    """
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_die_with(os.getpid()))
        except OSError as exc:
            raise ExecutorError(f"cannot start '{argv[0]}': {exc.strerror}",
                                "check the command and that its program is installed") from None
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, grace)
            raise RunTimeout(f"'{' '.join(argv)}' ran longer than its timeout of {timeout:g} s and was killed",
                             "raise [actions.*] timeout, or make the job faster") from None
        except BaseException:
            _stop(proc, grace)
            raise


_PR_SET_PDEATHSIG = 1
try:  # loaded here, not in the forked child, where loading a library could deadlock
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the child outlives a killed parent, as before
    _prctl = None


def _die_with(parent: int):
    """A pre-exec hook: SIGKILL the child when ``parent`` dies (Linux's PR_SET_PDEATHSIG)."""
    if _prctl is None:
        return None

    def hook() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the hook ran: no signal will come
            os._exit(1)

    return hook


def _stop(proc: subprocess.Popen, grace: float) -> None:
    try:
        if grace > 0:
            proc.terminate()
            _wait_unreaped(proc.pid, grace)
    finally:  # a second Ctrl-C during the grace still kills the tree
        _kill_tree(proc)


def _wait_unreaped(pid: int, seconds: float) -> None:
    """Wait up to ``seconds`` for ``pid`` to exit, leaving it unreaped: its pid cannot be reused before the kill."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.1)


def _kill_tree(proc: subprocess.Popen) -> None:
    kill_tree(proc.pid)
    proc.wait()


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and every descendant, even those that left the group."""
    victims = [pid, *descendants(pid)]
    for victim in victims:  # stop first, so nothing forks while the tree is being killed
        _signal(victim, signal.SIGSTOP)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for victim in victims:
        _signal(victim, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, for an error message."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])
