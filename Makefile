# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install services demo test clean

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

test: install services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache
