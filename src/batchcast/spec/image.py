"""``[image]``: the service's container image, what ``batchcast build`` writes and the container executors run."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from batchcast.spec.base import Section, fail


class ImageSection(Section):
    """The service's container image: what ``batchcast build`` writes and the container executors run."""

    base: str = Field("python:3.11-slim", description="Base image; it must have python3 with venv and pip.")
    registry: str = Field("localhost", description="Registry part of the tag {registry}/{project}/{name}:{version}.")
    project: str = Field("batchcast", description="Project part of the tag.")
    network: str = Field("host", description="container: podman/docker --network (host reaches 127.0.0.1 services).")
    extras: list[str] = Field(default_factory=list, description="batchcast extras installed in the image, e.g. gce.")
    exclude: list[str] = Field(default_factory=lambda: [".git", ".batchcast", ".venv", "__pycache__", "output"],
                               description="Names left out of the model repository copied into the image.")

    @field_validator("base", "registry", "project", "network")
    @classmethod
    def _reference(cls, value: str) -> str:
        # These reach a Dockerfile and an engine's command line: no spaces, newlines or quotes.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}", value):
            raise fail(f"'{value}' is not an image reference part", "use letters, digits and . _ / : @ -")
        return value

    @field_validator("extras")
    @classmethod
    def _extras(cls, value: list[str]) -> list[str]:
        for extra in value:
            if not re.fullmatch(r"[a-z0-9_-]{1,40}", extra):
                raise fail(f"'{extra}' is not an extra's name", "use e.g. gce or postgres")
        return value

