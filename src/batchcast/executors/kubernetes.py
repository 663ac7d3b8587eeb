"""A Kubernetes ``batch/v1`` Job per run, through the official ``kubernetes`` client.

The Job runs the service's image (``batchcast build``) with ``backoffLimit``
0, so retrying stays the scheduler's decision. This process watches the
Job until it completes or fails, checking its pod between watch calls for
what never becomes a Job event (an image that cannot be pulled), saves the
pod's log, and reads the outcome from the manifest the pod committed. A pod
that ends without committing (OOMKilled, evicted) gets a failed manifest
with Kubernetes' reason. Credentials come from Secrets by reference, never
from values in the Job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from batchcast.errors import ExecutorError, MissingExtra, SpecError
from batchcast.executors.remote import Ended, RemoteExecutor
from batchcast.isolation.images import run_env
from batchcast.redaction import has_secret
from batchcast.runs.manifest import RunRequest
from batchcast.spec import ServiceSpec
from batchcast.spec.base import Section


class KubernetesSettings(Section):
    """How the kubernetes executor runs the action (a batch/v1 Job per run), and an Airflow DAG's pods."""

    image: str | None = Field(
        None, description="The image; default the service's {registry}/{project}/{name}:{version}.")
    namespace: str = Field("default", description="The Job's namespace.")
    service_account: str | None = Field(None, description="The pod's service account.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels, e.g. a node pool's.")
    resources: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="{requests = {cpu, memory}, limits = {...}}.")
    secrets: list[str] = Field(default_factory=list, description="Secrets whose keys become env vars (credentials).")
    ttl_seconds_after_finished: int = Field(3600, ge=0, description="Kubernetes deletes the finished Job after this.")
    poll_interval: float = Field(10, gt=0, description="Seconds per watch call, between checks of the Job's pod.")


STUCK = {"ErrImagePull": "the image cannot be pulled", "ImagePullBackOff": "the image cannot be pulled",
         "InvalidImageName": "the image name is invalid",
         "CreateContainerConfigError": "a Secret or ConfigMap it needs is missing"}


@dataclass
class Job:
    """A created Job, and the clients that watch it and its pods."""

    batch: Any  # BatchV1Api
    core: Any  # CoreV1Api
    k8s: KubernetesSettings
    name: str


class KubernetesExecutor(RemoteExecutor[Job]):
    name = "kubernetes"

    def start(self, request: RunRequest, spec: ServiceSpec) -> Job:
        client = _client()
        body = build_job(spec, request)
        job = Job(client.BatchV1Api(), client.CoreV1Api(), spec.action(request.action).kubernetes, body.metadata.name)
        job.batch.create_namespaced_job(job.k8s.namespace, body)
        return job

    def wait(self, job: Job, timeout: float) -> Ended | None:
        """One watch call, then a look at the pod for what never becomes a Job event (an image never pulled)."""
        from kubernetes import watch

        stream = watch.Watch().stream(job.batch.list_namespaced_job, job.k8s.namespace,
                                      field_selector=f"metadata.name={job.name}",
                                      timeout_seconds=max(1, int(min(job.k8s.poll_interval, timeout))))
        for event in stream:
            if event["type"] == "DELETED":
                return self._ended(job, "the Job was deleted (cancelled)")
            ended = _job_ended(event["object"])
            if ended is not None:
                return self._ended(job, "the Job ended" if ended == "Complete" else self._reason(job))
        stuck = _stuck(job.core, job.k8s.namespace, job.name)
        # Stuck before it could run: nothing will ever commit, and the Job would wait for its TTL.
        return self._ended(job, stuck, remove=True) if stuck else None

    def save_log(self, job: Job, request: RunRequest) -> None:
        from kubernetes.client.exceptions import ApiException

        for pod in _pods(job.core, job.k8s.namespace, job.name):
            try:
                text = job.core.read_namespaced_pod_log(pod.metadata.name, job.k8s.namespace)
            except ApiException as exc:
                text = f"(no log from pod {pod.metadata.name}: {exc.status} {exc.reason})\n"
            with open(request.log_path, "a") as log:
                log.write(text)

    def remove(self, job: Job) -> None:
        _delete(job.batch, job.k8s.namespace, job.name)

    def describe(self, job: Job) -> str:
        return f"Kubernetes Job {job.k8s.namespace}/{job.name}"

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        client = _client()
        _delete(client.BatchV1Api(), spec.action(request.action).kubernetes.namespace, job_name(spec, request))

    def _ended(self, job: Job, reason: str, remove: bool = False) -> Ended:
        return Ended(ExecutorError(
            f"{self.describe(job)}: {reason}, before the run committed",
            "read the run's log and the Job's events (kubectl describe job); fix the cause, then run it again"),
            remove=remove)

    def _reason(self, job: Job) -> str:
        for pod in _pods(job.core, job.k8s.namespace, job.name):
            if pod.status.reason == "Evicted":
                return f"pod {pod.metadata.name} was evicted: {pod.status.message}"
            for status in pod.status.container_statuses or []:
                ended = status.state.terminated if status.state else None
                if ended and ended.reason == "OOMKilled":
                    return (f"pod {pod.metadata.name} was OOMKilled (out of memory, exit code {ended.exit_code}); "
                            "raise its memory limit in [actions.*.kubernetes] resources")
                if ended:
                    return f"pod {pod.metadata.name} exited with code {ended.exit_code} ({ended.reason})"
        return "the Job failed"


