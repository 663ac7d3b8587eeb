"""Airflow: render services (or the original JSON graph configs) as Airflow 3 DAG files.

The files import only Airflow and its providers: batchcast and the model's
libraries never enter Airflow's environment, and parsing does no I/O.

- :mod:`~batchcast.airflow.dags`: ``render``, one DAG per scheduled action, BashOperator by default;
- :mod:`~batchcast.airflow.pods`, :mod:`~batchcast.airflow.vms`: the tasks of executors Airflow drives itself;
- :mod:`~batchcast.airflow.graphs`: ``render_config``, the original JSON graph configs;
- :mod:`~batchcast.airflow.settings`: the ``[actions.X.airflow]`` table.

Import the renderers from their modules: every spec load imports this package for its
settings table, and the renderers' imports (croniter among them) would cost every run.
"""
