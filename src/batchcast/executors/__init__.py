"""Executors by name, imported only when a run asks for them."""

from __future__ import annotations

import importlib

from batchcast.errors import MissingExtra, SpecError
from batchcast.executors.base import Executor

# name -> (module:class, extra that installs what it needs)
BACKENDS: dict[str, tuple[str, str]] = {
    "inline": ("batchcast.executors.inline:InlineExecutor", ""),
    "local": ("batchcast.executors.local:LocalExecutor", ""),
    "container": ("batchcast.executors.container:ContainerExecutor", ""),
    "kubernetes": ("batchcast.executors.kubernetes:KubernetesExecutor", "kubernetes"),
    "vertex": ("batchcast.executors.vertex:VertexExecutor", "vertex"),
    "gce": ("batchcast.executors.gce:GceExecutor", "gce"),
}

__all__ = ["BACKENDS", "Executor", "get_executor"]


def get_executor(name: str) -> Executor:
    if name not in BACKENDS:
        raise SpecError(f"unknown executor '{name}'", f"use one of {', '.join(BACKENDS)}")
    target, extra = BACKENDS[name]
    module, cls = target.split(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError:
        raise MissingExtra(f"the {name} executor", extra) from None
