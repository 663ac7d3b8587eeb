"""The original design's JSON graph configs (``graph``/``tasks``/``dependencies``) as Airflow 3 DAG files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from croniter import croniter

from batchcast.airflow.dags import BASH_IMPORT, DAG_OPEN, HEADER
from batchcast.errors import SpecError

CONFIG_TASK = '''    tasks[{name!r}] = BashOperator(task_id={name!r}, bash_command={code!r})
'''


def render_config(folder: Path, out: Path) -> list[Path]:
    """One DAG per JSON file of ``{"graph": {...}, "tasks": [...], "dependencies": [[child, parent]]}``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(Path(folder).glob("*.json")):
        graph = _load_graph(path)
        target = out / f"{graph['dag_id'].replace('-', '_').replace('.', '_')}.py"
        target.write_text(_config_dag(path, graph))
        written.append(target)
    if not written:
        raise SpecError(f"{folder}: no *.json graph configs", "point --from-config at the folder of graph JSON files")
    return written


def _load_graph(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
        graph, tasks, deps = config["graph"], config["tasks"], config.get("dependencies", [])
        dag_id, schedule, start = graph["dag_id"], graph["schedule_interval"], graph["start_date"]
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
            "catchup": bool(graph.get("catchup", False))}


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


def _config_dag(path: Path, graph: dict) -> str:
    text = HEADER.format(title=f"{graph['dag_id']} on {graph['schedule']}", source=path)
    text += BASH_IMPORT
    text += DAG_OPEN.format(dag_id=graph["dag_id"], schedule=graph["schedule"], start=graph["start"],
                            catchup=graph["catchup"], tags=["batchcast"], retries=0, retry_delay=300, callback="")
    text += "    tasks = {}\n"
    for name, code in graph["tasks"].items():
        text += CONFIG_TASK.format(name=name, code=code)
    for child, parent in graph["deps"]:
        text += f"    tasks[{parent!r}] >> tasks[{child!r}]\n"
    return text
