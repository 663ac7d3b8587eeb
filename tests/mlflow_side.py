"""What a data scientist does with MLflow's own API, run in MLflow's environment (``.venv-mlflow``) by the tests.

- ``register``: fit a scikit-learn model on a Parquet file of features, log it with
  ``mlflow.sklearn.log_model``, register it and point an alias at the new version;
- ``predict``: ``mlflow.pyfunc.load_model(URI).predict`` on a Parquet file's rows, written as Parquet;
- ``old``: save a pyfunc model whose requirements pin an older scikit-learn, and which predicts the
  scikit-learn version it runs with;
- ``alias``: the version an alias of a registered model names; ``runs``: the runs of an experiment.

No batchcast here: this is the other side.
"""

from __future__ import annotations

import argparse
import json

import mlflow
import pandas as pd
from mlflow.models import infer_signature

FEATURES = [f"f{i}" for i in range(1, 9)]


def register(args) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_parquet(args.rows)
    y = frame["churned"] if not args.flip else ~frame["churned"]
    model = LogisticRegression(C=0.5).fit(frame[FEATURES], y)
    mlflow.set_experiment("data-science")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=args.name,
                                        signature=infer_signature(frame[FEATURES], model.predict(frame[FEATURES])))
    mlflow.MlflowClient().set_registered_model_alias(args.name, args.alias, info.registered_model_version)
    print(info.registered_model_version)


def predict(args) -> None:
    frame = pd.read_parquet(args.rows)
    found = mlflow.pyfunc.load_model(args.model).predict(frame[FEATURES])
    pd.DataFrame({"player_id": frame["player_id"], "label": found}).to_parquet(args.out)


def reports_sklearn(model_input):
    import sklearn

    return [sklearn.__version__] * len(model_input)


def old(args) -> None:
    example = pd.DataFrame({name: [0.5] for name in FEATURES})
    mlflow.pyfunc.save_model(args.dest, python_model=reports_sklearn, input_example=example,
                             pip_requirements=[f"scikit-learn=={args.sklearn}", "cloudpickle"])


def alias(args) -> None:
    print(mlflow.MlflowClient().get_model_version_by_alias(args.name, args.alias).version)


def runs(args) -> None:
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(args.experiment)
    found = client.search_runs([experiment.experiment_id]) if experiment else []
    versions = client.search_model_versions(f"name = '{args.experiment}'")
    print(json.dumps({"runs": [{"metrics": r.data.metrics, "params": r.data.params, "tags": r.data.tags,
                                "artifacts": [a.path for a in client.list_artifacts(r.info.run_id)]} for r in found],
                      "versions": [{"version": v.version, "tags": v.tags} for v in versions]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracking", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("register")
    step.add_argument("--rows", required=True)
    step.add_argument("--name", required=True)
    step.add_argument("--alias", default="champion")
    step.add_argument("--flip", action="store_true", help="learn the opposite label: a model that disagrees")
    step = commands.add_parser("predict")
    step.add_argument("--model", required=True)
    step.add_argument("--rows", required=True)
    step.add_argument("--out", required=True)
    step = commands.add_parser("old")
    step.add_argument("--dest", required=True)
    step.add_argument("--sklearn", required=True)
    step = commands.add_parser("alias")
    step.add_argument("--name", required=True)
    step.add_argument("--alias", default="champion")
    step = commands.add_parser("runs")
    step.add_argument("--experiment", required=True)
    args = parser.parse_args()
    mlflow.set_tracking_uri(args.tracking)
    globals()[args.command](args)


if __name__ == "__main__":
    main()
