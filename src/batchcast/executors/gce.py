"""A Compute Engine VM per run, through the official ``google-cloud-compute`` client.

The original design, without its weaknesses: the VM runs Container-Optimized
OS with a container declaration (the service's image, the run's env,
restart never), and the container deletes its own VM when the run ends
(``BATCHCAST_DELETE_VM``, read by ``batchcast run``). This process waits on
the instance through the Compute Engine API (no shell loop polling for its
absence), reads the outcome from the manifest, and deletes the VM itself if
it never came up, ended without deleting itself, or outlived the timeout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from batchcast.errors import ExecutorError, MissingExtra, SpecError
from batchcast.executors.remote import Ended, RemoteExecutor
from batchcast.isolation.images import label_value, run_env
from batchcast.runs.manifest import RunRequest
from batchcast.spec import ServiceSpec
from batchcast.spec.base import CloudSettings


class GceSettings(CloudSettings):
    """How the gce executor runs the action (a VM per run, with a container declaration), and an Airflow DAG's VM."""

    project: str | None = Field(None, description="The Google Cloud project of the VM.")
    zone: str = Field("europe-west1-b", description="The VM's zone.")
    machine_type: str = Field("e2-standard-4", description="The VM's machine type.")
    service_account: str = Field("default", description="The VM's service account (email); it needs the store, "
                                 "the warehouse and compute.instances.delete on itself.")
    boot_image: str = Field("projects/cos-cloud/global/images/family/cos-stable",
                            description="Container-Optimized OS, which runs the container declaration.")
    disk_gb: int = Field(20, ge=10, description="Boot disk size.")
    boot_timeout: float = Field(600, gt=0, description="Seconds for the VM to reach RUNNING before it is deleted.")
    poll_interval: float = Field(30, gt=0, description="Seconds between reads of the instance's state.")


ENDPOINT_ENV = "BATCHCAST_COMPUTE_ENDPOINT"  # an emulator or fake API; anonymous credentials then
DELETE_ENV = "BATCHCAST_DELETE_VM"  # projects/P/zones/Z/instances/NAME: the VM the run deletes when it ends
UP = ("RUNNING", "STOPPING", "SUSPENDING", "TERMINATED", "STOPPED", "SUSPENDED")


@dataclass
class Vm:
    """A created VM, by name, the client that reads it, and whether it was ever seen up."""

    instances: Any  # InstancesClient
    gce: GceSettings
    name: str
    begun: float  # time.monotonic() when it was created
    up: bool = False


class GceExecutor(RemoteExecutor[Vm]):
    name = "gce"

    def start(self, request: RunRequest, spec: ServiceSpec) -> Vm:
        gce = spec.action(request.action).gce
        spec.cloud_project(request.action, "gce")
        instances = instances_client()
        instances.insert(project=gce.project, zone=gce.zone, instance_resource=build_instance(spec, request)).result()
        return Vm(instances, gce, vm_name(spec, request), time.monotonic())

    def wait(self, vm: Vm, timeout: float) -> Ended | None:
        """Ended once the VM is gone (it deleted itself), stopped, or never came up within its boot timeout."""
        from google.api_core.exceptions import NotFound

        try:
            status = vm.instances.get(project=vm.gce.project, zone=vm.gce.zone, instance=vm.name).status
        except NotFound:
            return self._ended(vm, "deleted", gone=True)
        vm.up = vm.up or status in UP
        if status in ("TERMINATED", "STOPPED", "SUSPENDED"):  # it stopped without deleting itself
            return self._ended(vm, status)
        if not vm.up and time.monotonic() - vm.begun > vm.gce.boot_timeout:
            return Ended(ExecutorError(f"{self.describe(vm)} never came up: still {status} after "
                                       f"{vm.gce.boot_timeout:g} s; it was deleted",
                                       "check the zone's capacity and quotas, or use another zone or machine type"))
        time.sleep(min(vm.gce.poll_interval, timeout))
        return None

    def save_log(self, vm: Vm, request: RunRequest) -> None:
        from google.api_core.exceptions import GoogleAPICallError

        try:
            text = vm.instances.get_serial_port_output(project=vm.gce.project, zone=vm.gce.zone,
                                                       instance=vm.name).contents
        except GoogleAPICallError as exc:
            text = f"(no serial output from VM {vm.name}: {exc.message})\n"
        with open(request.log_path, "a") as log:
            log.write(text)

    def remove(self, vm: Vm) -> None:
        _delete(vm.instances, vm.gce, vm.name)

    def describe(self, vm: Vm) -> str:
        return f"VM {vm.gce.project}/{vm.gce.zone}/{vm.name}"

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        _delete(instances_client(), spec.action(request.action).gce, vm_name(spec, request))

    def _ended(self, vm: Vm, how: str, gone: bool = False) -> Ended:
        error = ExecutorError(f"{self.describe(vm)} ended ({how}) before the run committed",
                              "read the run's log (the VM's serial output) and the VM's container logs; fix the "
                              "cause, then run it again")
        return Ended(error, log=not gone, remove=not gone)  # a VM gone has no serial output left to read


