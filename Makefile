# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install services bigquery-emulator airflow demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The example churn service, end to end on the embedded defaults.
demo: install
	rm -rf demo
	$(BIN)/batchcast init demo --name churn
	cd demo && ../$(BIN)/batchcast run training
	cd demo && ../$(BIN)/batchcast run application --date 2026-01-01
	cd demo && ../$(BIN)/batchcast runs
	cd demo && ../$(BIN)/batchcast preview application --limit 5

# Servers the tests start themselves (on 127.0.0.1): PostgreSQL from Debian's packages.
services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (Debian package)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing headless Chromium for the dashboard tests (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The BigQuery emulator (local-bigquery) needs Python >= 3.13 and DuckDB 1.5.5 with
# extension wheels, so it lives in its own venv; see ENVIRONMENT.md.
BQ_PY ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13))
BQ_STAMP := .venv-bq/.installed-1
BQ_PACKAGES := local-bigquery==0.3.2 duckdb==1.5.5 duckdb-extension-icu==1.5.5 \
  duckdb-extension-ducklake==1.5.5 duckdb-extension-spatial==1.5.5

$(BQ_STAMP):
	@if [ -z "$(BQ_PY)" ]; then echo "no Python 3.13 found: BigQuery tests will skip (fail under BATCHCAST_REQUIRE_ALL)"; exit 0; fi; \
	set -e; $(BQ_PY) -m venv .venv-bq; \
	.venv-bq/bin/python -m pip install --quiet $(BQ_PACKAGES); \
	.venv-bq/bin/python -c "import duckdb, glob, site; con = duckdb.connect(); \
	  [con.install_extension(f) for p in site.getsitepackages() for f in glob.glob(p + '/duckdb_extension_*/extensions/*/*.duckdb_extension')]"; \
	touch $@

bigquery-emulator: $(BQ_STAMP)

# Apache Airflow 3 in its own venv: it pins its own libraries, and the rendered
# DAGs must import without batchcast installed there.
AIRFLOW_STAMP := .venv-airflow/.installed-2

$(AIRFLOW_STAMP):
	test -x .venv-airflow/bin/python || $(PY) -m venv .venv-airflow
	.venv-airflow/bin/python -m pip install --quiet 'apache-airflow>=3.1,<4' apache-airflow-providers-cncf-kubernetes \
	  apache-airflow-providers-google
	touch $@

airflow: $(AIRFLOW_STAMP)

test: install services bigquery-emulator airflow
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every comparison side by side, one run; writes benchmarks/results/latest.json.
bench: install services
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-bq .venv-airflow demo .pytest_cache
