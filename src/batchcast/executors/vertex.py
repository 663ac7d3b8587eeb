"""A Vertex AI CustomJob per run, through the official ``google-cloud-aiplatform`` client.

One worker pool of one replica runs the service's image with the run's env;
``restart_job_on_worker_restart`` is off and Vertex's own timeout is the
action's, so retrying stays the scheduler's decision. This process waits on
the job's state through the API and reads the outcome from the manifest the
job committed; a job that ends without committing (a quota error, a
preempted or crashed worker) gets a failed manifest with Vertex's error.
Vertex sends the container's output to Cloud Logging; the run's own log is
in its folder as with every executor.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from batchcast.errors import ExecutorError, MissingExtra
from batchcast.executors.remote import Ended, RemoteExecutor
from batchcast.isolation.images import label_value, run_env
from batchcast.runs.manifest import RunRequest
from batchcast.spec import ServiceSpec
from batchcast.spec.base import CloudSettings


class VertexSettings(CloudSettings):
    """How the vertex executor runs the action: a Vertex AI CustomJob per run."""

    project: str | None = Field(None, description="The Google Cloud project of the job.")
    region: str = Field("europe-west1", description="The Vertex AI region.")
    machine_type: str = Field("n1-standard-4", description="The worker's machine type.")
    service_account: str | None = Field(None, description="The job's service account (email).")
    poll_interval: float = Field(30, gt=0, description="Seconds between reads of the job's state.")


ENDPOINT_ENV = "BATCHCAST_VERTEX_ENDPOINT"  # an emulator or fake API; anonymous credentials then
ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
         "JOB_STATE_PARTIALLY_SUCCEEDED")


@dataclass
class CustomJob:
    """A created CustomJob, by its resource name, and the client that reads it."""

    jobs: Any  # JobServiceClient
    name: str  # projects/P/locations/R/customJobs/ID
    poll_interval: float
    ended: Any = None  # the job as read once it ended


class VertexExecutor(RemoteExecutor[CustomJob]):
    name = "vertex"
    removed = "cancelled"

    def start(self, request: RunRequest, spec: ServiceSpec) -> CustomJob:
        vertex = spec.action(request.action).vertex
        spec.cloud_project(request.action, "vertex")
        jobs = jobs_client(vertex.region)
        created = jobs.create_custom_job(parent=f"projects/{vertex.project}/locations/{vertex.region}",
                                         custom_job=build_job(spec, request))
        return CustomJob(jobs, created.name, vertex.poll_interval)

    def wait(self, job: CustomJob, timeout: float) -> Ended | None:
        read = job.jobs.get_custom_job(name=job.name)
        if read.state.name not in ENDED:
            time.sleep(min(job.poll_interval, timeout))
            return None
        job.ended = read
        why = f": {read.error.message}" if read.error.message else ""
        # An ended job stays listed in Vertex, as every job does: nothing to remove.
        error = ExecutorError(f"Vertex AI CustomJob {read.name} ended {read.state.name}{why}, before the run committed",
                              "read the job's logs in Cloud Logging; fix the cause, then run it again")
        return Ended(error, remove=False)

    def save_log(self, job: CustomJob, request: RunRequest) -> None:
        if job.ended is None:  # cancelled past its timeout: its output is in Cloud Logging only
            return
        with open(request.log_path, "a") as log:
            log.write(f"Vertex AI CustomJob {job.ended.name}: {job.ended.state.name}; {job.ended.error.message}\n")

    def remove(self, job: CustomJob) -> None:
        _cancel(job.jobs, job.name)

    def describe(self, job: CustomJob) -> str:
        return f"Vertex AI CustomJob {job.name}"

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        vertex = spec.action(request.action).vertex
        jobs = jobs_client(vertex.region)
        from google.cloud import aiplatform_v1

        found = jobs.list_custom_jobs(request=aiplatform_v1.ListCustomJobsRequest(
            parent=f"projects/{vertex.project}/locations/{vertex.region}",
            filter=f'display_name="{display_name(request)}"'))
        for job in found:
            if job.state.name not in ENDED:
                _cancel(jobs, job.name)


def build_job(spec: ServiceSpec, request: RunRequest):
    """The CustomJob: one replica of the image with the run's env, the action's timeout, no restarts."""
    from google.cloud import aiplatform_v1 as v
    from google.protobuf.duration_pb2 import Duration

    action = spec.action(request.action)
    s = spec.service
    container = v.ContainerSpec(image_uri=spec.image_tag, env=[
        v.EnvVar(name=key, value=value) for key, value in run_env(spec, request, "vertex").items()])
    pool = v.WorkerPoolSpec(machine_spec=v.MachineSpec(machine_type=action.vertex.machine_type), replica_count=1,
                            container_spec=container)
    return v.CustomJob(
        display_name=display_name(request),
        labels={"managed-by": "batchcast", "batchcast-service": label_value(s.name),
                "batchcast-action": label_value(request.action)},
        job_spec=v.CustomJobSpec(worker_pool_specs=[pool], service_account=action.vertex.service_account or "",
                                 scheduling=v.Scheduling(timeout=Duration(seconds=int(action.timeout)),
                                                         restart_job_on_worker_restart=False)))


def display_name(request: RunRequest) -> str:
    return request.run_id.replace("/", "-")


def jobs_client(region: str):
    try:
        from google.cloud import aiplatform_v1
    except ImportError:
        raise MissingExtra("the vertex executor", "vertex") from None
    endpoint = os.environ.get(ENDPOINT_ENV)
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return aiplatform_v1.JobServiceClient(credentials=AnonymousCredentials(), transport="rest",
                                              client_options={"api_endpoint": endpoint})
    return aiplatform_v1.JobServiceClient(client_options={"api_endpoint": f"{region}-aiplatform.googleapis.com"})


def _cancel(jobs, name: str) -> None:
    from google.api_core.exceptions import FailedPrecondition, GoogleAPICallError, NotFound

    try:
        jobs.cancel_custom_job(name=name)
    except (NotFound, FailedPrecondition):
        pass  # gone, or already ended
    except GoogleAPICallError as exc:
        raise ExecutorError(f"could not cancel Vertex AI CustomJob {name}: {exc.message}",
                            f"cancel it by hand: gcloud ai custom-jobs cancel {name}") from None
