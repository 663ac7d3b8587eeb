"""Airflow: render services (or the original JSON graph configs) as Airflow 3 DAG files.

The files import only Airflow and its providers: batchcast and the model's
libraries never enter Airflow's environment, and parsing does no I/O.

- :mod:`~batchcast.airflow.dags`: one DAG per scheduled action, BashOperator by default;
- :mod:`~batchcast.airflow.pods`, :mod:`~batchcast.airflow.vms`: the tasks of executors Airflow drives itself;
- :mod:`~batchcast.airflow.graphs`: the original JSON graph configs;
- :mod:`~batchcast.airflow.settings`: the ``[actions.X.airflow]`` table.
"""

__all__ = ["render", "render_config"]


def __getattr__(name: str):
    # The renderers are imported on use: every spec load imports this package for its settings
    # table, and the renderers' imports (croniter among them) would cost every run.
    if name == "render":
        from batchcast.airflow.dags import render

        return render
    if name == "render_config":
        from batchcast.airflow.graphs import render_config

        return render_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
