"""The original design's JSON graph configs (``graph``/``tasks``/``dependencies``) as Airflow 3 DAG files.

Faithful to the original ``graph.py``: every key of ``graph`` reaches
``DAG(...)`` (``default_args`` whole, ``catchup``, ``description``, ``tags``...),
``schedule_interval`` becomes Airflow 3's ``schedule``, and ``${ROOT}`` in a
task's command becomes the folder holding the ``configs/`` folder. A key that
Airflow 3 no longer accepts is refused by name, with its replacement.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from croniter import croniter

from batchcast.airflow.dags import BASH_IMPORT, HEADER
from batchcast.errors import SpecError

CONFIG_TASK = '''    tasks[{name!r}] = BashOperator(task_id={name!r}, bash_command={code!r})
'''
# DAG arguments of Airflow 2 that Airflow 3 refuses, and what to write instead.
REMOVED = {"concurrency": "max_active_tasks", "default_view": "nothing (the UI chooses)",
           "orientation": "nothing (the UI chooses)", "sla_miss_callback": "a deadline alert or on_failure_callback",
           "timetable": "schedule", "full_filepath": "nothing", "schedule_after_task_execution": "nothing"}
ACCEPTED = {"dag_id", "description", "schedule", "start_date", "end_date", "catchup", "default_args", "tags",
            "max_active_runs", "max_active_tasks", "dagrun_timeout", "doc_md", "params", "owner_links",
            "render_template_as_native_obj", "is_paused_upon_creation", "max_consecutive_failed_dag_runs",
            "dag_display_name", "fail_fast", "template_searchpath", "user_defined_macros", "access_control"}
SECONDS = ("retry_delay", "max_retry_delay", "execution_timeout", "dagrun_timeout")  # numbers -> timedelta


def render_config(folder: Path, out: Path, root: Path | None = None) -> list[Path]:
    """One DAG per JSON file of ``{"graph": {...}, "tasks": [...], "dependencies": [[child, parent]]}``.

    ``root`` replaces ``${ROOT}`` in the tasks' commands; by default the
    folder that holds the ``configs/`` folder the files are in, as the
    original ``graph.py`` did (else the parent of ``folder``).
    """
    folder = Path(folder).resolve()
    root = Path(root).resolve() if root else _root_of(folder)
    out.mkdir(parents=True, exist_ok=True)
    graphs = [(path, _load_graph(path)) for path in sorted(folder.glob("*.json"))]
    if not graphs:
        raise SpecError(f"{folder}: no *.json graph configs", "point --from-config at the folder of graph JSON files")
    written = []
    for path, graph in graphs:
        target = out / f"{graph['dag_id'].replace('-', '_').replace('.', '_')}.py"
        target.write_text(_config_dag(path, graph, root))
        written.append(target)
    return written


def _root_of(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if candidate.name == "configs":
            return candidate.parent
    return folder.parent


def _load_graph(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
        graph, tasks, deps = config["graph"], config["tasks"], config.get("dependencies", [])
        dag_id, start = graph["dag_id"], graph["start_date"]
        schedule = graph["schedule_interval"] if "schedule_interval" in graph else graph["schedule"]
        names = [t["name"] for t in tasks]
        codes = {t["name"]: t["code"] for t in tasks}
    except (ValueError, KeyError, TypeError) as exc:
        raise SpecError(f"{path}: not a graph config ({type(exc).__name__}: {exc})",
                        'use {"graph": {"dag_id", "schedule_interval", "start_date"}, "tasks": [{"name", "code"}], '
                        '"dependencies": [[child, parent]]}') from None
    if not croniter.is_valid(schedule):
        raise SpecError(f"{path}: graph.schedule_interval '{schedule}' is not a cron expression",
                        "use five fields, e.g. '0 0 1 * *'")
    try:
        start = dt.date.fromisoformat(start)
    except ValueError:
        raise SpecError(f"{path}: graph.start_date '{start}' is not YYYY-MM-DD", "write e.g. 2019-07-01") from None
    for pair in deps:
        for task in pair:
            if task not in codes:
                raise SpecError(f"{path}: dependency {pair} names unknown task '{task}' (tasks: {', '.join(names)})",
                                "correct the name, or add the task")
    _refuse_cycles(path, names, deps)
    return {"dag_id": dag_id, "schedule": schedule, "start": start, "tasks": codes, "deps": deps,
            "options": _options(path, graph)}


def _options(path: Path, graph: dict) -> dict:
    """Every other key of ``graph``, for ``DAG(...)``; a key Airflow 3 refuses is named, with its replacement."""
    options = {k: v for k, v in graph.items() if k not in ("dag_id", "schedule_interval", "schedule", "start_date")}
    for key in options:
        if key in REMOVED:
            raise SpecError(f"{path}: graph.{key}: Airflow 3 no longer accepts it", f"use {REMOVED[key]} instead")
        if key not in ACCEPTED:
            raise SpecError(f"{path}: graph.{key}: not an argument of Airflow 3's DAG",
                            f"remove it, or use one of {', '.join(sorted(ACCEPTED))}")
    if not isinstance(options.get("default_args", {}), dict):
        raise SpecError(f"{path}: graph.default_args must be an object", 'write e.g. {"owner": "data", "retries": 1}')
    return options


def _refuse_cycles(path: Path, names: list[str], deps: list[list[str]]) -> None:
    parents = {n: [p for c, p in deps if c == n] for n in names}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 1:
            cycle = trail[trail.index(node):] + [node]
            raise SpecError(f"{path}: the dependencies form a cycle: {' -> '.join(cycle)}",
                            "remove one of those dependencies")
        if state.get(node) == 2:
            return
        state[node] = 1
        for parent in parents[node]:
            visit(parent, trail + [node])
        state[node] = 2

    for name in names:
        visit(name, [])


def _config_dag(path: Path, graph: dict, root: Path) -> str:
    text = HEADER.format(title=f"{graph['dag_id']} on {graph['schedule']}", source=path)
    text += BASH_IMPORT
    start = graph["start"]
    options = {"dag_id": graph["dag_id"], "schedule": graph["schedule"], **graph["options"]}
    text += f"\n# The config's graph, whole, as the original graph.py passed it to DAG(...).\nGRAPH = {options!r}\n"
    text += f"GRAPH['start_date'] = dt.datetime({start.year}, {start.month}, {start.day}, tzinfo=dt.timezone.utc)\n"
    for key in SECONDS:  # seconds in JSON, timedeltas for Airflow
        if isinstance(options.get("default_args", {}).get(key), int | float):
            text += f"GRAPH['default_args'][{key!r}] = dt.timedelta(seconds=GRAPH['default_args'][{key!r}])\n"
        if isinstance(options.get(key), int | float):
            text += f"GRAPH[{key!r}] = dt.timedelta(seconds=GRAPH[{key!r}])\n"
    text += "\nwith DAG(**GRAPH) as dag:\n    tasks = {}\n"
    for name, code in graph["tasks"].items():
        text += CONFIG_TASK.format(name=name, code=code.replace("${ROOT}", str(root)))
    for child, parent in graph["deps"]:
        text += f"    tasks[{parent!r}] >> tasks[{child!r}]\n"
    return text
