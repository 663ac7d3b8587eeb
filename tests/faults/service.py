"""A Python-contract service whose model can be held mid-run, for interrupt and kill trials.

While the file named by ``$HOLD`` exists, the model's ``predict`` (and ``fit``)
touches ``$HOLD.started`` and waits: a test knows the run is in the middle of
its work, kills or interrupts it there, then removes the file so that a run
which survived its kill would go on to finish and commit, where we see it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import BATCHCAST, PY_MODEL, bc, bc_json, query, write_python_service

HOLDING = '''
def _hold():
    import pathlib, time
    hold = os.environ.get("HOLD")
    if hold:
        pathlib.Path(hold + ".started").touch()
        while pathlib.Path(hold).exists():
            time.sleep(0.05)
'''


def held_service(root: Path, rows: int = 3_000) -> Path:
    """The service with a model that waits while ``$HOLD`` exists; trained once (inline)."""
    spec = write_python_service(root, rows=rows)
    model = root / "repo" / "model.py"
    model.write_text(PY_MODEL.replace("class Model:", HOLDING + "\n\nclass Model:")
                     .replace("    def predict(self, X):\n", "    def predict(self, X):\n        _hold()\n")
                     .replace("    def fit(self, X, y):\n", "    def fit(self, X, y):\n        _hold()\n"))
    bc("run", "training", cwd=root)
    return spec


def start_held(root: Path, hold: Path, *args: str) -> subprocess.Popen:
    """Start ``batchcast ARGS`` in a process group of its own, and wait until its model holds."""
    hold.touch()
    started = Path(f"{hold}.started")
    started.unlink(missing_ok=True)
    proc = subprocess.Popen([BATCHCAST, *args], cwd=root, env={**os.environ, "HOLD": str(hold)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180  # a local executor may build its venv first
    while not started.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate(timeout=5) if proc.poll() is not None else ("", "")
            hold.unlink(missing_ok=True)
            proc.kill()
            raise AssertionError(f"the run never reached the model: exit {proc.returncode}\n{out}\n{err}")
        time.sleep(0.05)
    return proc


def stop_held(proc: subprocess.Popen, hold: Path, sig: int) -> tuple[str, str]:
    """Send ``sig`` to a held run; if the model's call still holds after 5 s, let it return, as a real one does.

    An inline run calls the model on the publish's producer thread, and the
    publish waits for that call before it commits the run cancelled: the
    interrupt takes effect when the model's current call returns.
    """
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        hold.unlink()
        return proc.communicate(timeout=60)


def kill_group(proc: subprocess.Popen) -> None:
    """What ``kill -9 -PGID`` does to a ``batchcast run`` started from a shell."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def holders(hold: Path) -> list[int]:
    """Processes still holding (their environment names ``hold``): a survivor of a kill."""
    return holders_of("HOLD", str(hold))


def holders_of(name: str, value: str) -> list[int]:
    """Every process whose environment has ``name=value`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"{name}={value}\0".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def statuses(root: Path, action: str) -> list[str]:
    return [r["status"] for r in bc_json("runs", "--action", action, cwd=root) if r.get("source") != "ledger"]


def rows_for(root: Path, day: str) -> int:
    db = root / ".batchcast" / "warehouse.duckdb"
    if not query(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'")[0][0]:
        return 0
    return query(db, f"SELECT count(*) FROM scores WHERE _logical_date = DATE '{day}'")[0][0]
