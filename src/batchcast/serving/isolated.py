"""Starting the server: inside the model's isolated environment, or (``--inline``) in this one.

The environment is built as the local executor builds a Python-contract
run's: the model's requirements, batchcast's runtime pinned to this
process's versions, batchcast linked in, plus the server's own libraries.
The CLI then replaces itself with the server (``exec``), so the process
that got the signals (SIGTERM, SIGHUP) is the one serving.
"""

from __future__ import annotations

from importlib.util import find_spec

from batchcast.errors import MissingExtra
from batchcast.isolation.environments import SERVE, exec_module
from batchcast.model import pyfunc


def serve(service, host: str, port: int, ref: str | None, poll: float | None, workers: int | None, *,
          inline: bool = False) -> None:
    """``batchcast serve``: here with ``inline``, else in the model's environment (never returning)."""
    if not all(find_spec(name) for name in SERVE if name != "uvloop"):  # httptools: serving.protocol's parser
        raise MissingExtra("batchcast serve", "serve")  # the model's environment gets them from this one
    if inline:
        from batchcast.serving.server import run

        run(str(service.spec.file.resolve()), host, port, ref, poll, workers)
        return
    served = service.model_for(ref)  # no model to serve: say so now, not after building an environment
    options = (("model", ref), ("poll", poll), ("workers", workers))
    argv = ["--host", host, "--port", str(port)] + [f"--{k}={v}" for k, v in options if v]
    exec_module(service.spec, SERVE, "batchcast.serving", argv, pyfunc.requirements_for(service.spec, served))
