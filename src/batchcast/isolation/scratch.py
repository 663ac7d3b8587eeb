"""Work folders that do not outlive their process, even one killed with SIGKILL.

Each folder is named after the process that made it, under one root in the
temporary directory; making a new one first removes those whose process is
gone, since a killed process never ran its own clean-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from batchcast.errors import ExecutorError


def root() -> Path:
    return Path(tempfile.gettempdir()) / f"batchcast-{os.getuid()}"


def scratch_dir(prefix: str) -> Path:
    """A new empty folder owned by this process; stale ones of dead processes are removed first."""
    base = root()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    if base.stat().st_uid != os.getuid():  # a shared temporary directory: another user made it first
        raise ExecutorError(f"{base} belongs to another user", "remove it, or set TMPDIR to a folder of your own")
    sweep(base)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{prefix}-", dir=base))


def sweep(base: Path) -> None:
    for folder in base.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: someone else's process holds that pid now; leave its folder
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
