"""Airflow: render services (or the original JSON graph configs) as Airflow 3 DAG files.

The files import only Airflow and its providers: batchcast and the model's
libraries never enter Airflow's environment, and parsing does no I/O.

- :mod:`~batchcast.airflow.dags`: one DAG per scheduled action, BashOperator by default;
- :mod:`~batchcast.airflow.pods`, :mod:`~batchcast.airflow.vms`: the tasks of executors Airflow drives itself;
- :mod:`~batchcast.airflow.graphs`: the original JSON graph configs;
- :mod:`~batchcast.airflow.settings`: the ``[actions.X.airflow]`` table.
"""

from batchcast.airflow.dags import render
from batchcast.airflow.graphs import render_config

__all__ = ["render", "render_config"]