def build_instance(spec: ServiceSpec, request: RunRequest):
    """The Instance: COS boot disk, the container declaration with the run's env, restart never, labels."""
    import yaml
    from google.cloud import compute_v1 as c

    gce = spec.action(request.action).gce
    name = vm_name(spec, request)
    env = {**run_env(spec, request, "gce"), DELETE_ENV: f"projects/{gce.project}/zones/{gce.zone}/instances/{name}"}
    declaration = {"spec": {"containers": [{"name": "run", "image": spec.image_tag, "stdin": False, "tty": False,
                                            "env": [{"name": k, "value": v} for k, v in env.items()]}],
                            "restartPolicy": "Never"}}
    return c.Instance(
        name=name, machine_type=f"zones/{gce.zone}/machineTypes/{gce.machine_type}",
        labels={"managed-by": "batchcast", "batchcast-service": label_value(spec.service.name),
                "batchcast-action": label_value(request.action)},
        disks=[c.AttachedDisk(boot=True, auto_delete=True, initialize_params=c.AttachedDiskInitializeParams(
            source_image=gce.boot_image, disk_size_gb=gce.disk_gb))],
        network_interfaces=[c.NetworkInterface(network="global/networks/default",
                                               access_configs=[c.AccessConfig(name="External NAT")])],
        service_accounts=[c.ServiceAccount(email=gce.service_account,
                                           scopes=["https://www.googleapis.com/auth/cloud-platform"])],
        metadata=c.Metadata(items=[c.Items(key="gce-container-declaration", value=yaml.safe_dump(declaration)),
                                   c.Items(key="google-logging-enabled", value="true")]))


def vm_name(spec: ServiceSpec, request: RunRequest) -> str:
    """An RFC 1035 name (63 characters at most), unique per run."""
    stem = label_value(f"bc-{spec.service.name}-{spec.service.version}-{request.action}")[:40].rstrip("-")
    return f"{stem}-{request.run_ts.lower()}"


def instances_client():
    try:
        from google.cloud import compute_v1
    except ImportError:
        raise MissingExtra("the gce executor", "gce") from None
    endpoint = os.environ.get(ENDPOINT_ENV)
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return compute_v1.InstancesClient(credentials=AnonymousCredentials(),
                                          client_options={"api_endpoint": endpoint})
    return compute_v1.InstancesClient()  # Application Default Credentials


def delete_self() -> None:
    """Run by the image's entry point when the run ends on a VM: delete the VM named in BATCHCAST_DELETE_VM."""
    target = os.environ.get(DELETE_ENV)
    if not target:
        return
    parts = target.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "zones" or parts[4] != "instances":
        raise SpecError(f"{DELETE_ENV} '{target}' is not projects/P/zones/Z/instances/NAME",
                        "leave it to the gce executor")
    instances_client().delete(project=parts[1], zone=parts[3], instance=parts[5])


def _delete(instances, gce, name: str) -> None:
    from google.api_core.exceptions import GoogleAPICallError, NotFound

    try:
        instances.delete(project=gce.project, zone=gce.zone, instance=name)
    except NotFound:
        pass
    except GoogleAPICallError as exc:
        raise ExecutorError(f"could not delete VM {gce.project}/{gce.zone}/{name}: {exc.message}",
                            f"delete it by hand: gcloud compute instances delete {name} --zone {gce.zone}") from None


if __name__ == "__main__":  # the image's entry point, after the run
    delete_self()
