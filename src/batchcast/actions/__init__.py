"""Running one action: the context every action gets, and :func:`execute`.

- :mod:`~batchcast.actions.execution`: :func:`execute`, the same whichever executor calls it;
- :mod:`~batchcast.actions.context`: :class:`RunContext`, what every action gets;
- :mod:`~batchcast.actions.command`, :mod:`~batchcast.actions.training`, :mod:`~batchcast.actions.application`,
  :mod:`~batchcast.actions.evaluation`: the contracts and the actions' bodies;
- :mod:`~batchcast.actions.gate`: the promotion gate.
"""

from batchcast.actions.context import PythonEnv, RunContext, log
from batchcast.actions.execution import execute
from batchcast.runs.commit import Outcome

__all__ = ["Outcome", "PythonEnv", "RunContext", "execute", "log"]
