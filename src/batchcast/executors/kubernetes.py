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

import datetime as dt
import os
import time
from urllib.parse import urlsplit

from pydantic import Field

from batchcast.commit import ensure_committed
from batchcast.containers import run_env
from batchcast.errors import ExecutorError, MissingExtra, RunTimeout, SpecError
from batchcast.executors.base import Executor
from batchcast.runs import Manifest, RunRequest, RunStatus, run_id
from batchcast.spec import ServiceSpec
from batchcast.spec.base import Section


class KubernetesSettings(Section):
    """How the kubernetes executor runs the action (a batch/v1 Job per run), and an Airflow DAG's pods."""

    image: str | None = Field(None, description="The image; default the service's {registry}/{project}/{name}:{version}.")
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


class KubernetesExecutor(Executor):
    name = "kubernetes"

    def submit(self, request: RunRequest, spec: ServiceSpec) -> Manifest:
        client = _client()
        batch, core = client.BatchV1Api(), client.CoreV1Api()
        k8s = spec.action(request.action).kubernetes
        job = build_job(spec, request)
        name = job.metadata.name
        started = dt.datetime.now(dt.timezone.utc)
        batch.create_namespaced_job(k8s.namespace, job)
        try:
            failure = self._wait(batch, core, k8s, name, spec.action(request.action).timeout)
        except RunTimeout as exc:
            self._save_log(core, k8s.namespace, name, request)
            _delete(batch, k8s.namespace, name)
            return ensure_committed(spec, request, RunStatus.TIMED_OUT, started, exc)
        except BaseException:
            _delete(batch, k8s.namespace, name)
            raise
        self._save_log(core, k8s.namespace, name, request)
        if failure and failure[1]:  # stuck before it could run: nothing will ever commit
            _delete(batch, k8s.namespace, name)
        reason = failure[0] if failure else "the Job ended"
        return ensure_committed(spec, request, RunStatus.FAILED, started, ExecutorError(
            f"Kubernetes Job {k8s.namespace}/{name}: {reason}, before the run committed",
            "read the run's log and the Job's events (kubectl describe job); fix the cause, then run it again"))

    def cancel(self, request: RunRequest, spec: ServiceSpec) -> None:
        client = _client()
        _delete(client.BatchV1Api(), spec.action(request.action).kubernetes.namespace, job_name(spec, request))

    def _wait(self, batch, core, k8s, name: str, timeout: float) -> tuple[str, bool] | None:
        """Until the Job ends: None if it succeeded, else (why, stuck)."""
        from kubernetes import watch

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunTimeout(f"Kubernetes Job {k8s.namespace}/{name} ran longer than its timeout of "
                                 f"{timeout:g} s and was deleted", "raise [actions.*] timeout, or make the job faster")
            stream = watch.Watch().stream(batch.list_namespaced_job, k8s.namespace,
                                          field_selector=f"metadata.name={name}",
                                          timeout_seconds=max(1, int(min(k8s.poll_interval, remaining))))
            for event in stream:
                if event["type"] == "DELETED":
                    return "the Job was deleted (cancelled)", False
                ended = _job_ended(event["object"])
                if ended is not None:
                    return None if ended == "Complete" else (self._reason(core, k8s.namespace, name), False)
            stuck = _stuck(core, k8s.namespace, name)
            if stuck:
                return stuck, True

    def _reason(self, core, namespace: str, name: str) -> str:
        for pod in _pods(core, namespace, name):
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

    def _save_log(self, core, namespace: str, name: str, request: RunRequest) -> None:
        from kubernetes.client.exceptions import ApiException

        for pod in _pods(core, namespace, name):
            try:
                text = core.read_namespaced_pod_log(pod.metadata.name, namespace)
            except ApiException as exc:
                text = f"(no log from pod {pod.metadata.name}: {exc.status} {exc.reason})\n"
            with open(request.log_path, "a") as log:
                log.write(text)


def build_job(spec: ServiceSpec, request: RunRequest):
    """The V1Job for one run: the image, its env, Secrets by reference, resources, placement, no retries."""
    from kubernetes import client as k

    k8s = spec.action(request.action).kubernetes
    for key, url in (("storage", spec.storage_url), ("warehouse", spec.warehouse_url)):
        if urlsplit(url).password is not None:  # it would be readable by anyone who can read the Job
            raise SpecError(f"the {key} URL holds a password, which the Kubernetes Job would carry in clear",
                            f"put BATCHCAST__{key.upper()}__URL (or PGPASSWORD) in a Secret listed in "
                            f"[actions.{request.action}.kubernetes] secrets, and leave the password out of the URL here")
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
                                annotations={"batchcast/run-id": run_id(spec.service.name, spec.service.version,
                                                                        request.action, request.run_ts)}),
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
