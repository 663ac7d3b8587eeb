"""``executor = "spark"``: an application scored on Apache Spark, then published by batchcast in one transaction.

The run is a child process, as with the local executor: Spark's driver, in
an environment of its own (the model's requirements, batchcast's runtime
and pyspark). The executors' Python is the model's environment without
pyspark, packed once per requirement set (:mod:`batchcast.isolation.packing`)
and shipped with ``spark.archives``: no library is installed on the
workers. The child (:mod:`batchcast.executors.spark.application`) has Spark
score the shards, then publishes them like any run.
"""

from __future__ import annotations

import os
import re

from pydantic import Field, field_validator, model_validator

from batchcast.executors.engine import ShardedExecutor
from batchcast.spec.base import Section, fail

PYSPARK = "pyspark{extras}==4.3.0"  # the version tested: the cluster's Spark must match it (Spark's own rule)
GRACE_S = 30.0  # before the timeout: time to cancel the job and commit the run
HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?"
MASTER = re.compile(rf"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|spark://{HOST}:\d+(,{HOST}:\d+)*|yarn"
                    rf"|k8s://https?://{HOST}(:\d+)?")
REMOTE = re.compile(rf"sc://{HOST}(:\d+)?(/;[A-Za-z0-9_.=;\-]*)?")
CONF_KEY = re.compile(r"spark(\.[A-Za-z0-9_\-]+)+")
# Set by batchcast from the other settings: a conf value would fight them.
OURS = {"spark.master": "master", "spark.remote": "remote", "spark.app.name": "the run",
        "spark.pyspark.python": "the packed environment", "spark.pyspark.driver.python": "the child"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SparkSettings(Section):
    """Where the spark executor's job runs: a cluster's master (or local cores) and Spark properties."""

    master: str | None = Field(None, description="local[N], spark://host:port, yarn or k8s://https://host:port; "
                               "default local[*] (this machine's cores).")
    remote: str | None = Field(None, description="A Spark Connect server, sc://host:15002, instead of a master.")
    conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Spark properties (spark.executor.memory = \"2g\", ...); a name Spark "
        "does not know is refused when the run starts.")
    shards: int | None = Field(None, ge=1, description="Parts a query input is split into (by a hash of the "
                                                      "ids); default twice the cores the master names, else 8.")

    @field_validator("master")
    @classmethod
    def _master(cls, value: str | None) -> str | None:
        if value is not None and not MASTER.fullmatch(value):
            raise fail(f"master = '{value}' is not a Spark master URL",
                       "use local[4], spark://host:7077, yarn or k8s://https://host:443")
        return value

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str | None) -> str | None:
        if value is not None and re.search(r"[/;]token=", value):  # said without the value
            raise fail("remote carries a token: batchcast.toml holds no secret",
                       "remove ;token=... and set SPARK_CONNECT_AUTHENTICATE_TOKEN in the run's environment")
        if value is not None and not REMOTE.fullmatch(value):
            raise fail(f"remote = '{value}' is not a Spark Connect URL", "use sc://host:15002")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> SparkSettings:
        if self.master and self.remote:
            raise fail("both master and remote are set", "give a master, or a Spark Connect remote, not both")
        return self

    @field_validator("conf")
    @classmethod
    def _conf(cls, value: dict) -> dict:
        for key in value:
            if not CONF_KEY.fullmatch(key):  # Spark itself warns and drops a property not named spark.*
                raise fail(f"conf.{key}: Spark properties are named spark.*", "e.g. spark.executor.memory")
            if key in OURS:
                raise fail(f"conf.{key} is set by batchcast from {OURS[key]}", "remove it from conf")
        return value

    @property
    def where(self) -> str:
        return self.remote or self.master or "local[*]"

    def on_this_machine(self) -> bool:
        """Whether the executors run here, reading what this machine holds (files, the fetched model)."""
        where = self.where
        if where.startswith("local"):
            return True
        hosts = re.findall(rf"(?:spark|sc)://({HOST})|,({HOST}):", where)
        return bool(hosts) and all((a or b) in LOOPBACK for a, b in hosts)

    def cores(self) -> int | None:
        """The cores the master or conf names, if it names them."""
        if self.where == "local":  # Spark's plain "local" is one thread
            return 1
        found = re.fullmatch(r"local\[(\*|\d+)(,\d+)?\]", self.where)
        if found:
            return os.cpu_count() or 1 if found.group(1) == "*" else int(found.group(1))
        cores = self.conf.get("spark.cores.max")
        return int(cores) if str(cores).isdigit() else None


class SparkExecutor(ShardedExecutor):
    name = "spark"
    engine = "Spark"
    worker = "batchcast.executors.spark.child"

    def grace(self, spec, request) -> float:
        return GRACE_S  # the child cancels the job and stops its application on SIGTERM; the JVM is its child

    def environment(self, spec, request=None):
        from batchcast.isolation.environments import ensure_environment
        from batchcast.isolation.packing import packed

        executors = super().environment(spec, request)  # the model's environment, as the local executor's
        # The request's action (whatever --executor said), else every action the spec gives this executor.
        actions = [spec.action(request.action)] if request else [
            a for a in spec.actions.values() if a.executor == self.name]
        # A Spark Connect client needs gRPC and the rest of pyspark's connect extra.
        connect = any(a.spark.remote for a in actions)
        driver = ensure_environment(spec, True, added=(PYSPARK.format(extras="[connect]" if connect else ""),))
        driver.executors = {"key": executors.path.name, "python": str(executors.path / "bin" / "python"),
                            "packages": executors.packages}
        if any(not a.spark.where.startswith("local") for a in actions):
            archive = packed(executors)  # a cluster's executors get it; local[N] runs the environment itself
            driver.executors.update(archive=str(archive.path), sha256=archive.sha256, pack_s=round(archive.pack_s, 3))
        return driver
