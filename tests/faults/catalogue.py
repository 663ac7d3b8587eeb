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


def model_source(old: str, new: str) -> Callable[[Path], None]:
    """Replace ``old`` in the Python-contract base's model.py (the case fails loudly if it is not there)."""
    def mutate(root: Path) -> None:
        path = root / "repo" / "model.py"
        assert old in path.read_text(), f"{old!r} not in {path}"
        path.write_text(path.read_text().replace(old, new, 1))
    return mutate


TRAIN = ("run", "training")
INLINE = (*APPLY, "--executor", "inline")

# Round two (issue 26): what an independent campaign tried that the first catalogue did not hold.
ROUND_TWO = [
    # -- the spec and its overrides --------------------------------------------------
    Case("spec-not-utf8", PY, write("batchcast.toml", b"[service]\nname = \"\xff\xfe\"\n"), ("UTF-8",)),
    Case("spec-empty", PY, write("batchcast.toml", ""), ("[service]", "is missing")),
    Case("spec-is-a-folder", PY, nothing, ("batchcast.toml",), argv=("--spec", "repo", *APPLY)),
    Case("spec-missing", PY, nothing, ("nope.toml",), argv=("--spec", "nope.toml", *APPLY)),
    Case("service-name-newline", PY, spec_sub(r'name = "scores"', 'name = "scores\\\\n"'), ("not a valid name",)),
    Case("table-newline", PY, spec_sub(r'table = "scores"', 'table = "scores\\\\n"'), ("not a valid table name",)),
    Case("action-name-newline", PY, append('[actions."evaluation\\n"]\ninput = { query = "SELECT 1" }'),
         ("evaluation",)),
    Case("adopt-table-newline", CMD, nothing, ("not a valid table name",),
         argv=("adopt", ".", "--name", "churn", "--table", "scores\n", "--schema", "player_id:STRING,label:BOOL",
               "--force")),
    Case("image-registry-newline", PY, append('[image]\nregistry = "localhost\\n"'), ("registry",)),
    Case("version-bool", PY, spec_sub(r'version = "2"', "version = true"), ("true",)),
    Case("version-float-inf", PY, spec_sub(r'version = "2"', "version = inf"), ("version",)),
    Case("timeout-inf", PY, spec_sub(r'(\[actions.application\]\n)', r'\1timeout = inf\n'), ("timeout", "finite")),
    Case("retry-delay-nan", PY, spec_sub(r'(\[actions.application\]\n)', r'\1retry_delay = nan\n'),
         ("retry_delay", "finite")),
    Case("batch-size-text", PY, spec_sub(r'(\[actions.application\]\n)', r'\1batch_size = "many"\n'),
         ("batch_size",)),
    Case("model-path-missing", PY, spec_sub(r'path = "repo"', 'path = "no-such-repo"'), ("no-such-repo",)),
    Case("model-path-is-a-file", PY, spec_sub(r'path = "repo"', 'path = "repo/model.py"'), ("model.py",)),
    Case("entrypoint-no-colon", PY, spec_sub(r'entrypoint = "model:Model"', 'entrypoint = "model"'),
         ("entrypoint",)),
    Case("entrypoint-unknown-class", PY, spec_sub(r'entrypoint = "model:Model"', 'entrypoint = "model:Nope"'),
         ("Nope",), argv=TRAIN),
    Case("env-override-unknown-key", PY, nothing, ("NOPE",), env={"BATCHCAST__ACTIONS__APPLICATION__NOPE": "1"}),
    Case("env-override-batch-size-text", PY, nothing, ("batch_size",),
         env={"BATCHCAST__ACTIONS__APPLICATION__BATCH_SIZE": "many"}),
    Case("env-override-timeout-inf", PY, nothing, ("timeout",),
         env={"BATCHCAST__ACTIONS__APPLICATION__TIMEOUT": "inf"}),
    Case("unknown-action", PY, nothing, ("scoring",), argv=("run", "scoring")),
    Case("date-february-30", PY, nothing, ("2026-02-30",), argv=("run", "application", "--date", "2026-02-30")),
    Case("date-with-time", PY, nothing, ("2026-01-01T10",), argv=("run", "application", "--date", "2026-01-01T10")),
    Case("backfill-centuries", PY, spec_sub(r'(\[actions.application\]\n)', r'\1schedule = "0 6 * * *"\n'),
         ("3,660",), argv=("backfill", "application", "--from", "0001-01-01", "--to", "9999-12-31")),
    Case("backfill-reversed", PY, spec_sub(r'(\[actions.application\]\n)', r'\1schedule = "0 6 * * *"\n'),
         ("empty",), argv=("backfill", "application", "--from", "2026-02-01", "--to", "2026-01-01")),
    Case("backfill-unscheduled", PY, nothing, ("no schedule",),
         argv=("backfill", "application", "--from", "2026-01-01", "--to", "2026-01-02")),
    Case("timezone-unknown", PY, spec_sub(r'(\[actions.application\]\n)', r'\1timezone = "Mars/Olympus"\n'),
         ("Mars/Olympus",)),
    # -- configs and the model's code --------------------------------------------------
    Case("config-is-a-list", PY, write("repo/configs/training.json", "[1, 2]"), ("training.json",), argv=TRAIN),
    Case("config-params-not-a-table", PY, write("repo/configs/training.json", '{"params": 3}'), ("params",),
         argv=TRAIN),
    Case("config-unknown-param", PY, write("repo/configs/training.json", '{"params": {"nope": 1}}'), ("nope",),
         argv=TRAIN),
    Case("model-syntax-error", PY, model_source("class Model:", "class Model(:"), ("model.py",), argv=INLINE),
    Case("model-library-missing", PY, model_source("import os\n", "import os\nimport no_such_library_xyz\n"),
         ("no_such_library_xyz",), argv=INLINE),
    Case("model-raises-at-import", PY, model_source("import os\n", "import os\nraise RuntimeError('boom')\n"),
         ("boom",), argv=INLINE),
    Case("model-predict-wrong-length", PY, model_source("return self.inner.predict(X)",
                                                        "return self.inner.predict(X)[:1]"), ("rows",), argv=INLINE),
    Case("model-predict-none", PY, model_source("return self.inner.predict(X)", "return None"), ("predict",),
         argv=INLINE),
    Case("model-predict-strings", PY, model_source("return self.inner.predict(X)", "return ['x'] * len(X)"),
         ("label",), argv=INLINE),
    Case("model-fit-raises", PY, model_source("self.inner.fit(X, y)", "raise ValueError('cannot fit')"),
         ("cannot fit",), argv=TRAIN),
    # -- the command contract's outputs --------------------------------------------------
    Case("predictions-duplicate-header", CMD, predictions("player_id,label,label\np1,true,false\n"), ("label",)),
    Case("predictions-only-newlines", CMD, predictions("\n\n\n"), ("predictions.csv",)),
    Case("predictions-unterminated-quote", CMD, predictions('player_id,label\n"p1,true\n'), ("predictions.csv",)),
    Case("predictions-bad-utf8", CMD, write("bad-predictions.csv", b"player_id,label\n\xff\xfe,true\n"),
         ("predictions.csv",)),
    # -- references and aliases ----------------------------------------------------------
    Case("model-ref-traversal", PY, nothing, ("is not a run id",), argv=(*APPLY, "--model", "../../../x")),
    Case("model-ref-glob", PY, nothing, ("names no alias",), argv=(*APPLY, "--model", "*")),
    Case("promote-alias-traversal", PY, nothing, ("alias",), argv=("promote", "latest", "--alias", "../../../../x")),
    Case("promote-alias-empty", PY, nothing, ("alias",), argv=("promote", "latest", "--alias", "")),
    Case("promote-alias-glob", PY, nothing, ("alias",), argv=("promote", "latest", "--alias", "*")),
    Case("show-unknown", PY, nothing, ("nope",), argv=("show", "nope")),
    Case("rollback-without-history", PY, nothing, ("staging",), argv=("rollback", "--alias", "staging")),
    # -- backends --------------------------------------------------------------------------
    Case("warehouse-postgres-no-host", PY, nothing, ("postgresql",),
         env={"BATCHCAST__WAREHOUSE__URL": "postgresql://"}),
    Case("storage-s3-bucket-too-short", PY, nothing, ("ab",),
         env={"BATCHCAST__STORAGE__URL": "s3://ab/x", "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
              "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}),
]
CASES += ROUND_TWO
