"""MLflow models: resolved, imported into a training run's folder, and loaded as pyfunc models.

``[model] mlflow`` names the model: a folder, ``runs:/RUN_ID/PATH``, or
``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` in a registry. An import
(the spec's training action) resolves it once, downloads it into
``output/mlflow`` and records what it resolved to (the registry version, its
MLflow run) in ``model_meta.json`` and the manifest; the store's checksums
then cover every file of it, as they cover a trained model, and every path
that scores loads it through :func:`batchcast.model.loading.load_run`.

The environment a model is applied in is built from the model's own
``requirements.txt``, with ``mlflow`` read as ``mlflow-skinny`` (the same
version): full MLflow brings a server, and pins ``pyarrow<26`` against
batchcast's runtime; pyfunc loading needs neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchcast.errors import MissingExtra, ModelError, RegistryError, RegistryUnavailable

if TYPE_CHECKING:
    from batchcast.runs.manifest import Manifest
    from batchcast.spec import ServiceSpec

FOLDER = "mlflow"  # the model's folder inside a run's output
# A tracking server that is down must cost seconds, not MLflow's default of 7 retries with a doubling backoff.
# Nor may it print run links on stdout, where `--json` writes its document.
QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
         "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
KINDS = {"double": "number", "float": "number", "long": "number", "integer": "number", "boolean": "bool",
         "string": "string"}
_MLFLOW = re.compile(r"^\s*mlflow(?=\s*(\[|[<>=!~;]|$))", re.MULTILINE)


def client(tracking_uri: str | None, what: str):
    """An MLflow client of ``tracking_uri`` (None: MLFLOW_TRACKING_URI), failing fast when it is down."""
    for key, value in QUICK.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError:
        raise MissingExtra(what, "mlflow") from None
    if tracking_uri:  # models:/ downloads read the process's URI, whatever they are given
        mlflow.set_tracking_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def translated(exc: Exception, what: str) -> RegistryError:
    """MLflow's exception as batchcast's: unreachable (transient) or refused, in one line naming ``what``."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if re.search(r"Max retries exceeded|Connection refused|Failed to establish|timed out|ConnectionError", str(exc)):
        return RegistryUnavailable(f"{what}: the MLflow tracking server did not answer: {text[:300]}",
                                   "start it, or check [mlflow] tracking_uri (or MLFLOW_TRACKING_URI)")
    return RegistryError(f"{what}: {text[:300]}", "check the model's name, alias, version or run id in the registry")


def resolve(uri: str, tracking_uri: str | None, root: Path) -> dict[str, Any]:
    """What ``uri`` names now: for the registry its version and run, for a folder its digest."""
    if uri.startswith("models:/"):
        name, alias, number = re.fullmatch(r"models:/([^@/]+)(?:@(.+)|/(\d+))", uri).groups()
        registry = client(tracking_uri, f"[model] mlflow = '{uri}'")
        try:
            found = (registry.get_model_version_by_alias(name, alias) if alias
                     else registry.get_model_version(name, number))
        except Exception as exc:  # noqa: BLE001 - MLflow's, translated at this boundary
            raise translated(exc, f"[model] mlflow = '{uri}'") from None
        return {"uri": uri, "registered_model": name, "alias": alias, "version": str(found.version),
                "mlflow_run": found.run_id, "source": found.source, "fetch": f"models:/{name}/{found.version}"}
    if uri.startswith("runs:/"):
        return {"uri": uri, "mlflow_run": uri.split("/")[1], "fetch": uri}
    folder = (root / uri).resolve()
    if not (folder / "MLmodel").is_file():
        raise RegistryError(f"[model] mlflow = '{uri}': {folder} has no MLmodel file",
                            "point it at a folder MLflow saved (mlflow.sklearn.save_model or log_model)")
    return {"uri": uri, "source": str(folder), "digest": digest(folder), "fetch": str(folder)}


def digest(folder: Path) -> str:
    """One sha256 over every file of ``folder`` and its path: a folder that changed is another model."""
    total = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        total.update(f"{path.relative_to(folder)}\0".encode())
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def same(resolved: dict[str, Any], imported: dict[str, Any] | None) -> bool:
    """Whether ``imported`` (an import's record) is the model ``resolved`` names now."""
    keys = ("uri", "version", "mlflow_run", "digest")
    return imported is not None and all(resolved.get(k) == imported.get(k) for k in keys)


def fetch(resolved: dict[str, Any], tracking_uri: str | None, dest: Path) -> None:
    """The model's files, into ``dest``."""
    if not resolved["fetch"].startswith(("models:/", "runs:/")):
        shutil.copytree(resolved["fetch"], dest)
        return
    client(tracking_uri, f"[model] mlflow = '{resolved['uri']}'")  # the extra, and the quick retries
    import mlflow.artifacts

    partial = dest.with_name(dest.name + ".partial")
    partial.mkdir(parents=True)
    try:
        found = Path(mlflow.artifacts.download_artifacts(resolved["fetch"], dst_path=str(partial),
                                                         tracking_uri=tracking_uri))
    except Exception as exc:  # noqa: BLE001 - MLflow's, translated at this boundary
        raise translated(exc, f"[model] mlflow = '{resolved['uri']}'") from None
    found.rename(dest)
    shutil.rmtree(partial, ignore_errors=True)


