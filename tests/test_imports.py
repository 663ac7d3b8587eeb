"""Importing batchcast stays light: the command starts without the data plane or any backend."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import batchcast
from batchcast.cli import main
from tests.conftest import bc, write_python_service

# Loaded only by the commands (or the backends) that need them, never by `import batchcast`.
HEAVY = ["duckdb", "adbc_driver_manager", "adbc_driver_postgresql", "google", "google.cloud", "kubernetes",
         "boto3", "botocore", "s3fs", "gcsfs", "apache_beam", "pyarrow", "pandas", "numpy", "rich", "fsspec",
         "pydantic", "mlflow"]
BACKENDS = ["batchcast.warehouses.", "batchcast.executors.", "batchcast.testing"]  # testing: the contract suites


def loaded_by(code: str) -> list[str]:
    """The modules that running ``code`` in a fresh interpreter adds to those its startup loaded.

    Startup is left out: a namespace package's .pth file (google-cloud-aiplatform's)
    puts google and google.cloud in sys.modules before any import.
    """
    script = (f"import json, sys\nbefore = set(sys.modules)\n{code}\n"
              "print(json.dumps(sorted(set(sys.modules) - before)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_import_loads_no_backend_nor_data_plane():
    loaded = loaded_by("import batchcast, batchcast.cli")
    heavy = sorted({h for h in HEAVY for m in loaded if m == h or m.startswith(f"{h}.")}
                   | {m for m in loaded if m.startswith(tuple(BACKENDS))})
    assert heavy == [], f"import batchcast, batchcast.cli loaded {', '.join(heavy)}"
    assert "batchcast.cli" in loaded and "click" in loaded  # the check above looked at the right process


def test_public_names_resolve_on_first_use():
    from batchcast.errors import BatchcastError
    from batchcast.service import Service

    assert batchcast.Service is Service and batchcast.BatchcastError is BatchcastError
    for name in batchcast.__all__:
        assert getattr(batchcast, name) is not None, name
    assert set(batchcast.__all__) <= set(dir(batchcast))
    assert "numpy" not in dir(batchcast)
    with pytest.raises(AttributeError, match="has no attribute 'numpy'"):
        _ = batchcast.numpy


def test_help_from_a_fresh_process(tmp_path):
    result = bc("--help", cwd=tmp_path)
    assert result.stdout.startswith("Usage: batchcast [OPTIONS] COMMAND [ARGS]...")
    listed = [line.split()[0] for line in result.stdout.split("Commands:\n")[1].splitlines()]
    assert listed == sorted(main.commands)


def test_subcommands_of_groups_have_help():
    # tests/cli/test_commands.py checks every top-level command; this checks the ones below them.
    nested = [(name, sub, command) for name, group in main.commands.items() if isinstance(group, click.Group)
              for sub, command in group.commands.items()]
    assert nested, "no command group found"
    for name, sub, command in nested:
        assert command.help and len(command.help) > 10, f"{name} {sub}"
        result = CliRunner().invoke(main, [name, sub, "--help"])
        assert result.exit_code == 0 and f"Usage: main {name} {sub}" in result.output, result.output


def test_spinner_on_a_terminal_only():
    script = ("import time\nfrom batchcast.cli.output import status\n"
              "with status('working on it...'):\n    time.sleep(0.5)\nprint('done')")
    env = {**os.environ, "TERM": "xterm"}
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert piped.stdout == "done\n"

    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-c", script], stdout=follower, stderr=follower, env=env) as process:
        os.close(follower)
        output = b""
        while chunk := _read(leader):
            output += chunk
    os.close(leader)
    assert process.returncode == 0 and b"working on it..." in output and b"done" in output, output


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the process closed the terminal
        return b""


def _heavy_in(loaded: list[str], names: list[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(f"{n}.") for n in names))


def test_a_spec_loads_without_arrow_or_the_renderers(tmp_path):
    """The local executor's parent and the scheduler parse specs and never touch data."""
    write_python_service(tmp_path, rows=50)
    loaded = loaded_by(f"from batchcast.service import Service; Service({str(tmp_path / 'batchcast.toml')!r})")
    assert "batchcast.spec.service" in loaded  # the right process
    assert _heavy_in(loaded, ["pyarrow", "pandas", "batchcast.airflow.dags", "batchcast.airflow.graphs"]) == []


def test_an_application_imports_only_what_it_uses(tmp_path):
    """No training module, input checks or Arrow datasets in a plain application run; no skops ever."""
    write_python_service(tmp_path, rows=50)
    bc("run", "training", cwd=tmp_path)
    loaded = loaded_by(f"from batchcast import Service\n"
                       f"m = Service({str(tmp_path / 'batchcast.toml')!r}).run('application', '2026-01-01')\n"
                       f"assert m.succeeded, m.error")
    assert "batchcast.actions.application" in loaded and "sklearn" in loaded  # it ran the model
    unused = ["batchcast.actions.training", "batchcast.data.profiles", "pyarrow.dataset", "skops"]
    assert _heavy_in(loaded, unused) == []
