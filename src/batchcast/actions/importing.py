"""The import of an MLflow model: the training action of a spec whose ``[model] mlflow`` names the model.

It resolves the name once (the registry's version for an alias), downloads the
model into ``output/mlflow``, and commits it as a training run: its files get
their sha256 in the manifest, what it resolved to is recorded, and the run
becomes the champion, since the registry (or the folder) chose the model.
Nothing of the model runs here, so no environment is built for it.
"""

from __future__ import annotations

from batchcast.actions.context import RunContext, log
from batchcast.errors import RegistryError
from batchcast.model import files, pyfunc
from batchcast.runs import promotion
from batchcast.runs.commit import Outcome


def run(ctx: RunContext, outcome: Outcome) -> None:
    model, tracking = ctx.spec.model, ctx.spec.mlflow.tracking_uri
    resolved = pyfunc.resolve(model.mlflow, tracking, ctx.spec.model_path)
    record = {key: value for key, value in resolved.items() if key != "fetch"}
    outcome.inputs["model"] = record
    folder = ctx.workdir / "output"
    folder.mkdir(parents=True, exist_ok=True)
    pyfunc.fetch(resolved, tracking, folder / pyfunc.FOLDER)
    described = pyfunc.describe(folder / pyfunc.FOLDER, model.features, model.mlflow)
    files.write_meta(folder, {**described, "format": "mlflow", "file": pyfunc.FOLDER, "label": model.label,
                              "input_format": "pandas", "mlflow": record})
    outcome.files.update(ctx.store.put_dir(ctx.run_id, "output", folder))
    source = f"{model.mlflow}" + (f" (version {record['version']})" if record.get("version") else "")
    outcome.promotion = {"alias": promotion.CHAMPION, "decision": "promoted", "reason": f"imported {source}",
                         "basis": "[model] mlflow names the model", "by": f"import of {source}"}
    log.info("imported %s: %d features (%s)", source, len(described["features"]), ", ".join(described["features"]))


def follow(service, date) -> None:
    """Before an application: resolve ``[model] mlflow`` again, and import it first if it names another model.

    So each run applies what the registry's alias names when it starts (resolved once); a registry that is
    down raises RegistryUnavailable, which the scheduler retries, rather than applying a model it replaced.
    """
    spec = service.spec
    resolved = pyfunc.resolve(spec.model.mlflow, spec.mlflow.tracking_uri, spec.model_path)
    held = promotion.current(service.store, service.name, service.version, promotion.CHAMPION)
    if held is not None and pyfunc.same(resolved, held.inputs.get("model")):
        return
    imported = service.run("training", date)
    if not imported.succeeded:
        raise RegistryError(f"importing {spec.model.mlflow} failed (run {imported.run_id}): "
                            f"{(imported.error or {}).get('message')}", "fix the cause, then run it again")
