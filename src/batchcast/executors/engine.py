"""The executor of an engine that scores shards (Beam, Spark): the local executor with a child of its own.

Kept apart from :mod:`batchcast.executors.sharded`, which imports Arrow: loading a spec imports the settings'
modules, and must not import Arrow.
"""

from __future__ import annotations

from batchcast.errors import SpecError
from batchcast.executors.local import LocalExecutor


class ShardedExecutor(LocalExecutor):
    """The local executor whose child scores the application on an engine (``engine``: its name in messages)."""

    engine = ""

    def submit(self, request, spec):
        if spec.model.contract != "python" or spec.model.mlflow or spec.action(request.action).kind != "application":
            raise SpecError(f"{spec.file.name} [actions.{request.action}] executor = \"{self.name}\": {self.engine} "
                            "scores the application of a model with an entrypoint (not an MLflow model)",
                            "use executor = \"local\" for this action")
        return super().submit(request, spec)
