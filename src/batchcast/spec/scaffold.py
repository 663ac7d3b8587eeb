"""Writing specs: ``init`` (a complete example service) and ``adopt`` (an existing repository)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from batchcast.errors import SpecError
from batchcast.spec import KINDS, SPEC_FILE, ServiceSpec

TEMPLATE = Path(__file__).parents[1] / "templates" / "service"


def init(folder: Path, name: str | None = None) -> Path:
    """Write the example churn service into ``folder``; return its spec file."""
    folder = Path(folder)
    if (folder / SPEC_FILE).exists():
        raise SpecError(f"{folder / SPEC_FILE} already exists", "choose an empty folder")
    name = name or folder.resolve().name.lower().replace(" ", "-") or "churn"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written and validated beside the folder first: a refused --name leaves no template file behind.
    staged = Path(tempfile.mkdtemp(prefix=".batchcast-init-", dir=folder.parent))
    try:
        shutil.copytree(TEMPLATE, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        spec = staged / SPEC_FILE
        spec.write_text(spec.read_text().replace("{name}", name))
        try:
            _validate(spec)
        except SpecError as exc:
            raise SpecError(exc.message.replace(str(staged), str(folder)), exc.fix) from None
        shutil.copytree(staged, folder, dirs_exist_ok=True, symlinks=True)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return folder / SPEC_FILE


def adopt(repo: Path, name: str, table: str, schema: str, dest: Path = Path("."), *,
          version: str = "1", force: bool = False, overrides: tuple[str, ...] = (),
          schedules: dict[str, str] | None = None) -> Path:
    """Write ``dest/batchcast.toml`` for the command-contract repository at ``repo``, which stays untouched.

    ``overrides`` replace the repository's own pins (``[model] overrides``);
    ``schedules`` maps an action to its cron.
    """
    repo, spec = Path(repo).resolve(), Path(dest) / SPEC_FILE
    if not (repo / "prediction" / "main.py").exists() and not (repo / "prediction").is_dir():
        raise SpecError(f"{repo}: no prediction/ package", "point adopt at a repository with prediction/main.py")
    if spec.exists() and not force:
        raise SpecError(f"{spec} already exists", "pass --force to replace it")
    lines = ["[service]", f"name = {_q(name)}", f"version = {_q(version)}", "", "[model]",
             f"path = {_q(os.path.relpath(repo, Path(dest).resolve()))}"]
    if (repo / "requirements.txt").exists():
        lines.append('requirements = "requirements.txt"')
    if overrides:
        lines.append(f"overrides = [{', '.join(_q(o) for o in overrides)}]")
    for action in _actions(repo):
        lines += ["", f"[actions.{action}]"]
        if (repo / "configs" / f"{action}.json").exists():
            lines.append(f'config = "configs/{action}.json"')
        if (schedules or {}).get(action):
            lines.append(f"schedule = {_q(schedules[action])}")
        if action == "application":
            lines += ["", "[actions.application.output]", f"table = {_q(table)}", f"schema = {_q(schema)}"]
    text = "\n".join(lines) + "\n"
    staged = spec.with_name(f".{SPEC_FILE}.new")
    staged.write_text(text)
    try:
        _validate(staged)  # a bad --table or --schema must not leave a spec behind
    except SpecError as exc:
        staged.unlink()
        raise SpecError(exc.message.replace(staged.name, "adopt options"), exc.fix) from None
    staged.replace(spec)
    return spec


def _actions(repo: Path) -> list[str]:
    found = {p.stem for p in (repo / "configs").glob("*.json")} & set(KINDS)
    return [k for k in KINDS if k in found | {"training", "application"}]


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _validate(path: Path) -> ServiceSpec:
    from batchcast.spec import load_spec

    return load_spec(path, environ={})
