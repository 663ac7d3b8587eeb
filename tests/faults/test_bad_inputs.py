"""Bad input gets one clear line and loses nothing: every case of the catalogue, through the CLI."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import bc, write_python_service
from tests.faults.catalogue import CASES, SECRET, Case

PREDICTIONS_HOOK = '''        labels = model.predict(X)
        bad = os.environ.get("PREDICTIONS_FILE")
        if bad:  # the fault campaign's predictions, exactly as given
            import shutil
            shutil.copyfile(bad, self.output / "predictions.csv")
            return
'''


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """A trained, promoted and applied service of each contract, copied for every case."""
    root = tmp_path_factory.mktemp("bases")
    python = root / "python"
    write_python_service(python, rows=600)
    bc("init", "command", "--name", "churn", cwd=root)
    command = root / "command"
    task = command / "prediction" / "task.py"
    task.write_text(task.read_text().replace("        labels = model.predict(X)\n", PREDICTIONS_HOOK))
    spec = command / "batchcast.toml"
    spec.write_text(spec.read_text().replace('executor = "local"', 'executor = "inline"'))
    for service in (python, command):
        bc("run", "training", cwd=service)
        bc("promote", "latest", cwd=service)
        bc("run", "application", "--date", "2026-01-01", cwd=service)
    return {"python": python, "command": command}


def snapshot(root: Path) -> dict[str, str]:
    """What must not change: every stored file, the champion, and the predictions table's rows."""
    found = {}
    for path in sorted((root / ".batchcast" / "artifacts").rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    db = root / ".batchcast" / "warehouse.duckdb"
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:  # the case broke the warehouse file itself: its bytes must stay as they are
        found["warehouse"] = hashlib.sha256(db.read_bytes()).hexdigest() if db.is_file() else "folder"
        return found
    try:
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for table in tables & {"scores", "predictions"}:
            rows = con.sql(f"SELECT * FROM {table} ORDER BY ALL").to_arrow_table().to_pylist()
            found[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    finally:
        con.close()
    return found


def failed_runs_added(before: dict, after: dict) -> bool:
    """Files a case may add: a failed run's own folder (its manifest and log), nothing else."""
    added = {k.rsplit("/", 1)[0] for k in after.keys() - before.keys()}
    return all(any(k.startswith(folder + "/") for k in after) for folder in added)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, bases, tmp_path):
    root = tmp_path / "svc"
    shutil.copytree(bases[case.base], root, symlinks=True)
    case.mutate(root)
    env = dict(case.env)
    if (root / "bad-predictions.csv").exists():
        env["PREDICTIONS_FILE"] = str(root / "bad-predictions.csv")
    before = snapshot(root)
    out = bc(*case.argv, cwd=root, env=env, ok=False)
    assert out.returncode == 1, out
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    fixes = [line for line in out.stderr.splitlines() if line.startswith("fix: ")]
    assert len(fixes) == 1, out.stderr
    assert all(word in errors[0] + fixes[0] for word in case.says), out.stderr
    assert SECRET not in out.stdout + out.stderr
    after = snapshot(root)
    kept = {k: v for k, v in after.items() if k in before}
    assert kept == before, "the case changed the table, a stored file or the champion"
    assert failed_runs_added(before, after)


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)
