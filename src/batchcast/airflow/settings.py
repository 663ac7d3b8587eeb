"""The ``[actions.X.airflow]`` table: how ``batchcast airflow render`` turns an action into a DAG."""

from __future__ import annotations

from pydantic import Field, model_validator

from batchcast.scheduling import periods
from batchcast.spec.base import Section, fail

# Keys [actions.X.airflow] had before the executors got tables of their own; Airflow's tasks
# now read the same tables as the executors, so a pod or a VM is described once.
MOVED_FROM_AIRFLOW = {"image": "kubernetes", "namespace": "kubernetes", "node_selector": "kubernetes",
                      "resources": "kubernetes", "secrets": "kubernetes",
                      "project": "gce", "zone": "gce", "machine_type": "gce"}


class AirflowSettings(Section):
    """How ``batchcast airflow render`` turns the action into a DAG (the pod or VM: [actions.X.kubernetes|gce])."""

    batchcast: str | None = Field(None, description="local: batchcast's own executable; default the rendering one.")
    pool: str | None = Field(None, description="The Airflow pool the task runs in.")
    poke_interval: float = Field(60, gt=0, description="gce: seconds between checks of the VM's state.")
    alert_webhook_variable: str | None = Field(
        None, description="An Airflow Variable holding a Slack-compatible webhook URL, posted to on failure.")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data):
        moved = [key for key in data if key in MOVED_FROM_AIRFLOW] if isinstance(data, dict) else []
        if moved:
            where = {MOVED_FROM_AIRFLOW[key] for key in moved}
            raise fail(f"{', '.join(moved)} moved out of the airflow table",
                        " and ".join(f"put {', '.join(k for k in moved if MOVED_FROM_AIRFLOW[k] == table)} "
                                     f"in the action's [{table}] table ([actions.NAME.{table}])"
                                     for table in sorted(where))
                        + ("; a gce VM runs the image batchcast build tags from [image]" if "image" in moved else ""))
        return data


def period_template(schedule: str | None) -> str:
    """What a task passes as ``--date``: Airflow's ``{{ ds }}`` for a daily action; for a sub-daily one ``{{ ts }}``,
    the logical date of Airflow 3's cron runs (the tick, with its offset), which names batchcast's period."""
    return "{{ ts }}" if periods.subdaily(schedule) else "{{ ds }}"
