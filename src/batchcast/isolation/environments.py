"""The model's isolated environment: a uv virtualenv, built once per requirement set and cached.

The cache key is everything that decides what gets installed: the interpreter,
the requirements file's text, ``[model] overrides``, batchcast's runtime pins
(Python contract) and uv's version. A build is logged as it starts and ends,
since a first run waits for it; what it installed is kept beside it, for the
manifests of the runs that use it.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from batchcast.errors import ExecutorError
from batchcast.spec import ServiceSpec

log = logging.getLogger("batchcast")
# skops only loads models that earlier versions saved (new ones are joblib files); it is imported for those alone.
RUNTIME = ("pyarrow", "duckdb", "pydantic", "fsspec", "numpy", "pandas", "croniter", "joblib", "skops")
# batchcast serve's, added for it
SERVE = ("starlette", "uvicorn", "httptools", "uvloop", "prometheus_client", "orjson")
DONE = ".complete"  # written last, with what the build installed: a venv without it is rebuilt
SOURCE = Path(__file__).resolve().parents[1]  # the batchcast package a Python-contract environment links to


@dataclass
class Environment:
    """What a run records of the environment it ran in."""

    path: Path
    python: str
    overrides: list[str]
    packages: dict[str, str] = field(default_factory=dict)
    build_s: float = 0.0  # 0 when this run found it built
    executors: dict | None = None  # a cluster's executors' environment when it is not this one (spark)

    def record(self) -> dict:
        found = {"python": self.python, "overrides": self.overrides, "build_s": round(self.build_s, 3),
                 "packages": self.packages}
        return found if self.executors is None else {**found, "executors": self.executors}


def cache_dir() -> Path:
    return Path(os.environ.get("BATCHCAST_CACHE_DIR") or Path.home() / ".cache" / "batchcast")


def ensure_venv(spec: ServiceSpec, with_runtime: bool) -> Path:
    """The cached virtualenv for this spec's requirements, built once under a lock."""
    return ensure_environment(spec, with_runtime).path


