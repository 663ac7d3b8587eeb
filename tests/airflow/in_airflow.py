"""Run inside Airflow's own virtualenv (not batchcast's): ``python in_airflow.py COMMAND DAGS_DIR [ARGS]``.

Prints one JSON document. The tests call it with ``.venv-airflow/bin/python``,
so batchcast is never importable here: the DAG files must stand alone.
"""

import json
import sys
import time
from pathlib import Path


def bag(folder: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=folder)


def parse(folder: str) -> dict:
    # What a DAG processor has imported already; timed apart, so the figures are the files' own.
    start = time.perf_counter()
    import airflow.providers.standard.operators.bash  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401

    warm_up = round(time.perf_counter() - start, 3)
    timings = {}
    for path in sorted(Path(folder).glob("*.py")):
        start = time.perf_counter()
        bag(str(path))
        timings[path.name] = round(time.perf_counter() - start, 3)
    found = bag(folder)
    return {"import_errors": {k: str(v) for k, v in found.import_errors.items()}, "parse_seconds": timings,
            "operator_imports_seconds": warm_up,
            "dags": {d.dag_id: {"tasks": _ordered(d), "schedule": getattr(d.timetable, "expression", None),
                                "start_date": d.start_date.date().isoformat(),
                                "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in d.tasks},
                                "catchup": d.catchup, "description": d.description, "tags": sorted(d.tags),
                                "task_args": {t.task_id: {"owner": t.owner, "depends_on_past": t.depends_on_past,
                                                          "retries": t.retries,
                                                          "retry_delay_s": t.retry_delay.total_seconds(),
                                                          "bash_command": getattr(t, "bash_command", None)}
                                              for t in d.tasks},
                                "modes": {t.task_id: getattr(t, "mode", None) for t in d.tasks}}
                     for d in found.dags.values()}}


def _ordered(dag) -> list:
    """Task ids upstream first (Kahn's order, ties by name)."""
    pending = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    order = []
    while pending:
        ready = sorted(k for k, ups in pending.items() if not ups - set(order))
        order += ready
        for k in ready:
            pending.pop(k)
    return order


def test(folder: str, dag_id: str, day: str) -> dict:
    import datetime as dt

    dag = bag(folder).get_dag(dag_id)
    run = dag.test(logical_date=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
    return {"state": str(run.state)}


def pod(folder: str, dag_id: str, day: str = "") -> dict:
    """Each KubernetesPodOperator's pod as Airflow would create it; with ``day``, its templates rendered first."""
    dag = bag(folder).get_dag(dag_id)
    out = {}
    for task in dag.tasks:
        if day:
            task.render_template_fields(_context(day))
            from kubernetes.client import ApiClient

            # Kubernetes' own JSON (camelCase), as the API server and `podman kube play` read it.
            out[task.task_id] = ApiClient().sanitize_for_serialization(task.build_pod_request_obj())
        else:
            out[task.task_id] = task.build_pod_request_obj().to_dict()
    return out


def field(folder: str, dag_id: str, task_id: str, name: str, day: str) -> dict:
    """A task's templated field as Airflow renders it for ``day``."""
    task = bag(folder).get_dag(dag_id).get_task(task_id)
    task.render_template_fields(_context(day))
    return {name: getattr(task, name)}


def _context(day: str) -> dict:
    return {"ds": day, "ds_nodash": day.replace("-", "")}


def call_check(folder: str, dag_id: str, task_id: str, day: str) -> dict:
    """Call a PythonOperator's callable, as the task would, and report its result or error."""
    task = bag(folder).get_dag(dag_id).get_task(task_id)
    try:
        return {"ok": task.python_callable(day)}
    except Exception as exc:
        return {"error": str(exc)}


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {"parse": parse, "test": test, "pod": pod, "call": call_check, "field": field}
    print(json.dumps(commands[command](*args), default=str))