def build_job(spec: ServiceSpec, request: RunRequest):
    """The V1Job for one run: the image, its env, Secrets by reference, resources, placement, no retries."""
    from kubernetes import client as k

    k8s = spec.action(request.action).kubernetes
    for key, url in (("storage", spec.storage_url), ("warehouse", spec.warehouse_url)):
        if has_secret(url):  # it would be readable by anyone who can read the Job
            raise SpecError(f"the {key} URL holds a password, which the Kubernetes Job would carry in clear",
                            f"put BATCHCAST__{key.upper()}__URL (or PGPASSWORD) in a Secret listed in "
                            f"[actions.{request.action}.kubernetes] secrets, and leave the password out of the URL "
                            "here")
    labels = {"app.kubernetes.io/managed-by": "batchcast", "batchcast/service": spec.service.name,
              "batchcast/version": spec.service.version, "batchcast/action": request.action}
    container = k.V1Container(
        name="run", image=k8s.image or spec.image_tag,
        env=[k.V1EnvVar(name=key, value=value) for key, value in run_env(spec, request, "kubernetes").items()],
        env_from=[k.V1EnvFromSource(secret_ref=k.V1SecretEnvSource(name=s)) for s in k8s.secrets] or None,
        resources=k.V1ResourceRequirements(**k8s.resources) if k8s.resources else None)
    pod = k.V1PodSpec(containers=[container], restart_policy="Never", service_account_name=k8s.service_account,
                      node_selector=k8s.node_selector or None)
    return k.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=k.V1ObjectMeta(name=job_name(spec, request), labels=labels,
                                annotations={"batchcast/run-id": request.run_id}),
        spec=k.V1JobSpec(backoff_limit=0, ttl_seconds_after_finished=k8s.ttl_seconds_after_finished,
                         template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=pod)))


def job_name(spec: ServiceSpec, request: RunRequest) -> str:
    """A DNS-1123 name (63 characters at most), unique per run."""
    s = spec.service
    stem = f"bc-{s.name}-{s.version}-{request.action}".lower().replace("_", "-").replace(".", "-")[:40].rstrip("-")
    return f"{stem}-{request.run_ts.lower()}"


def _client():
    try:
        from kubernetes import client, config
    except ImportError:
        raise MissingExtra("the kubernetes executor", "kubernetes") from None
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            # KUBECONFIG read now, not when the client was imported; else ~/.kube/config
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        except (config.ConfigException, OSError) as exc:
            raise ExecutorError(f"no Kubernetes cluster configured: {exc}",
                                "set KUBECONFIG, or run batchcast inside the cluster") from None
    return client


def _job_ended(job) -> str | None:
    for condition in (job.status.conditions or []) if job.status else []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type
    return None


def _pods(core, namespace: str, name: str) -> list:
    return core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items


def _stuck(core, namespace: str, name: str) -> str | None:
    for pod in _pods(core, namespace, name):
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason in STUCK:
                return f"pod {pod.metadata.name}: {waiting.reason}, {STUCK[waiting.reason]} ({waiting.message})"
    return None


def _delete(batch, namespace: str, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:  # Background: the pods go with the Job
        batch.delete_namespaced_job(name, namespace, body=client.V1DeleteOptions(propagation_policy="Background"))
    except ApiException as exc:
        if exc.status != 404:
            raise ExecutorError(f"could not delete Kubernetes Job {namespace}/{name}: {exc.status} {exc.reason}",
                                f"delete it by hand: kubectl delete job -n {namespace} {name}") from None
