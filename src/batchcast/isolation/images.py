"""Container images: ``batchcast build`` and the engine (podman or docker) the container executor drives.

An image holds code and dependencies (batchcast, the model's requirements,
the model repository and its spec), never a trained model: a training run
is fetched from the artifact store when applied, so a new model needs no
new image. Wheels are downloaded on the host (with its package index
settings) and installed in the image with ``--no-index``, so the build
itself needs no network.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

from batchcast import registry
from batchcast.errors import ExecutorError, SpecError
from batchcast.scheduling import periods
from batchcast.spec import ServiceSpec

log = logging.getLogger("batchcast")

ENGINES = ("podman", "docker")
SERVICE_DIR = "/srv/service"
MODEL_DIR = "/srv/model"
# Every platform starts the image this way: arguments, when given, are batchcast's own
# (`docker run IMAGE run training --date D`); without them the run comes from the environment
# (ACTION, LOGICAL_DATE, RUN_TS, MODEL_RUN), as the executors' Jobs, CustomJobs and VMs set it.
# batchcast runs as the shell's child, not as the container's PID 1, which gets no signal it has no handler for
# (a pod's SIGTERM was ignored until the SIGKILL): the shell forwards SIGTERM, SIGINT and SIGHUP, and exits with
# batchcast's code, 143 when SIGTERM stopped it. Then, on a gce executor's VM, the VM deletes itself whatever the
# run's outcome.
ENTRYPOINT_SCRIPT = (
    'if [ $# -eq 0 ]; then '
    'if [ -z "$ACTION" ] || [ -z "$LOGICAL_DATE" ]; then '
    'echo "batchcast image: pass the command as arguments (run ACTION --date DATE), or set ACTION and '
    'LOGICAL_DATE" >&2; exit 2; fi; '
    'set -- run "$ACTION" --date "$LOGICAL_DATE" --executor inline '
    '${RUN_TS:+--run-ts "$RUN_TS"} ${MODEL_RUN:+--model "$MODEL_RUN"}; fi; '
    'batchcast "$@" & child=$!; '
    'for s in TERM INT HUP; do trap "got=1; kill -$s $child 2>/dev/null" $s; done; '
    # A trap interrupts the wait (which then returns 128 + the signal): wait again, until one ends with no trap.
    'got=1; while [ -n "$got" ]; do got=; wait $child; code=$?; done; '
    'if [ -n "$BATCHCAST_DELETE_VM" ]; then python -m batchcast.executors.gce; fi; exit $code')
# "batchcast" is the script's $0; what the platform appends becomes "$@".
ENTRYPOINT = ["/bin/sh", "-c", ENTRYPOINT_SCRIPT, "batchcast"]

DOCKERFILE = """\
# Written by batchcast build for {name}/{version}; the image holds code, not trained models.
# Two filesystem layers, dependencies then code; the wheels are bind-mounted, not copied into one.
FROM {base}
RUN --mount=type=bind,source=wheels,target=/tmp/wheels \\
    python3 -m venv /opt/batchcast \\
 && /opt/batchcast/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels {packages}
COPY srv /srv
ENV PATH=/opt/batchcast/bin:$PATH \\
    NAME={name} VERSION={version} \\
    BATCHCAST_SPEC={service_dir}/batchcast.toml \\
    BATCHCAST__MODEL__PATH={model_dir} \\
    BATCHCAST_IMAGE={tag}
WORKDIR {service_dir}
ENTRYPOINT {entrypoint}
"""


@dataclass
class Built:
    tag: str
    image_id: str
    dockerfile: Path


def engine_command(name: str | None = None) -> list[str]:
    """The engine's argv prefix: ``--engine``, else podman, else docker, plus BATCHCAST_CONTAINER_ARGS."""
    candidates = [name] if name else list(ENGINES)
    for candidate in candidates:
        if candidate not in ENGINES:
            raise SpecError(f"unknown container engine '{candidate}'", f"use one of {', '.join(ENGINES)}")
        found = shutil.which(candidate)
        if found:
            return [found, *shlex.split(os.environ.get("BATCHCAST_CONTAINER_ARGS", ""))]
    raise ExecutorError(f"no container engine found (looked for {', '.join(candidates)})",
                        "install podman (apt-get install podman) or docker, or pass --engine")