def ensure_environment(spec: ServiceSpec, with_runtime: bool, extra: tuple[str, ...] = (),
                       drop: tuple[str, ...] = (), added: tuple[str, ...] = (),
                       requirements: str | None = None) -> Environment:
    """The cached environment.

    ``extra`` names more of the parent's packages to pin in it (``SERVE``);
    ``drop`` runtime packages left to the resolver (Beam pins its own
    pyarrow); ``added`` requirements go in as given (``apache-beam>=2.60``).
    ``requirements`` replaces the spec's file (an MLflow model brings its own), and
    where it names a runtime package its version wins: the environment is the model's.
    """
    names = RUNTIME + tuple(extra) + backend_packages(spec)
    if requirements is not None:
        drop = (*drop, *_named(requirements))
    pins = [p for p in runtime_pins(names) if _canonical(p.split("==")[0]) not in map(_canonical, drop)] \
        if with_runtime else []
    pins += list(added)
    file = spec.requirements_path if requirements is None else None
    if requirements is None:
        requirements = file.read_text() if file else ""
    python = interpreter(spec.model.python)
    overrides = list(spec.model.overrides)
    # The linked source is part of the key: an environment built by another checkout (a worktree since
    # deleted, an older clone) links to that checkout, and reusing it ran a batchcast that no longer exists.
    linked = [f"batchcast:{SOURCE}"] if with_runtime else []
    key = hashlib.sha256("\n".join([python, requirements, *pins, "overrides:", *overrides, *linked, _uv_version()])
                         .encode()).hexdigest()[:16]
    venv = cache_dir() / "venvs" / key
    build_s = 0.0
    if not (venv / DONE).exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(venv.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two runs needing the same venv build it once
            if not (venv / DONE).exists():
                started = time.monotonic()
                if file is None and requirements:  # given as text: a file beside the venv, for uv
                    file = venv.with_suffix(".requirements.txt")
                    file.write_text(requirements)
                _build(venv, python, file, pins, overrides, with_runtime)
                build_s = time.monotonic() - started
    packages = json.loads((venv / DONE).read_text() or "{}")
    return Environment(venv, python, overrides, packages, build_s)


def backend_packages(spec: ServiceSpec) -> tuple[str, ...]:
    """The libraries of the extras the spec's URLs need (``s3fs`` for s3://, the ADBC driver for postgresql://):
    the run in the environment reads its input, writes its files and publishes its rows there."""
    from packaging.requirements import Requirement

    from batchcast import registry
    from batchcast.runs.store import EXTRAS

    urls = [spec.storage_url, *(a.input.path for a in spec.actions.values() if a.input and a.input.path)]
    wanted = {registry.warehouse(spec.warehouse_url).extra} | {EXTRAS.get(registry.scheme_of(u), "") for u in urls}
    try:
        declared = [Requirement(r) for r in requires("batchcast") or []]
    except PackageNotFoundError:  # run from a source tree: nothing to learn the extras from
        return ()
    return tuple(r.name for r in declared if r.name != "batchcast" and r.marker is not None
                 and any(r.marker.evaluate({"extra": extra}) for extra in wanted - {""}))


def runtime_pins(names: tuple[str, ...] = RUNTIME) -> list[str]:
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def interpreter(requested: str | None) -> str:
    """The interpreter ``[model] python`` names: a path, or a version such as 3.12 found on this machine."""
    if not requested:
        return sys.executable
    if "/" in requested:
        if Path(requested).is_file() and os.access(requested, os.X_OK):
            return requested
        raise ExecutorError(f"[model] python = '{requested}': no executable interpreter at that path",
                            "give the path of a python executable, or a version such as 3.12")
    found = installed_interpreters()
    for found_version in sorted(found, key=_version_key, reverse=True):
        if found_version == requested or found_version.startswith(requested + "."):
            return found[found_version]
    raise ExecutorError(f"[model] python = '{requested}': no such interpreter on this machine "
                        f"(found: {', '.join(sorted(found, key=_version_key)) or 'none'})",
                        f"install it (e.g. 'pyenv install {requested}' or 'apt-get install python{requested}'), "
                        "or set [model] python to a version found, or to an interpreter's path")


def installed_interpreters() -> dict[str, str]:
    """Version -> executable, from pyenv's versions and the pythonX.Y programs on PATH.

    uv's own discovery trips on pyenv's shims (they fail for versions that are
    not the global one), so the shims are skipped and the versions read directly.
    """
    found = {}
    for path in sorted(glob.glob(os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv")) + "/versions/*")):
        executables = sorted(glob.glob(f"{path}/bin/python3.*[0-9]"))
        if executables and re.fullmatch(r"\d+\.\d+\.\d+", Path(path).name):
            found[Path(path).name] = executables[0]
    for minor in range(6, 20):
        program = shutil.which(f"python3.{minor}")
        if program and "/shims/" not in program and not any(v.startswith(f"3.{minor}.") for v in found):
            found[f"3.{minor}"] = program
    return found


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _named(requirements: str) -> list[str]:
    """The packages a requirements text names (comments, options and unreadable lines left out)."""
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for line in requirements.splitlines():
        try:
            names.append(Requirement(line.split("#")[0].strip()).name)
        except InvalidRequirement:
            continue
    return names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _build(venv: Path, python: str, requirements: Path | None, pins: list[str], overrides: list[str],
           link: bool) -> None:
    log.info("building the isolated environment for %s with Python %s (first run of these requirements; "
             "cached afterwards)", requirements or "batchcast's runtime", python)
    started = time.monotonic()
    shutil.rmtree(venv, ignore_errors=True)
    log.info("environment step 1/2: uv venv (Python %s)", python)
    _uv("venv", "--quiet", "--python", python, str(venv), requirements=requirements)
    args = ["pip", "install", "--quiet", "--compile-bytecode", "--python", str(venv / "bin" / "python")]
    if requirements:
        args += ["-r", str(requirements)]
    if overrides:  # uv's override semantics: each replaces whatever the requirements say of that package
        (venv / "overrides.txt").write_text("\n".join(overrides) + "\n")
        args += ["--override", str(venv / "overrides.txt")]
    if requirements or pins:
        log.info("environment step 2/2: uv pip install %s", " ".join(filter(None, [
            requirements and f"-r {requirements.name}", *pins, overrides and f"({len(overrides)} overrides)"])))
        _uv(*args, *pins, requirements=requirements, pins=pins)
    if link:
        _link_batchcast(venv)
    packages = _packages(venv)
    (venv / DONE).write_text(json.dumps(packages, sort_keys=True))
    log.info("built the isolated environment in %.1f s (%d packages)", time.monotonic() - started, len(packages))


def _packages(venv: Path) -> dict[str, str]:
    from uv import find_uv_bin

    result = subprocess.run([find_uv_bin(), "pip", "freeze", "--python", str(venv / "bin" / "python")],
                            capture_output=True, text=True)
    pairs = (line.split("==", 1) for line in result.stdout.splitlines() if "==" in line)
    return {name: pinned for name, pinned in pairs}


def _link_batchcast(venv: Path) -> None:
    # Only batchcast's own package, not the parent's whole site-packages.
    holder = venv / "batchcast-src"
    holder.mkdir(exist_ok=True)
    (holder / "batchcast").symlink_to(SOURCE, target_is_directory=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "batchcast-src.pth").write_text(str(holder) + "\n")


def _uv(*args: str, requirements: Path | None, pins: list[str] = ()) -> None:
    from uv import find_uv_bin

    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}  # never fetch an interpreter at run time
    result = subprocess.run([find_uv_bin(), *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        error = _install_error(args[0], result.stderr, requirements, pins)
        error.detail = result.stderr
        raise error


def _cause(stderr: str) -> str | None:
    """uv's ``cause:`` paragraph as one line: uv wraps it to the terminal's width (COLUMNS), even in a pipe."""
    found: list[str] = []
    for line in stderr.splitlines():
        text = line.strip()
        if found and (not text or text.startswith(("hint:", "error:"))):
            break
        if found or text.startswith("cause:"):
            found.append(text.removeprefix("cause:").strip())
    return " ".join(found) or None


def _install_error(step: str, stderr: str, requirements: Path | None, pins: list[str]) -> ExecutorError:
    """uv's conclusion, the file and the requirement it is about, and the fix that applies."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    conclusion = _cause(stderr) or next((line for line in lines if "we can conclude" in line),
                                        lines[-1] if lines else f"uv {step} failed")
    source = f"{requirements}" if requirements else "batchcast's runtime"
    culprit = re.search(r"you require ([A-Za-z0-9_.\-]+)", conclusion) or re.search(r"`([A-Za-z0-9_.\-]+)", stderr)
    package = re.split(r"[=<>!~\[ ]", culprit.group(1))[0] if culprit else "PACKAGE"
    fix = (f"keep the file as it is and override the pin in batchcast.toml: [model] overrides = "
           f"[\"{package}>=VERSION\"] (or batchcast adopt ... --override '{package}>=VERSION')")
    if pins and any(p.split("==")[0] == package for p in pins):
        fix += f"; {package} is also pinned by batchcast's runtime ({', '.join(pins)})"
    return ExecutorError(f"building the isolated environment failed: {source} cannot be installed: {conclusion}",
                         fix)


def _uv_version() -> str:
    try:
        return version("uv")
    except PackageNotFoundError:
        return ""


def exec_module(spec: ServiceSpec, extra: tuple[str, ...], module: str, argv: list[str],
                requirements: str | None = None) -> None:
    """Build (or reuse) the environment with ``extra`` and replace this process with ``python -m module``
    there (``serve``, ``stream``): the process that gets the signals is the one working. Never returns."""
    environment = ensure_environment(spec, True, extra, requirements=requirements)
    python = str(environment.path / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(environment.path)
    os.execve(python, [python, "-m", module, str(spec.file.resolve()), *argv], env)

