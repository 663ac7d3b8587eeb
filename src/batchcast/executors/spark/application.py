"""An application run by the spark executor: Spark's tasks score the shards, then one transaction publishes them.

The shards, their scoring and their publishing are every engine's
(:mod:`batchcast.executors.sharded`). Here the child is Spark's driver (or a
Spark Connect server's client): it checks the properties it was given,
starts a session whose executors run the packed environment's Python, and
runs one job of one task per shard (``mapInArrow`` over the shards'
indexes, :mod:`batchcast.executors.spark.tasks`) under a tag, which a stop or
the deadline interrupts before the session stops.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import os
import sys
import threading
import urllib.request

from batchcast.actions.context import RunContext, log
from batchcast.errors import IntegrityError, ModelError, RunTimeout, SpecError
from batchcast.executors import sharded
from batchcast.executors.shards import collect
from batchcast.runs.commit import Outcome
from batchcast.runs.store import sha256_file

# Properties whose names are the user's to make up (an environment variable, a catalog, a label): Spark registers
# no entry for them, so only their prefix is checked.
OPEN = ("spark.executorEnv.", "spark.hadoop.", "spark.sql.catalog.", "spark.driver.resource.",
        "spark.executor.resource.", "spark.kubernetes.driver.label.", "spark.kubernetes.executor.label.",
        "spark.kubernetes.driver.annotation.", "spark.kubernetes.executor.annotation.",
        "spark.kubernetes.driverEnv.", "spark.kubernetes.driver.secrets.", "spark.kubernetes.executor.secrets.",
        "spark.kubernetes.node.selector.", "spark.yarn.appMasterEnv.", "spark.metrics.conf.")
# Scala objects whose loading registers their properties (Kubernetes', YARN's): the core's are registered already.
MODULES = ("org.apache.spark.deploy.k8s.Config$", "org.apache.spark.deploy.yarn.config.package$")


def run(ctx: RunContext, outcome: Outcome) -> None:
    from batchcast.executors.spark.executor import SparkSettings

    settings: SparkSettings = ctx.action.spark
    here, store_here = settings.on_this_machine(), sharded.on_this_machine(ctx.store.url)
    shard_list, job, schema = sharded.prepare(
        ctx, outcome, who=f"spark master = '{settings.where}'", remote=not here, from_store=not store_here,
        shipped=not here, parts=settings.shards or 2 * (settings.cores() or 4), workers=None)
    executors = ctx.request.environment.get("executors") or {}
    outcome.inputs["spark"] = {"master": settings.where, "environment": executors.get("key"),
                               "model": "folder" if store_here else "store"}  # where the executors load it from
    spark = _connected(ctx, settings, executors) if settings.remote else _started(ctx, settings, executors)
    try:
        app = spark.conf.get("spark.app.id")
        log.info("scoring %d shards on Spark (%s, application %s)", len(shard_list), settings.where, app)
        outcome.inputs["spark"]["application_id"] = app
        sidecars = _score(ctx, outcome, spark, shard_list, job)
    finally:
        spark.stop()  # the application (a Connect session) ends: a stopped run leaves nothing running there
    sharded.publish(ctx, outcome, sidecars, schema, "the Spark job's shards")


def _started(ctx: RunContext, settings, executors: dict):
    """A classic session: this process is Spark's driver, its JVM started here."""
    from pyspark.sql import SparkSession

    conf = _conf(ctx, settings, executors)
    _check_conf(conf, settings.conf, f"{ctx.where[:-1]}.spark]")  # before any application starts on the cluster
    return SparkSession.builder.config(conf=conf).getOrCreate()


def _connected(ctx: RunContext, settings, executors: dict):
    """A Spark Connect session: the server is the driver. The pack goes as a session artifact and the session's
    Python workers run it (``spark.sql.execution.pyspark.python``); only runtime properties can be set."""
    from pyspark.sql import SparkSession

    archive = _verified(executors)
    spark = SparkSession.builder.remote(settings.remote).getOrCreate()
    try:
        for key, value in _given(settings).items():
            if not spark.conf.isModifiable(key):
                raise SpecError(f"{ctx.where[:-1]}.spark] conf.{key}: a Spark Connect session cannot set it "
                                "(not a runtime SQL property Spark knows)",
                                "set it where the Connect server starts, or remove it")
            spark.conf.set(key, value)
        spark.addArtifacts(f"{archive}#environment", archive=True)
        spark.conf.set("spark.sql.execution.pyspark.python", "environment/bin/python")
    except BaseException:
        spark.stop()
        raise
    return spark


def _check_conf(conf, given: dict, where: str) -> None:
    """Start Spark's JVM with ``conf`` (no application yet; the session reuses it, so the driver's own
    properties apply), then refuse a property of ``given`` Spark does not know: Spark keeps a misspelt one
    without a word."""
    from pyspark import SparkContext

    SparkContext._ensure_initialized(conf=conf)
    jvm = SparkContext._jvm
    for module in MODULES:
        package, name = module.rsplit(".", 1)
        with contextlib.suppress(Exception):  # a Spark without that module: its properties are not known here
            getattr(_package(jvm, package), name).__getattr__("MODULE$")
    entries = _package(jvm, "org.apache.spark.internal.config")
    known = set(getattr(entries, "ConfigEntry$").__getattr__("MODULE$").knownConfigs().keySet())
    for key in given:
        if key not in known and not key.startswith(OPEN):
            close = difflib.get_close_matches(key, known, n=1)
            raise SpecError(f"{where} conf.{key}: Spark has no such property",
                            f"did you mean '{close[0]}'?" if close else "see Spark's configuration reference")


