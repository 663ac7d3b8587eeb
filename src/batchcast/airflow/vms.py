"""The gce executor in Airflow: a VM per date that runs the image, a sensor on its state, the manifest check."""

from __future__ import annotations

import re
import shlex

from batchcast.errors import SpecError
from batchcast.isolation.images import registry_host
from batchcast.scheduling import periods
from batchcast.spec import ActionSpec, ServiceSpec

GOOGLE_REGISTRIES = ("gcr.io", "docker.pkg.dev")  # Container Registry and Artifact Registry hosts

IMPORTS = ("from airflow.providers.google.cloud.operators.compute import (\n"
           "    ComputeEngineDeleteInstanceOperator,\n    ComputeEngineInsertInstanceOperator,\n)\n"
           "from airflow.providers.standard.operators.python import PythonOperator\n"
           "from airflow.providers.standard.sensors.python import PythonSensor\n")

GCE_HELPERS = '''

PROJECT, ZONE, STORE = {project!r}, {zone!r}, {store!r}


def vm_name(ds):
    return {vm_prefix!r} + ds.replace("-", "")


def vm_stopped(ds):
    """The container's startup script powers the VM off when the run ends."""
    from airflow.providers.google.cloud.hooks.compute import ComputeEngineHook

    status = ComputeEngineHook().get_instance_info(zone=ZONE, resource_id=vm_name(ds), project_id=PROJECT)["status"]
    return status in ("TERMINATED", "STOPPED")


def run_succeeded(ds):
    """Read the run's manifest, written last by batchcast: the only proof that it succeeded."""
    import json

    from google.cloud import storage

    bucket, _, prefix = STORE[len("gs://"):].partition("/")
    client = storage.Client(project=PROJECT)
    names = sorted((b.name for b in client.list_blobs(bucket, prefix=f"{{prefix}}/{run_path}/".lstrip("/"))
                    if b.name.endswith("/manifest.json")), reverse=True)
    for name in names:
        manifest = json.loads(client.bucket(bucket).blob(name).download_as_bytes())
        if manifest["logical_date"] == ds:
            if manifest["status"] != "succeeded":
                error = (manifest.get("error") or {{}}).get("message")
                raise RuntimeError(f"{{manifest['run_id']}} {{manifest['status']}}: {{error}}")
            return manifest["run_id"]
    raise RuntimeError(f"no committed run for {{ds}} under {{STORE}}: the VM stopped before batchcast committed")
'''

GCE_TASKS = '''    start = ComputeEngineInsertInstanceOperator(
        task_id={start_id!r},
        project_id=PROJECT,
        zone=ZONE,
        resource_id="{vm_prefix}{{{{ ds_nodash }}}}",
        body={body!r},{pool}
    )
    # Reschedule mode: no worker slot is held while the VM works.
    wait = PythonSensor(
        task_id={wait_id!r},
        python_callable=vm_stopped,
        op_args=["{{{{ ds }}}}"],
        mode="reschedule",
        poke_interval={poke!r},
        timeout={timeout!r},
    )
    check = PythonOperator(task_id={check_id!r}, python_callable=run_succeeded, op_args=["{{{{ ds }}}}"])
    delete = ComputeEngineDeleteInstanceOperator(
        task_id={delete_id!r},
        project_id=PROJECT,
        zone=ZONE,
        resource_id="{vm_prefix}{{{{ ds_nodash }}}}",
        trigger_rule="all_done",
    )
    start >> wait >> check >> delete
'''




def gce_tasks(spec: ServiceSpec, name: str, action: ActionSpec, pool: str) -> tuple[str, str]:
    """(imports and helpers, tasks) of the DAG for the action's [actions.X.gce] VM."""
    if periods.subdaily(action.schedule):  # its VM, and the check of its run, are named by the day
        raise SpecError(f"{spec.file.name} [actions.{name}]: the gce executor's Airflow DAG runs one VM per day, and "
                        f"the schedule '{action.schedule}' ticks more than once a day",
                        "use a daily schedule with executor = \"gce\", or the kubernetes or local executor")
    return IMPORTS + _helpers(spec, name), _tasks(spec, name, action, pool)


def _vm_prefix(spec: ServiceSpec, name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"bc-{spec.service.name}-{name}-".lower())


def _helpers(spec: ServiceSpec, name: str) -> str:
    gce = spec.actions[name].gce
    spec.cloud_project(name, "gce")
    if not spec.storage.url.startswith("gs://"):
        raise SpecError(f"{spec.file.name} [storage] url: the gce executor needs a gs:// store, "
                        f"got '{spec.storage.url}'",
                        "set [storage] url = \"gs://bucket/prefix\", readable by Airflow and the VM")
    return GCE_HELPERS.format(project=gce.project, zone=gce.zone, store=spec.storage.url.rstrip("/"),
                              vm_prefix=_vm_prefix(spec, name),
                              run_path=f"{spec.service.name}/{spec.service.version}/{name}")


def _tasks(spec: ServiceSpec, name: str, action: ActionSpec, pool: str) -> str:
    gce = action.gce
    script = startup_script(spec, name)
    body = {"name": f"{_vm_prefix(spec, name)}{{{{ ds_nodash }}}}",
            "machine_type": f"zones/{gce.zone}/machineTypes/{gce.machine_type}",
            "disks": [{"boot": True, "auto_delete": True, "initialize_params": {
                "source_image": gce.boot_image, "disk_size_gb": gce.disk_gb}}],
            # An external address, as the gce executor's VMs have: the VM pulls the image and reaches the store.
            "network_interfaces": [{"network": "global/networks/default",
                                    "access_configs": [{"name": "External NAT"}]}],
            "service_accounts": [{"email": gce.service_account, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
            "metadata": {"items": [{"key": "startup-script", "value": script}]}}
    return GCE_TASKS.format(start_id=f"{name}_start", wait_id=f"{name}_wait", check_id=f"{name}_check",
                            delete_id=f"{name}_delete", vm_prefix=_vm_prefix(spec, name), body=body,
                            poke=action.airflow.poke_interval, timeout=action.timeout, pool=pool)


STARTUP = """#!/bin/bash
# Written by batchcast: run the service's image once for the date, then power the VM off;
# the DAG's sensor sees the VM stopped, reads the run's manifest, and deletes the VM.
# Container-Optimized OS mounts / read-only: docker's credential configuration goes under /var.
export HOME=/var/tmp
{login}docker run --rm {env} {image} {args}
shutdown -h now
"""


def startup_script(spec: ServiceSpec, name: str) -> str:
    """The VM's startup script: pull with the VM's own credentials, run ``batchcast run NAME``, power off."""
    env = " ".join(f"-e {k}={shlex.quote(v)}" for k, v in [
        ("BATCHCAST__STORAGE__URL", spec.storage.url), ("BATCHCAST__WAREHOUSE__URL", spec.warehouse.url)])
    host = registry_host(spec.image_tag)
    # The credential helper Container-Optimized OS ships answers for Google's registries with the VM's
    # service account; any other registry must let the VM pull anonymously.
    login = (f"docker-credential-gcr configure-docker --registries={shlex.quote(host)}\n"
             if host and host.endswith(GOOGLE_REGISTRIES) else "")
    args = f"run {shlex.quote(name)} --date {{{{ ds }}}} --executor inline"
    return STARTUP.format(login=login, env=env, image=shlex.quote(spec.image_tag), args=args)
