# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# One stamp per install, named after pyproject.toml's checksum: editing it reinstalls.
# The core install is what `make demo` needs (its model gets a uv venv of its own at run
# time); the test extras (every cloud SDK, emulators, ruff) come with `make test`.
PYPROJECT := $(shell cksum pyproject.toml | cut -d' ' -f1)
STAMP := $(VENV)/.installed-core-$(PYPROJECT)
DEV_STAMP := $(VENV)/.installed-dev-$(PYPROJECT)

.PHONY: install install-dev dist services bigquery-emulator airflow container-base demo lint test test-fast bench bench-serving bench-beam bench-spark bench-listing bench-ui bench-streaming clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$@ -m pip install --quiet --upgrade pip

# An editable install leaves batchcast's own modules uncompiled, and with
# PYTHONDONTWRITEBYTECODE set (as on CI machines) every run would compile them again.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q src
	rm -f $(VENV)/.installed-core-* && touch $@

# The extras include the core, so they stamp both: `make demo` after them installs nothing.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src
	rm -f $(VENV)/.installed-* && touch $(STAMP) $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

# A wheel to install batchcast where there is no clone (it is on no package index); see the README's "Installing".
dist: | $(BIN)/python
	rm -rf dist && $(BIN)/python -m pip wheel --quiet --no-deps -w dist .
	@echo "built $$(ls dist/*.whl); export PIP_FIND_LINKS=$(CURDIR)/dist to pip install 'batchcast[...]' from it"

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
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Java for the Spark cluster the tests start (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing headless Chromium and its driver for the dashboard tests (Debian packages)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

# The BigQuery emulator (local-bigquery) needs Python >= 3.13 and DuckDB 1.5.5 with
# extension wheels (DuckDB cannot download them here), so it lives in its own venv.
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

# pyspark is published as a source distribution only, and uv revalidates its index page on every install: each
# new Spark driver environment built it again (1.4 GB in uv's cache and about a minute each; seven builds filled
# the CI's disk). Built here once into a wheel, which tests/conftest.py points uv at (UV_FIND_LINKS).
WHEELS := $(HOME)/.cache/batchcast/wheels
PYSPARK_WHEEL := $(WHEELS)/pyspark-4.3.0-py2.py3-none-any.whl

$(PYSPARK_WHEEL): | $(DEV_STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps -w $(WHEELS) 'pyspark==4.3.0'

# MLflow 3 in its own venv: the tests' tracking server and the data scientist's side of tests/test_mlflow.py,
# and the serving benchmark's contender (with uvloop and httptools, which its uvicorn then uses as batchcast's
# does). Its scikit-learn is batchcast's, so a model it logs loads on either side.
MLFLOW_STAMP := .venv-mlflow/.installed-2
BENTOML_STAMP := .venv-bentoml/.installed-1
SKLEARN_PIN = "scikit-learn==$$($(BIN)/python -c 'import sklearn; print(sklearn.__version__)')"

$(MLFLOW_STAMP): | $(DEV_STAMP)
	test -x .venv-mlflow/bin/python || $(PY) -m venv .venv-mlflow
	.venv-mlflow/bin/python -m pip install --quiet 'mlflow==3.17.2' uvloop httptools $(SKLEARN_PIN)
	touch $@

# Podman (runc and vfs: crun and overlay fail on these machines) and a local base image, since no registry is
# reachable: a Debian bookworm rootfs with python3, built once by debootstrap from the
# Debian mirror apt uses and cached in ~/.cache/batchcast, then imported into podman.
# The tests' podman keeps its images in a store of its own, which the test session empties
# of all but the base image. Its driver is the kernel's overlay where there is one: under vfs
# every layer and every container is a whole copy of the image (about 1 GB here), and the two
# container test modules took 13 min against 5.5 min on overlay. CONTAINER_DRIVER=vfs forces vfs.
CONTAINER_DRIVER ?= $(shell grep -qw overlay /proc/filesystems 2>/dev/null && echo overlay || echo vfs)
CONTAINER_STORE ?= $(HOME)/.cache/batchcast/containers-$(CONTAINER_DRIVER)
CONTAINER_ARGS ?= --root $(CONTAINER_STORE) --runroot $(or $(XDG_RUNTIME_DIR),/run)/batchcast-containers-$(CONTAINER_DRIVER) \
  --storage-driver $(CONTAINER_DRIVER) --events-backend none --runtime runc
export BATCHCAST_TEST_CONTAINER_ARGS := $(CONTAINER_ARGS)
BASE_IMAGE := localhost/batchcast-base:bookworm
BASE_TAR := $(HOME)/.cache/batchcast/rootfs-bookworm-python3.tar
DEBIAN_MIRROR ?= http://deb.debian.org/debian

container-base:
	@command -v podman >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
	  echo "installing podman, runc and debootstrap (Debian packages)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman buildah runc debootstrap >/dev/null; }
	@test -f $(BASE_TAR) || { \
	  echo "debootstrap: bookworm minbase + python3 (about 80 s, once)"; \
	  rm -rf $(BASE_TAR).d && mkdir -p $(dir $(BASE_TAR)) && \
	  $(SUDO) debootstrap --variant=minbase --include=python3,python3-pip,python3-venv bookworm $(BASE_TAR).d $(DEBIAN_MIRROR) >/dev/null && \
	  tar -C $(BASE_TAR).d -cf $(BASE_TAR).tmp . && mv $(BASE_TAR).tmp $(BASE_TAR) && rm -rf $(BASE_TAR).d; }
	@podman $(CONTAINER_ARGS) image exists $(BASE_IMAGE) || podman $(CONTAINER_ARGS) import --quiet $(BASE_TAR) $(BASE_IMAGE)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

# pytest-xdist: 3 workers on these 2 cores (the tests wait on their subprocesses and servers a good part of
# the time), each running whole modules, so a module's shared fixture is built once (tests/conftest.py also
# keeps every podman test on one worker). Measured on `make test-fast`: 10 min 39 s on one process, 5 min 13 s
# on 2 workers, 4 min 37 s on 3. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 3
XDIST := -n $(PYTEST_WORKERS) --dist loadfile
# Bytecode for what changed since the install: under PYTHONDONTWRITEBYTECODE every batchcast process the
# tests start would compile it again (0.26 s against 0.22 s for `batchcast validate`).
COMPILE := $(BIN)/python -m compileall -q src

# Every test, with every server; the 25 slowest are listed at the end.
test: lint services bigquery-emulator airflow container-base $(MLFLOW_STAMP) $(PYSPARK_WHEEL)
	$(COMPILE)
	$(BIN)/python -m pytest $(XDIST) --durations=25 $(PYTEST_ARGS)

# The quick loop: every test not marked slow (pyproject.toml's marker says which are), in under 5 minutes
# here. No server, no image and no Airflow or BigQuery emulator venv is needed, so none is installed.
test-fast: lint
	$(COMPILE)
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

# Every comparison side by side, one run; writes benchmarks/results/latest.json.
bench: install services
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m compileall -q src  # what a user pays: bytecode compiled once, not on every run
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/checks.py

# The dashboard at scale: 50 services, 10,000 runs; the overview and a grid over HTTP (benchmarks/ui.py, about 1 min).
bench-ui: install-dev
	$(BIN)/python -m compileall -q src
	$(BIN)/python benchmarks/ui.py

# batchcast serve against mlflow models serve and BentoML (each in its own venv), loaded by wrk (about 12 min).

$(BENTOML_STAMP):
	test -x .venv-bentoml/bin/python || $(PY) -m venv .venv-bentoml
	.venv-bentoml/bin/python -m pip install --quiet 'bentoml==1.4.40' pandas $(SKLEARN_PIN)
	touch $@

bench-serving: install-dev $(MLFLOW_STAMP) $(BENTOML_STAMP)
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m compileall -q src
	$(BIN)/python benchmarks/serving.py

# Scoring on Apache Beam: inline (all cores, and 1 thread), beam with 1 and 2 workers, and Beam's RunInference,
# raced in a warm-up round and 3 more (benchmarks/beam.py). 2M rows by default (14 min here): 10M rows x 5 contenders
# x 4 rounds would take over an hour on a 2-core machine; BEAM_ARGS="--rows 10000000 --model forest" for that.
BEAM_ARGS ?= --rows 2000000 --model forest --rounds 3
bench-beam: install-dev
	$(BIN)/python benchmarks/beam.py $(BEAM_ARGS)

# Scoring on a Spark standalone cluster (2 workers here): inline, spark with 1 and 2 executors, and MLflow's
# spark_udf (in MLflow's venv, with pyspark added), 10M rows, a warm-up round and one more (benchmarks/spark.py).
SPARK_ARGS ?= --rows 10000000 --model forest --rounds 1
bench-spark: install-dev services $(MLFLOW_STAMP)
	.venv-mlflow/bin/python -m pip install --quiet 'pyspark==4.3.0'
	$(BIN)/python benchmarks/spark.py $(SPARK_ARGS)

# A long history's cost (benchmarks/listing.py): batchcast run without --model at 10,000 prior runs against 1,
# a scheduler tick behind 10,000 queued dates, batchcast runs at 10,000 ledger rows (about 10 min).
# LISTING_ARGS="--count 2000 --rounds 3" for a quicker run; PYTHONPATH=CHECKOUT/src measures another checkout.
LISTING_ARGS ?=

bench-listing: install-dev
	$(BIN)/python -m compileall -q src
	$(BIN)/python benchmarks/listing.py $(LISTING_ARGS)

# batchcast stream against the hand-written confluent-kafka loop and Quix Streams, on one noida-db broker
# (benchmarks/streaming.py; about 70 min at 1M events, 2 rounds). Quix Streams lives in its own venv: it pins
# confluent-kafka < 2.13 and an older pydantic than batchcast's. STREAM_ARGS="--events 200000 --rounds 1" for a
# quicker run; the profile needs pyinstrument (the bench extra).
QUIX_STAMP := .venv-quix/.installed-1
STREAM_ARGS ?=

$(QUIX_STAMP):
	test -x .venv-quix/bin/python || $(PY) -m venv .venv-quix
	.venv-quix/bin/python -m pip install --quiet 'quixstreams==3.28.1' \
	  "scikit-learn==$$($(BIN)/python -c 'import sklearn; print(sklearn.__version__)')"
	touch $@

bench-streaming: install-dev $(QUIX_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m compileall -q src
	$(BIN)/python benchmarks/streaming.py $(STREAM_ARGS)

clean:
	rm -rf $(VENV) .venv-bq .venv-airflow .venv-mlflow .venv-bentoml .venv-quix demo .pytest_cache
