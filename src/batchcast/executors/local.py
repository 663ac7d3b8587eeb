"""A subprocess in an isolated virtualenv, built with uv and cached by a hash of its requirements.

Command contract: the model's command runs in a virtualenv holding only the
model's requirements, while batchcast does the I/O from its own process.
Python contract: batchcast's worker and the model share the child process,
so its virtualenv holds the model's requirements plus batchcast's runtime
libraries pinned to the versions of the parent, and batchcast's own package
linked in.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from batchcast import process
from batchcast.actions import PythonEnv, execute
from batchcast.commit import ensure_committed, now
from batchcast.errors import Cancelled, ExecutorError, RunTimeout
from batchcast.executors.base import Executor
from batchcast.runs import Manifest, RunRequest, RunStatus
from batchcast.spec import ServiceSpec

RUNTIME = ("pyarrow", "duckdb", "pydantic", "fsspec", "numpy", "pandas", "croniter", "joblib", "skops")


class LocalExecutor(Executor):
    name = "local"

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        with_runtime = spec.model.contract == "python"
        venv = ensure_venv(spec, with_runtime)
        if not with_runtime:
            return execute(request, PythonEnv(venv / "bin", venv))
        return self._child(request, spec, venv)

    def _child(self, request: RunRequest, spec: ServiceSpec, venv: Path) -> Manifest:
        log_path = Path(request.log_path)
        request_file = log_path.with_name("request.json")
        request_file.write_text(request.model_dump_json())
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["VIRTUAL_ENV"] = str(venv)
        started = now()
        argv = [str(venv / "bin" / "python"), "-m", "batchcast.worker", str(request_file)]
        try:
            code = process.run(argv, cwd=spec.root, env=env, log_path=log_path,
                               timeout=spec.action(request.action).timeout)
        except RunTimeout as exc:
            return ensure_committed(spec, request, RunStatus.TIMED_OUT, started, exc)
        except KeyboardInterrupt:  # the worker is killed already; record why it stopped
            ensure_committed(spec, request, RunStatus.CANCELLED, started, Cancelled())
            raise
        error = ExecutorError(f"the worker exited with code {code} before committing its run; "
                              f"last log lines: {process.tail(log_path)}",
                              "read the run's log; a crash here is a batchcast bug or an out-of-memory kill")
        return ensure_committed(spec, request, RunStatus.FAILED, started, error)


def cache_dir() -> Path:
    return Path(os.environ.get("BATCHCAST_CACHE_DIR") or Path.home() / ".cache" / "batchcast")


def ensure_venv(spec: ServiceSpec, with_runtime: bool) -> Path:
    """The cached virtualenv for this spec's requirements, built once under a lock."""
    requirements = spec.requirements_path.read_text() if spec.requirements_path else ""
    pins = runtime_pins() if with_runtime else []
    python = spec.model.python or sys.executable
    key = hashlib.sha256("\n".join([python, requirements, *pins, _uv_version()]).encode()).hexdigest()[:16]
    venv = cache_dir() / "venvs" / key
    if (venv / ".complete").exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs needing the same venv build it once
        if not (venv / ".complete").exists():
            _build(venv, python, spec.requirements_path, pins, with_runtime)
    return venv


def runtime_pins() -> list[str]:
    pins = []
    for name in RUNTIME:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def _build(venv: Path, python: str, requirements: Path | None, pins: list[str], link: bool) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    _uv("venv", "--quiet", "--python", python, str(venv))
    args = ["pip", "install", "--quiet", "--compile-bytecode", "--python", str(venv / "bin" / "python")]
    if requirements:
        args += ["-r", str(requirements)]
    if requirements or pins:
        _uv(*args, *pins, fix="align the model's requirements with batchcast's runtime "
                              f"({', '.join(pins) or 'none'}), then run again")
    if link:
        _link_batchcast(venv)
    (venv / ".complete").touch()


def _link_batchcast(venv: Path) -> None:
    # Only batchcast's own package, not the parent's whole site-packages.
    source = Path(__file__).resolve().parents[1]  # the batchcast package
    holder = venv / "batchcast-src"
    holder.mkdir(exist_ok=True)
    (holder / "batchcast").symlink_to(source, target_is_directory=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "batchcast-src.pth").write_text(str(holder) + "\n")


def _uv(*args: str, fix: str = "check that uv is installed and the package index is reachable") -> None:
    from uv import find_uv_bin

    result = subprocess.run([find_uv_bin(), *args], capture_output=True, text=True)
    if result.returncode != 0:
        last = " | ".join(result.stderr.strip().splitlines()[-4:])
        raise ExecutorError(f"building the isolated environment failed: uv {args[0]}: {last}", fix)


def _uv_version() -> str:
    try:
        return version("uv")
    except PackageNotFoundError:
        return ""
