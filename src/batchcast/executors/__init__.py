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
}

__all__ = ["BACKENDS", "Executor", "get_executor"]


# Executors that run only as rendered Airflow tasks so far.
AIRFLOW_ONLY = {"gce": "a Compute Engine start/wait/check chain"}


def get_executor(name: str) -> Executor:
    if name in AIRFLOW_ONLY:
        raise SpecError(f"the {name} executor runs as {AIRFLOW_ONLY[name]} in Airflow, not from this command",
                        "run 'batchcast airflow render', or pass --executor local to run here")
    if name not in BACKENDS:
        raise SpecError(f"unknown executor '{name}'", f"use one of {', '.join(BACKENDS)}")
    target, extra = BACKENDS[name]
    module, cls = target.split(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError:
        raise MissingExtra(f"the {name} executor", extra) from None
