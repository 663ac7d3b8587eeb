"""The command contract: run the model's own command in a copy of its repository.

The command runs with the repository copy as its working directory and with
NAME, VERSION, ACTION, RUN_ID, LOGICAL_DATE, OUTPUT_DIR and MODEL_DIR set.
For an action that applies a model, the trained run's files are placed in
MODEL_DIR first. After exit 0 the output folder goes to the artifact store
and, when the action declares an output table, the predictions file is
ingested with the declared schema.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from batchcast.actions.context import PythonEnv, RunContext, log
from batchcast.data.schema import Schema
from batchcast.errors import ModelError, SchemaError, SpecError
from batchcast.isolation import process
from batchcast.redaction import first_line
from batchcast.runs.commit import Outcome
from batchcast.runs.manifest import FileEntry
from batchcast.runs.store import sha256_file
from batchcast.scheduling import periods

PREDICTION_FILES = ("predictions.parquet", "predictions.csv", "predictions.jsonl")
_SKIP = {".git", ".venv", "venv", ".batchcast", "__pycache__", ".pytest_cache"}


def run(ctx: RunContext, outcome: Outcome) -> None:
    model = ctx.spec.model
    repo = copy_repo(ctx.spec.model_path, ctx.workdir / "repo", {model.output_dir, model.model_dir})
    output, model_dir = repo / model.output_dir, repo / model.model_dir
    output.mkdir(parents=True, exist_ok=True)
    fetched = {}
    if ctx.request.model_run:
        model_dir.mkdir(parents=True, exist_ok=True)
        manifest = ctx.store.fetch_run(ctx.request.model_run, model_dir)
        log.info("model %s fetched and verified", manifest.run_id)
        fetched = {rel.split("/", 1)[1]: e.sha256 for rel, e in manifest.files.items() if rel.startswith("output/")}
    argv = command_argv(ctx)
    env = command_env(ctx, output, model_dir)
    log.info("running %s in %s", shlex.join(argv), repo)
    code = process.run(argv, cwd=repo, env=env, log_path=Path(ctx.request.log_path), timeout=ctx.action.timeout)
    if code != 0:
        raise ModelError(f"the model's command `{shlex.join(argv)}` exited with code {code}; "
                         f"last log lines: {process.tail(Path(ctx.request.log_path))}",
                         f"fix the model, then run it again; the full log is in run {ctx.run_id}")
    outcome.files.update(_store_outputs(ctx, output, fetched if output == model_dir else {}))
    if "output/metrics.json" in outcome.files:  # not a training run's copy left in a shared folder
        outcome.metrics.update(_metrics(output / "metrics.json"))
    if ctx.action.output:
        _deliver(ctx, outcome, output)


def copy_repo(src: Path, dst: Path, top_level_skip: set[str]) -> Path:
    """Copy the repository, leaving out VCS, environments, caches and old outputs."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = _SKIP | (top_level_skip if Path(folder) == src else set())
        return {n for n in names if n in skip}

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)
    return dst


def command_argv(ctx: RunContext) -> list[str]:
    template, config = ctx.spec.command, ctx.action.config
    if "{config}" in template and not config:
        raise SpecError(f"{ctx.where}: the command uses {{config}} but the action has no config",
                        f"add config = \"configs/{ctx.request.action}.json\" to [actions.{ctx.request.action}]")
    try:
        return shlex.split(template.format(action=ctx.request.action, config=config or ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise SpecError(f"{ctx.spec.file.name} [model] command: cannot fill in '{template}': {exc}",
                        "use only {action} and {config} as placeholders") from None


def command_env(ctx: RunContext, output: Path, model_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    python = ctx.python_env or PythonEnv(Path(sys.executable).parent)
    env["PATH"] = f"{python.bin_dir}{os.pathsep}{env.get('PATH', '')}"
    if python.venv:
        env["VIRTUAL_ENV"] = str(python.venv)
        for leak in ("PYTHONPATH", "PYTHONHOME"):
            env.pop(leak, None)
    request = ctx.request
    start, end = ctx.interval
    # LOGICAL_DATE stays a day (a sub-daily period's UTC day), as repositories written for daily runs parse it;
    # the interval says which part of it.
    env.update(NAME=request.name, VERSION=request.version, ACTION=request.action, RUN_ID=request.run_id,
               LOGICAL_DATE=periods.day(request.logical_date).isoformat(), INTERVAL_START=start.isoformat(),
               INTERVAL_END=end.isoformat(), OUTPUT_DIR=str(output), MODEL_DIR=str(model_dir))
    return env


def _store_outputs(ctx: RunContext, output: Path, fetched: dict[str, str]) -> dict[str, FileEntry]:
    entries = {}
    for path in sorted(p for p in output.rglob("*") if p.is_file()):
        rel = path.relative_to(output).as_posix()
        if fetched.get(rel) == sha256_file(path):
            continue  # an unchanged model file: already stored with its training run
        entries[f"output/{rel}"] = ctx.store.put_file(ctx.run_id, f"output/{rel}", path)
    return entries


def _metrics(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        log.warning("%s is not JSON; metrics ignored", path.name)
        return {}
    if not isinstance(data, dict):
        log.warning("%s holds a %s, not an object of metrics by name; metrics ignored", path.name,
                    type(data).__name__)
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _deliver(ctx: RunContext, outcome: Outcome, output: Path) -> None:
    spec = ctx.action.output
    path = _predictions_file(output, spec.file, ctx)
    ctx.publish(outcome, spec.schema_, read_predictions(path, spec.schema_, ctx.action.batch_size), path.name)


def _predictions_file(output: Path, declared: str | None, ctx: RunContext) -> Path:
    candidates = [declared] if declared else PREDICTION_FILES
    for name in candidates:
        if (output / name).is_file():
            return output / name
    raise ModelError(f"the model's command exited 0 but wrote no {' or '.join(candidates)} in OUTPUT_DIR",
                     f"write the predictions to $OUTPUT_DIR, or set file in [actions.{ctx.request.action}.output]")


def read_predictions(path: Path, schema: Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Stream a predictions file as batches typed as declared where the format allows."""
    try:
        if path.suffix == ".parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size)
        elif path.suffix == ".jsonl" or path.suffix == ".json":
            yield from pajson.read_json(path).to_batches(batch_size)
        else:
            yield from _read_csv(path, schema, batch_size)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"{path.name}: {_name_column(str(exc), path)}",
                          "fix the values the model writes, or the declared schema") from None


def _read_csv(path: Path, schema: Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
    types = {c.name: c.arrow for c in schema}
    options = pacsv.ReadOptions(block_size=max(1 << 20, batch_size * 64))
    yield from pacsv.open_csv(path, read_options=options,
                              convert_options=pacsv.ConvertOptions(column_types=types))


def _name_column(message: str, path: Path) -> str:
    # Arrow numbers CSV columns; people name them.
    match = re.search(r"column #(\d+)", message)
    if match and path.suffix == ".csv":
        header = path.open(errors="replace").readline().strip().split(",")
        index = int(match.group(1))
        if index < len(header):
            message = message.replace(match.group(0), f"column '{header[index]}'")
    return first_line(message)
