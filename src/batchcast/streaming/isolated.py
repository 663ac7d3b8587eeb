"""Starting ``batchcast stream``: inside the model's isolated environment, or (``--inline``) in this one.

The environment is the one ``serve`` uses, plus the broker clients the
spec's URLs need; the CLI then replaces itself with the stream (``exec``),
so the process that gets SIGTERM and SIGHUP is the one consuming.
"""

from __future__ import annotations

from importlib.util import find_spec

from batchcast import registry
from batchcast.errors import MissingExtra, SpecError
from batchcast.isolation.environments import exec_module
from batchcast.model import pyfunc

# The libraries batchcast stream's process imports, by the broker schemes that need them.
LIBRARIES = {"": ("prometheus_client", "orjson"), "kafka": ("confluent_kafka",),
             "pubsub": ("google-cloud-pubsub", "grpcio")}
MODULES = {"prometheus_client": "prometheus_client", "orjson": "orjson", "confluent_kafka": "confluent_kafka",
           "google-cloud-pubsub": "google.cloud.pubsub_v1", "grpcio": "grpc"}


def libraries(spec) -> tuple[str, ...]:
    """The packages the stream's process needs: the metrics' and every broker client the spec's URLs name."""
    schemes = {registry.scheme_of(url) for url in spec.stream.urls}
    return LIBRARIES[""] + tuple(p for s in sorted(schemes) for p in LIBRARIES[s])


def stream(service, ref: str | None, host: str = "127.0.0.1", port: int | None = None,
           guarantee: str | None = None, *, inline: bool = False) -> None:
    """``batchcast stream``: here with ``inline``, else in the model's environment (never returning)."""
    spec = service.spec
    if spec.stream is None:
        raise SpecError(f"{spec.file} has no [stream] table", "add [stream] with source and topic or table")
    for name in libraries(spec):
        try:
            found = find_spec(MODULES[name])
        except ModuleNotFoundError:
            found = None
        if found is None:
            scheme = next((s for s, names in LIBRARIES.items() if name in names and s), "kafka")
            raise MissingExtra("batchcast stream", registry.BROKERS[scheme].extra)
    if inline:
        from batchcast.streaming.runner import run

        run(str(spec.file.resolve()), ref, host, port, guarantee)
        return
    used = service.model_for(ref)  # no model to stream with: say so now, not after building an environment
    options = (("--port", port), ("--model", ref), ("--guarantee", guarantee))
    argv = ["--host", host] + [part for flag, value in options if value is not None for part in (flag, str(value))]
    exec_module(spec, libraries(spec), "batchcast.streaming", argv, pyfunc.requirements_for(spec, used))
