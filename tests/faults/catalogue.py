"""The bad-input catalogue: each case breaks one thing a user can get wrong, and says what must follow.

A case is (id, base service, mutation, command, words the message must hold).
The mutation edits a copy of a trained, promoted and applied service; the
command must exit 1 with one ``error:`` line holding the words and a ``fix:``
line, no traceback, and leave the table, the stored artifacts and the
champion exactly as they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

APPLY = ("run", "application", "--date", "2026-01-01")


@dataclass
class Case:
    id: str
    base: str  # "python" or "command"
    mutate: Callable[[Path], None]
    says: tuple[str, ...]
    argv: tuple[str, ...] = APPLY
    env: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.id


def spec_sub(old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    """Replace ``old`` (a regular expression) in batchcast.toml; the case fails loudly if it is not there."""
    def mutate(root: Path) -> None:
        spec = root / "batchcast.toml"
        text, n = re.subn(old, new, spec.read_text(), count=count)
        assert n, f"{old!r} not in {spec}"
        spec.write_text(text)
    return mutate


def append(text: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        spec = root / "batchcast.toml"
        spec.write_text(spec.read_text() + "\n" + text + "\n")
    return mutate


def write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return mutate


def nothing(root: Path) -> None:
    pass


def predictions(csv_text: str, schema: str | None = None) -> Callable[[Path], None]:
    """The command-contract model writes exactly this predictions file (see PREDICTIONS_FILE in the base)."""
    def mutate(root: Path) -> None:
        (root / "bad-predictions.csv").write_text(csv_text)
        if schema:
            spec_sub(r'schema = "player_id:STRING,label:BOOL"', f'schema = "{schema}"')(root)
    return mutate


def model_files(root: Path) -> list[Path]:
    runs = root / ".batchcast" / "artifacts"
    champion = json.loads(next(runs.rglob("_aliases/champion.json")).read_text())["run_id"]
    return [p for p in (runs / champion / "output").iterdir() if p.is_file()]


def tamper_model(root: Path) -> None:
    path = model_files(root)[0]
    path.write_bytes(path.read_bytes() + b"\0")


def delete_model(root: Path) -> None:
    for path in model_files(root):
        path.unlink()


def edit_champion_manifest(root: Path) -> None:
    path = model_files(root)[0].parents[1] / "manifest.json"
    doc = json.loads(path.read_text())
    doc["metrics"] = {"accuracy": 1.0}
    path.write_text(json.dumps(doc))


def alias_to(run_id: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = next((root / ".batchcast" / "artifacts").rglob("_aliases/champion.json"))
        doc = json.loads(path.read_text())
        doc["run_id"] = run_id
        path.write_text(json.dumps(doc))
    return mutate


def replace_warehouse(how: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        db = root / ".batchcast" / "warehouse.duckdb"
        db.unlink()
        if how == "folder":
            db.mkdir()
        else:
            db.write_bytes(b"this is not a database" * 512)
    return mutate


PY, CMD = "python", "command"
SECRET = "s3cr3t-Pa55"

CASES = [
    # -- the spec ----------------------------------------------------------------
    Case("toml-syntax", PY, write("batchcast.toml", "[service\nname = 'x'\n"), ("batchcast.toml",)),
    Case("unknown-section", PY, append("[servce]\nname = 'x'"), ("servce",)),
    Case("misspelled-key", PY, spec_sub(r'\[actions.application\]\n', '[actions.application]\nexector = "local"\n'),
         ("exector", "executor")),
    Case("unknown-executor", PY, spec_sub(r'executor = "inline"', 'executor = "lokal"', count=0), ("lokal",)),
    Case("executor-option", PY, nothing, ("bogus",), argv=(*APPLY, "--executor", "bogus")),
    Case("service-name-slash", PY, spec_sub(r'name = "scores"', 'name = "a/b"'), ("a/b",)),
    Case("service-version-empty", PY, spec_sub(r'version = "2"', 'version = ""'), ("version",)),
    Case("table-injection", PY, spec_sub(r'table = "scores"', 'table = "scores; DROP TABLE scores"'),
         ("scores; DROP TABLE scores",)),
    Case("table-quote", PY, spec_sub(r'table = "scores"', 'table = "sc\\"ores"'), ('sc"ores',)),
    Case("schema-unknown-type", PY, spec_sub(r"label:BOOL", "label:BOOLEAN2"), ("BOOLEAN2",)),
    Case("schema-duplicate", PY, spec_sub(r"label:BOOL", "label:BOOL,label:BOOL"), ("label", "twice")),
    Case("schema-bad-name", PY, spec_sub(r"label:BOOL", "la bel:BOOL"), ("la bel",)),
    Case("schema-empty", PY, spec_sub(r'schema = "player_id:STRING,label:BOOL"', 'schema = ""'), ("schema",)),
    Case("schema-extra-column", PY, spec_sub(r"label:BOOL", "label:BOOL,extra:STRING"), ("extra",)),
    Case("schema-type-change", PY, spec_sub(r"label:BOOL", "label:DATE"), ("label",)),
    Case("input-missing-table", PY, spec_sub(r"SELECT \* EXCLUDE \(churned\) FROM features", "SELECT * FROM nope"),
         ("nope",)),
    Case("input-missing-feature", PY,
         spec_sub(r"SELECT \* EXCLUDE \(churned\) FROM features", "SELECT player_id, day, f1 FROM features"),
         ("f2",)),
    Case("input-glob-matches-nothing", PY,
         spec_sub(r'input = \{ query = "SELECT \* EXCLUDE \(churned\) FROM features" \}',
                  'input = { path = "data/day={{ ds }}/*.parquet" }'), ("data/day=2026-01-01",)),
    Case("input-not-parquet", PY,
         lambda root: (write("data/x.parquet", b"garbage")(root),
                       spec_sub(r'input = \{ query = "SELECT \* EXCLUDE \(churned\) FROM features" \}',
                                'input = { path = "data/*.parquet" }')(root)), ("x.parquet",)),
    Case("config-missing", PY, spec_sub(r'config = "configs/training.json"', 'config = "configs/nope.json"'),
         ("configs/nope.json",), argv=("run", "training")),
    Case("config-not-json", PY, write("repo/configs/training.json", "{not json"), ("training.json",),
         argv=("run", "training")),
    Case("date-not-a-date", PY, nothing, ("2026-13-01",), argv=("run", "application", "--date", "2026-13-01")),
    Case("date-word", PY, nothing, ("yesterday",), argv=("run", "application", "--date", "yesterday")),
    Case("batch-size-zero", PY, spec_sub(r'\[actions.application\]\n', '[actions.application]\nbatch_size = 0\n'),
         ("batch_size",)),
    Case("timeout-negative", PY, spec_sub(r'\[actions.application\]\n', '[actions.application]\ntimeout = -5\n'),
         ("timeout",)),
    Case("bad-cron", PY, spec_sub(r'\[actions.application\]\n', '[actions.application]\nschedule = "61 * * * *"\n'),
         ("61 * * * *",), argv=("validate",)),
    Case("env-override-bad", PY, nothing, ("batch_size",),
         env={"BATCHCAST__ACTIONS__APPLICATION__BATCH_SIZE": "-1"}),
    # -- models, artifacts, aliases --------------------------------------------------
    Case("model-ref-unknown", PY, nothing, ("nosuchrun",), argv=(*APPLY, "--model", "nosuchrun")),
    Case("promote-unknown", PY, nothing, ("nosuchrun",), argv=("promote", "nosuchrun")),
    Case("model-file-tampered", PY, tamper_model, ("differs from the manifest",)),
    Case("model-file-deleted", PY, delete_model, ("missing from the store",)),
    Case("manifest-edited", PY, edit_champion_manifest, ("does not match its seal",)),
    Case("alias-to-missing-run", PY, alias_to("scores/2/training/20200101T000000000000Z"),
         ("20200101T000000000000Z",)),
    Case("alias-traversal", PY, alias_to("../../../../etc/passwd"), ("etc/passwd",)),
    # -- warehouses and URLs -------------------------------------------------------
    Case("warehouse-unknown-scheme", PY, append('[warehouse]\nurl = "oracle://db/x"'), ("oracle://",)),
    Case("warehouse-password-in-user", PY, append(f'[warehouse]\nurl = "postgresql://u:{SECRET}@127.0.0.1:1/db"'),
         ("password",)),
    Case("warehouse-password-in-query", PY,
         append(f'[warehouse]\nurl = "postgresql://u@127.0.0.1:1/db?password={SECRET}"'), ("password",)),
    Case("warehouse-bad-setting", PY, append('[warehouse]\nurl = "duckdb:///.batchcast/warehouse.duckdb?nope=1"'),
         ("nope",)),
    # Issue 26.17: the fix said "correct the query": a warehouse that cannot open is not the query's fault.
    Case("warehouse-is-a-folder", PY, replace_warehouse("folder"), ("it is a folder", "point [warehouse] url")),
    Case("warehouse-corrupt", PY, replace_warehouse("corrupt"), ("not a DuckDB database", "from a backup")),
    Case("storage-unknown-protocol", PY, append('[storage]\nurl = "nope://bucket/x"'), ("nope",)),
    # -- the command contract's predictions files ----------------------------------------
    Case("predictions-header-only", CMD, predictions("player_id,label\n"), ("no rows",)),
    Case("predictions-missing-column", CMD, predictions("player_id\np1\n"), ("label",)),
    Case("predictions-extra-column", CMD, predictions("player_id,label,score\np1,true,0.3\n"), ("score",)),
    Case("predictions-bad-bool", CMD, predictions("player_id,label\np1,maybe\n"), ("label",)),
    Case("predictions-empty-required-id", CMD,
         predictions("player_id,label\np1,true\n,false\n", "player_id:STRING!,label:BOOL"), ("player_id",)),
    Case("predictions-nan-in-required", CMD,
         predictions("player_id,score\np1,0.5\np2,NaN\n", "player_id:STRING,score:FLOAT64!"), ("score",)),
    Case("predictions-binary", CMD, predictions("\x00\x01\x02garbage\n\x00"), ("predictions.csv",)),
    Case("command-fails", CMD, spec_sub(r"--action \{action\}", "--action nope"), ("exited with code",)),
    Case("command-not-found", CMD, spec_sub(r'command = "python', 'command = "no-such-program'),
         ("no-such-program",)),
    # Issue 26.16: the predictions file was read from wherever it pointed, and a line of it put in the error.
    Case("output-file-escapes", CMD, spec_sub(r'(schema = "player_id:STRING,label:BOOL")',
                                              r'\1\nfile = "../../../../etc/passwd"'),
         ("../../../../etc/passwd", "not a path inside")),
    Case("output-file-absolute", CMD, spec_sub(r'(schema = "player_id:STRING,label:BOOL")',
                                               r'\1\nfile = "/etc/passwd"'), ("/etc/passwd", "relative")),
    # Issue 26.15: a store or a warehouse that keeps nothing reported success.
    Case("store-in-memory", PY, nothing, ("memory://x", "vanish"), env={"BATCHCAST__STORAGE__URL": "memory://x"}),
    Case("warehouse-in-memory", PY, nothing, (":memory:", "vanish"),
         env={"BATCHCAST__WAREHOUSE__URL": "duckdb:///:memory:"}),
    Case("serve-model-file-escapes", CMD, spec_sub(r'model_file = "[^"]*"', 'model_file = "../model.joblib"'),
         ("../model.joblib", "not a path inside"), argv=("validate",)),
]
