"""The kubernetes executor in Airflow: a KubernetesPodOperator running the image, then one checking its manifest."""

from __future__ import annotations

import re

from batchcast.airflow.settings import period_template
from batchcast.spec import ActionSpec, ServiceSpec

IMPORTS = ("from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator\n"
           "from kubernetes.client import models as k8s\n")

KUBERNETES_TASKS = '''    run = KubernetesPodOperator(
        task_id={task_id!r},
        name={pod_name!r},
        namespace={namespace!r},
        image={image!r},
        cmds=["batchcast"],
        arguments=["run", {action!r}, "--date", {date!r}, "--executor", "inline"],
        env_vars={env!r},
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=n)) for n in {secrets!r}],
        container_resources=k8s.V1ResourceRequirements(requests={requests!r}, limits={limits!r}),
        node_selector={node_selector!r},
        service_account_name={service_account!r},
        execution_timeout=dt.timedelta(seconds={timeout!r}),
        get_logs=True,
        on_finish_action="delete_pod",{pool}
    )
    # A pod killed mid-run has been reported as a success: trust only a committed manifest.
    check = KubernetesPodOperator(
        task_id={check_id!r},
        name={check_name!r},
        namespace={namespace!r},
        image={image!r},
        cmds=["batchcast"],
        arguments=["check", {action!r}, "--date", {date!r}],
        env_vars={env!r},
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=n)) for n in {secrets!r}],
        node_selector={node_selector!r},
        service_account_name={service_account!r},
        on_finish_action="delete_pod",{pool}
    )
    run >> check
'''




def kubernetes_tasks(spec: ServiceSpec, name: str, action: ActionSpec, pool: str) -> tuple[str, str]:
    """(imports, tasks) of the DAG for the action's [actions.X.kubernetes] pod."""
    return IMPORTS, _tasks(spec, name, action, pool)


def _tasks(spec: ServiceSpec, name: str, action: ActionSpec, pool: str) -> str:
    k8s = action.kubernetes
    env = {"NAME": spec.service.name, "VERSION": spec.service.version, "ACTION": name,
           "LOGICAL_DATE": period_template(action.schedule), "BATCHCAST__STORAGE__URL": spec.storage.url,
           "BATCHCAST__WAREHOUSE__URL": spec.warehouse.url}
    slug = re.sub(r"[^a-z0-9-]", "-", f"{spec.service.name}-{name}".lower())
    return KUBERNETES_TASKS.format(
        task_id=name, check_id=f"{name}_check", pod_name=slug, check_name=f"{slug}-check", namespace=k8s.namespace,
        image=k8s.image or spec.image_tag, action=name, env=env, secrets=k8s.secrets,
        requests=k8s.resources.get("requests"), limits=k8s.resources.get("limits"),
        node_selector=k8s.node_selector, service_account=k8s.service_account, timeout=action.timeout, pool=pool,
        date=period_template(action.schedule))
