"""A Kafka URL, ``kafka://host:port[,host:port]/topic[?property=value]``, and the client configuration it gives.

The query's properties are librdkafka's (``security.protocol=SASL_SSL``,
``sasl.mechanism=PLAIN``); a value ``env:NAME`` is read from the environment,
so a password never sits in ``batchcast.toml``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from batchcast.errors import SpecError

TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
HOST = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")
PROPERTY = re.compile(r"[a-z][a-z0-9._]*")


@dataclass(frozen=True)
class KafkaUrl:
    """The brokers, the topic and the librdkafka properties of a ``kafka://`` URL."""

    bootstrap: str
    topic: str
    properties: dict[str, str]

    @classmethod
    def parse(cls, url: str, where: str) -> KafkaUrl:
        parts = urlsplit(url)
        topic = parts.path.lstrip("/")
        hosts = parts.netloc.split(",") if parts.netloc else []
        if not hosts or not all(HOST.fullmatch(h) for h in hosts):
            raise SpecError(f"{where} = '{url}' names no broker as host:port",
                            "write kafka://host:9092/topic (several brokers: kafka://h1:9092,h2:9092/topic)")
        if not TOPIC.fullmatch(topic):
            raise SpecError(f"{where} = '{url}': '{topic}' is not a Kafka topic name",
                            "use 1 to 249 letters, digits, '.', '_' or '-' after the broker")
        properties = dict(parse_qsl(parts.query, keep_blank_values=True))
        bad = next((k for k in properties if not PROPERTY.fullmatch(k)), None)
        if bad is not None:
            raise SpecError(f"{where}: '{bad}' is not a librdkafka property name",
                            "use names such as security.protocol or sasl.mechanism")
        return cls(",".join(hosts), topic, properties)

    def config(self) -> dict[str, str]:
        """The client configuration: the brokers and the URL's properties, ``env:NAME`` values read."""
        config = {"bootstrap.servers": self.bootstrap}
        for key, value in self.properties.items():
            if value.startswith("env:"):
                name = value[4:]
                if name not in os.environ:
                    raise SpecError(f"Kafka property {key} = env:{name}, but {name} is not set",
                                    f"export {name}, or give the value in the URL")
                value = os.environ[name]
            config[key] = value
        return config