def describe(folder: Path, declared: list[str] | None, uri: str) -> dict[str, Any]:
    """The features (names in order, kinds) from the model's signature, or ``[model] features`` without one."""
    import yaml  # mlflow-skinny's dependency: the MLmodel file is YAML

    document = yaml.safe_load((folder / "MLmodel").read_text())
    inputs = json.loads(((document.get("signature") or {}).get("inputs")) or "[]")
    named = [column for column in inputs if column.get("name")]
    if not named and not declared:
        raise ModelError(f"[model] mlflow = '{uri}': the model has no signature naming its input columns",
                         "log it with a signature (mlflow.models.infer_signature), or list [model] features")
    features = list(declared) if declared else [c["name"] for c in named]
    kinds = {c["name"]: KINDS[c["type"]] for c in named if c.get("type") in KINDS}
    integers = [c["name"] for c in named if c.get("type") in ("long", "integer")]
    return {"features": features, "kinds": kinds, "integers": integers,
            "python": (document.get("flavors", {}).get("python_function") or {}).get("python_version"),
            "flavors": sorted(document.get("flavors") or {})}


def requirements(text: str) -> str:
    """The model's ``requirements.txt`` as its environment installs it: ``mlflow`` read as ``mlflow-skinny``."""
    return _MLFLOW.sub("mlflow-skinny", text)


def requirements_for(spec: ServiceSpec, applied: Manifest | None) -> str | None:
    """What the environment applying ``applied`` installs: an imported model's own requirements (their
    sha256 checked), or None (the spec's requirements file) for every other model."""
    if not spec.model.mlflow or applied is None:
        return None
    from batchcast.runs.store import ArtifactStore

    raw = ArtifactStore(spec.storage_url).read_verified(applied, f"output/{FOLDER}/requirements.txt")
    return requirements(raw.decode())


def check_environment(spec: ServiceSpec, applied: Manifest) -> None:
    """Refuse an imported model whose requirements differ from this environment's (a swap in serve or
    stream): it would run with libraries it was not saved with."""
    wanted = requirements_for(spec, applied)
    built = Path(sys.prefix).with_suffix(".requirements.txt")  # ensure_environment's, beside the venv
    if wanted is None or not built.is_file() or built.read_text() == wanted:
        return
    raise ModelError(f"{applied.run_id} has other requirements than the environment running here ({built})",
                     "restart batchcast serve or stream: it builds the environment the new model needs")


class Pyfunc:
    """An MLflow pyfunc model, called as batchcast calls a model: ``predict`` on a DataFrame of its features.

    Integer features arrive as floats from JSON (serve, stream); MLflow's schema enforcement refuses a
    float for a ``long`` input, so whole values are cast back first.
    """

    def __init__(self, model: Any, integers: list[str]):
        self.model = model
        self.integers = integers

    def predict(self, frame):
        wanted = {c: "int64" for c in self.integers if c in frame.columns and frame[c].dtype.kind == "f"
                  and (frame[c] % 1 == 0).all()}  # 2.5 or NaN stays a float, for MLflow's check to refuse
        if wanted:
            frame = frame.astype(wanted)
        return self.model.predict(frame)


def load(folder: Path, meta: dict[str, Any]) -> Pyfunc:
    """The pyfunc model in ``folder`` (its files verified by the caller), in this environment."""
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ModelError("the model is an MLflow model, and this environment has no MLflow",
                         "run it with the local executor, which builds its environment from the model's "
                         "requirements.txt, or pip install mlflow-skinny") from None
    try:
        model = mlflow.pyfunc.load_model(str(folder), suppress_warnings=True)
    except Exception as exc:  # noqa: BLE001 - the model's own loader, whatever it raises
        raise ModelError(f"MLflow could not load the model {meta.get('mlflow', {}).get('uri')}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                         "check that its requirements.txt lists what its flavor needs") from exc
    return Pyfunc(model, meta.get("integers", []))


def added_for(spec: ServiceSpec) -> tuple[str, ...]:
    """What a training that also saves in MLflow's format installs beside the model's requirements."""
    if not spec.model.save_mlflow:
        return ()
    try:
        return (f"mlflow-skinny=={version('mlflow-skinny')}",)
    except PackageNotFoundError:
        return ("mlflow-skinny>=3",)


def save(model: Any, dest: Path, sample, spec: ServiceSpec) -> None:
    """``model`` in MLflow's format: the scikit-learn flavor for an estimator, else a pyfunc of its ``predict``
    (its repository's code copied in), with a signature from ``sample`` and the model's requirements."""
    try:
        import mlflow
        from mlflow.models import infer_signature
    except ImportError:
        raise MissingExtra("[model] save_mlflow", "mlflow") from None
    signature = infer_signature(sample, model.predict(sample))
    wanted = [line.split("#")[0].strip() for line in (spec.requirements_path.read_text().splitlines()
                                                     if spec.requirements_path else [])]
    wanted = [line for line in wanted if line and not line.startswith("-")] + [f"cloudpickle=={version('cloudpickle')}"]
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        BaseEstimator = ()  # noqa: N806 - no scikit-learn: no estimator
    if isinstance(model, BaseEstimator):
        mlflow.sklearn.save_model(model, str(dest), signature=signature, serialization_format="cloudpickle",
                                  pip_requirements=wanted + [f"scikit-learn=={version('scikit-learn')}"])
        return
    module = spec.model.entrypoint.split(":")[0].split(".")[0]
    code = [str(p) for p in (spec.model_path / module, spec.model_path / f"{module}.py") if p.exists()]
    mlflow.pyfunc.save_model(str(dest), python_model=model.predict, signature=signature, code_paths=code,
                             pip_requirements=wanted)
