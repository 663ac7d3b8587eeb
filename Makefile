# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test clean

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

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache
