"""Real servers for the tests, started on 127.0.0.1 and stopped afterwards.

Each starter returns a URL or raises ``Unavailable`` with the reason, and the
fixtures turn that into a loud skip (a failure under BATCHCAST_REQUIRE_ALL=1).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


class Unavailable(Exception):
    """The service cannot run on this machine; the message says why and how to install it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"the server exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise Unavailable(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


@contextmanager
def postgres():
    """A throwaway PostgreSQL cluster; yields its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise Unavailable("PostgreSQL server binaries not found: apt-get install -y postgresql")
    bindir = Path(found[-1]).parent
    # Not under pytest's tmp: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="batchcast-pg-"))
    data, sock = base / "pgdata", base / "pgsock"
    sock.mkdir(parents=True)
    as_user = _drop_root(base)
    _run(*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--no-locale")
    port = free_port()
    options = f"-k {sock} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"
    _run(*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "pg.log"), "-o", options, "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise Unavailable(f"{Path(argv[-1] if argv[-1] != 'start' else argv[-9]).name}: "
                          f"{(result.stderr or result.stdout).strip()[-500:]}")


def _drop_root(base: Path) -> list[str]:
    # initdb refuses to run as root: hand the folder to the postgres user.
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no 'postgres' user: apt-get install -y postgresql") from None
    for path in [base, *base.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@contextmanager
def moto_s3(base: Path):
    """moto in server mode, in its own process; yields its endpoint URL."""
    yield from _server(base, "moto_server", "pip install 'moto[server]'", ["-H", "127.0.0.1", "-p", "{port}"])


@contextmanager
def gcs_emulator(base: Path):
    """gcp-storage-emulator in memory; yields its endpoint URL."""
    yield from _server(base, "gcp-storage-emulator", "pip install gcp-storage-emulator",
                       ["start", "--host", "127.0.0.1", "--port", "{port}", "--in-memory"])


def _server(base: Path, program: str, install: str, args: list[str]):
    binary = shutil.which(program) or str(Path(sys.executable).parent / program)
    if not Path(binary).exists():
        raise Unavailable(f"{program} is not installed: {install}")
    port = free_port()
    with open(base / f"{program}.log", "wb") as log:
        proc = subprocess.Popen([binary, *(a.format(port=port) for a in args)], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


BQ_VENV = Path(__file__).resolve().parents[1] / ".venv-bq"


@contextmanager
def bigquery_emulator(base: Path, project: str = "test"):
    """local-bigquery (its own Python 3.13 venv, built by `make test`); yields its endpoint URL."""
    binary = BQ_VENV / "bin" / "local-bigquery"
    if not binary.exists():
        raise Unavailable(f"{binary} is missing: run 'make bigquery-emulator' (needs Python 3.13)")
    args = ["serve", "--host", "127.0.0.1", "--port", "{port}", "--grpc-port", str(free_port()),
            "--project", project, "--data-dir", str(base / "bq")]
    (base / "bq").mkdir(exist_ok=True)
    yield from _server(base, str(binary), "make bigquery-emulator", args)