def engine_run(engine: list[str], *args: str, timeout: float | None = None, check: bool = True,
               env: dict | None = None,
               fix: str = "read the engine's message; 'batchcast build' must have built the image") -> str:
    """Run one engine command; ExecutorError with its last lines if it fails."""
    try:
        result = subprocess.run([*engine, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ExecutorError(f"'{Path(engine[0]).name} {args[0]}' did not answer within {timeout:g} s",
                            "check the container engine") from None
    if check and result.returncode != 0:
        last = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise ExecutorError(f"{Path(engine[0]).name} {args[0]} failed: {last}", fix)
    return result.stdout.strip()


def image_extras(spec: ServiceSpec) -> str:
    """The image's batchcast extras: ``[image] extras``, serve (every image can run ``batchcast serve``), and
    with a ``[stream]`` table the clients of the brokers its URLs name, so the image can run ``batchcast stream``."""
    urls = spec.stream.urls if spec.stream is not None else ()
    brokers = {registry.BROKERS[registry.scheme_of(url)].extra for url in urls}
    return f"[{','.join(sorted({*spec.image.extras, 'serve', *brokers}))}]"


def dockerfile(spec: ServiceSpec) -> str:
    extras = image_extras(spec)
    packages = [f"'batchcast{extras}'"] + (["-r", "/tmp/wheels/requirements.txt"] if spec.requirements_path else [])
    s = spec.service
    return DOCKERFILE.format(name=s.name, version=s.version, base=spec.image.base, packages=" ".join(packages),
                             model_dir=MODEL_DIR, service_dir=SERVICE_DIR, tag=spec.image_tag,
                             entrypoint=json.dumps(ENTRYPOINT))


def build(spec: ServiceSpec, engine: list[str], *, push: bool = False, context: Path | None = None) -> Built:
    """Write the build context and Dockerfile, build the image, tag it, and push it if asked."""
    spec.check_files()
    ctx = context or Path(tempfile.mkdtemp(prefix="batchcast-build-"))
    try:
        _context(spec, ctx)
        # podman 4 pulls the base even when it is stored; docker's --pull is a flag, not a policy.
        pull = ["--pull=missing"] if Path(engine[0]).name == "podman" else []
        _build_telling_steps([*engine, "build", *pull, "--network=none", "--ulimit", "nofile=4096:4096",
                              "-t", spec.image_tag, "-f", str(ctx / "Dockerfile"), str(ctx)], timeout=3600,
                             fix="read the engine's message (on 'no space left on device', remove unused images: "
                                 f"{Path(engine[0]).name} image prune)")
        image_id = engine_run(engine, "image", "inspect", "--format", "{{.Id}}", spec.image_tag)
        if push:
            engine_run(engine, "push", spec.image_tag, timeout=3600)
        kept = Path(spec.root) / ".batchcast" / "Dockerfile"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ctx / "Dockerfile", kept)
        return Built(spec.image_tag, image_id, kept)
    finally:
        if context is None:
            shutil.rmtree(ctx, ignore_errors=True)


STEP = re.compile(r"(STEP \d+/\d+|Step \d+/\d+|#\d+ \[)")  # podman's, docker's classic and buildkit's steps


def _build_telling_steps(argv: list[str], timeout: float, fix: str) -> None:
    """Run an image build, logging each step line as the engine prints it (a long build is not silent);
    ExecutorError with its last lines if it fails or outlives ``timeout``."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    last: collections.deque[str] = collections.deque(maxlen=3)
    try:
        for line in proc.stdout:
            last.append(line.rstrip())
            if STEP.match(line):
                log.info("image build: %s", line.rstrip())
        code = proc.wait()
    finally:
        timer.cancel()
    if code == -signal.SIGKILL:
        raise ExecutorError(f"'{Path(argv[0]).name} build' did not finish within {timeout:g} s",
                            "check the container engine")
    if code != 0:
        raise ExecutorError(f"{Path(argv[0]).name} build failed: {' | '.join(last)}", fix)


def run_env(spec: ServiceSpec, request, executor: str) -> dict[str, str]:
    """What the image's entry point reads: the run to make, and where the store and warehouse are."""
    return {"BATCHCAST_EXECUTOR": executor, "NAME": request.name, "VERSION": request.version,
            "ACTION": request.action, "LOGICAL_DATE": periods.key(request.logical_date), "RUN_TS": request.run_ts,
            "MODEL_RUN": request.model_run or "", "BATCHCAST__STORAGE__URL": spec.storage_url,
            "BATCHCAST__WAREHOUSE__URL": spec.warehouse_url}


def label_value(text: str) -> str:
    """``text`` as a cloud label value or resource name part: lower-case letters, digits and '-'."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


def registry_host(tag: str) -> str | None:
    """The registry an image name pulls from (``europe-docker.pkg.dev``), or None for Docker Hub's short names."""
    first, slash, _ = tag.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else None


def identity(engine: list[str], tag: str) -> tuple[str, str]:
    """The image's digest (of its manifest, what a registry names it by) and its local id."""
    found = engine_run(engine, "image", "inspect", "--format", "{{.Digest}}|{{.Id}}", tag)
    digest, _, image_id = found.partition("|")
    return digest, image_id


def _context(spec: ServiceSpec, ctx: Path) -> None:
    ignore = shutil.ignore_patterns(*spec.image.exclude)
    # The context mirrors the image's /srv, so that code is one COPY.
    shutil.copytree(spec.model_path, ctx / MODEL_DIR.lstrip("/"), ignore=ignore)
    (ctx / SERVICE_DIR.lstrip("/")).mkdir(parents=True)
    shutil.copy(spec.file, ctx / SERVICE_DIR.lstrip("/") / "batchcast.toml")
    wheels = ctx / "wheels"
    wheels.mkdir()
    _batchcast_wheel(wheels)
    extras = image_extras(spec)
    args = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
            *(f"{whl}{extras}" for whl in wheels.glob("batchcast-*.whl"))]
    if spec.requirements_path:
        shutil.copy(spec.requirements_path, wheels / "requirements.txt")
        args += ["-r", str(wheels / "requirements.txt")]
    _pip(args, "download the image's packages")
    (ctx / "Dockerfile").write_text(dockerfile(spec))


def _batchcast_wheel(dest: Path) -> None:
    """A wheel of the running batchcast: built from its source checkout, or downloaded at its version."""
    dist = distribution("batchcast")
    direct = dist.read_text("direct_url.json")
    source = json.loads(direct)["url"].removeprefix("file://") if direct else None
    if source and Path(source, "pyproject.toml").exists():
        _pip([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), source],
             "build batchcast's wheel")
    else:
        _pip([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(dest),
              f"batchcast=={dist.version}"], "download batchcast")


def _pip(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        last = " | ".join(line for line in result.stderr.strip().splitlines() if "WARNING" not in line)[-600:]
        raise ExecutorError(f"could not {what}: {last}", "check the package index settings (pip config list)")
