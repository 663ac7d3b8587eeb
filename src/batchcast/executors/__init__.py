"""Executors: the port (:mod:`~batchcast.executors.base`) and one module per executor.

:func:`get_executor` finds one by name through the registry's rows
(:mod:`~batchcast.executors.lookup`), importing its module only when a run asks for it.
"""

from batchcast.executors.base import Executor
from batchcast.executors.lookup import executor_class, get_executor

__all__ = ["Executor", "executor_class", "get_executor"]
