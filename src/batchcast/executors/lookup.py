"""Executors by name (the registry's rows), imported only when a run asks for them."""

from __future__ import annotations

from batchcast import registry
from batchcast.executors.base import Executor


def executor_class(name: str) -> type[Executor]:
    """The class of the executor ``name``, for its abilities; SpecError or MissingExtra as get_executor."""
    return registry.executor(name).load(f"the {name} executor")


def get_executor(name: str) -> Executor:
    """A new executor ``name``; SpecError for an unknown name, MissingExtra without its libraries."""
    return executor_class(name)()
