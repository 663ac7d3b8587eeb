"""Airflow: render services (or the original JSON graph configs) as Airflow 3 DAG files.

The files import only Airflow and its providers: batchcast and the model's
libraries never enter Airflow's environment, and parsing does no I/O.
"""

from batchcast.airflow.render import render, render_config

__all__ = ["render", "render_config"]
