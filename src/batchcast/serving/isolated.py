"""Starting the server inside the model's isolated environment.

The environment is built as the local executor builds a Python-contract
run's: the model's requirements, batchcast's runtime pinned to this
process's versions, batchcast linked in, plus the server's own libraries.
The CLI then replaces itself with the server (``exec``), so the process
that got the signals (SIGTERM, SIGHUP) is the one serving.
"""

from __future__ import annotations

import os

from batchcast.environments import SERVE, ensure_environment


def exec_server(spec, argv: list[str]) -> None:
    """Build (or reuse) the environment and run ``python -m batchcast.serving`` there; never returns."""
    environment = ensure_environment(spec, True, SERVE)
    python = str(environment.path / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(environment.path)
    os.execve(python, [python, "-m", "batchcast.serving", str(spec.file.resolve()), *argv], env)