def _package(jvm, dotted: str):
    found = jvm
    for part in dotted.split("."):
        found = getattr(found, part)
    return found


def _conf(ctx: RunContext, settings, executors: dict):
    """The session's SparkConf: the executors' Python, the loopback for a cluster of this machine, the user's."""
    from pyspark import SparkConf

    conf = {"spark.ui.showConsoleProgress": "false"}  # bars of \r in the run's log
    if settings.where.startswith("local"):
        os.environ["PYSPARK_PYTHON"] = executors.get("python") or sys.executable  # the model's environment here
    else:
        archive = _verified(executors)
        os.environ["PYSPARK_PYTHON"] = "./environment/bin/python"  # where each executor unpacked the archive
        conf["spark.archives"] = ",".join(filter(None, [str(settings.conf.get("spark.archives", "")),
                                                        f"{archive}#environment"]))
    if settings.on_this_machine():  # the driver's ports (its UI, its block manager) only on the loopback
        conf.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    return (SparkConf().setMaster(settings.where).setAppName(f"batchcast {ctx.spec.service.name} {ctx.run_id}")
            .setAll(list({**conf, **_given(settings)}.items())))


def _given(settings) -> dict[str, str]:
    """The user's properties as Spark takes them (``true``, not ``True``); the archives are joined with ours."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.conf.items()
            if k != "spark.archives"}


def _verified(executors: dict) -> str:
    archive = executors.get("archive")
    if not archive or sha256_file(archive) != executors.get("sha256"):
        raise IntegrityError(f"the packed environment {archive} does not match its sha256",
                             f"delete it and its .sha256 beside it (key {executors.get('key')}); the next run "
                             "packs it again")
    return archive


def _score(ctx: RunContext, outcome: Outcome, spark, shard_list: list[dict], job: dict) -> list[dict]:
    """Run the job (one task per shard) in a thread under a tag, so that a stop or the deadline can cancel it."""
    from batchcast.executors.spark import tasks
    from batchcast.executors.spark.executor import GRACE_S

    tag = f"batchcast-{ctx.run_id.replace('/', '-')}"
    # n ids in n partitions: one shard each, by its index; the shards travel in the function.
    frame = spark.range(0, len(shard_list), numPartitions=len(shard_list)).mapInArrow(
        functools.partial(tasks.score_batches, job, shard_list), "sidecar string")
    ended: dict = {}

    def job_thread() -> None:
        try:
            spark.addTag(tag)  # this thread's operations
            if not ctx.action.spark.remote:  # a cancel also interrupts the tasks' threads (their Python workers)
                spark.sparkContext.setInterruptOnCancel(True)
            ended["rows"] = frame.collect()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            ended["error"] = exc

    thread = threading.Thread(target=job_thread, name="spark-job", daemon=True)
    thread.start()
    seconds = sharded.seconds_left(ctx, GRACE_S)
    try:
        thread.join(seconds)  # a signal's exception (a stop, the deadline) interrupts the wait
    except BaseException:
        _cancel(spark, tag, thread)
        raise
    if thread.is_alive():
        _cancel(spark, tag, thread)
        raise RunTimeout(f"the Spark job was still running after {seconds:.0f} s, and was cancelled",
                         "raise [actions.*] timeout, or give the job more executors")
    if "error" in ended:
        raise ModelError(f"the Spark job failed: {sharded.worker_message(ended['error'])}",
                         "read the run's log; nothing was published") from ended["error"]
    outcome.inputs["spark"]["tasks"] = {} if ctx.action.spark.remote else _tasks_by_executor(spark)
    return collect(job["out"], len(shard_list))


def _cancel(spark, tag: str, thread: threading.Thread) -> None:
    try:
        spark.interruptTag(tag)
        log.warning("cancelled the Spark job tagged %s", tag)
    except Exception as exc:  # noqa: BLE001 - the interrupt is what the caller must see
        log.error("could not cancel the Spark job tagged %s: %s", tag, exc)
    thread.join(20)


def _tasks_by_executor(spark) -> dict[str, int]:
    """Completed tasks per executor id, from the driver's own REST API (the application runs this one job):
    where the shards were scored. (A Connect session's driver is the server's, shared: not counted.)"""
    url = spark.sparkContext.uiWebUrl
    if not url:  # spark.ui.enabled = false
        return {}
    try:
        with urllib.request.urlopen(f"{url}/api/v1/applications/{spark.sparkContext.applicationId}/executors",
                                    timeout=10) as answer:
            return {e["id"]: e["completedTasks"] for e in json.load(answer) if e["id"] != "driver"}
    except OSError as exc:  # the record is a nicety: the job succeeded
        log.warning("could not read the tasks' executors from %s: %s", url, exc)
        return {}
