# The README promises two commands on a fresh machine: `make demo` and `make test`.
# Both (re)build .venv whenever it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RUNTIME__DLTHUB_TELEMETRY := false

.PHONY: demo test test-slow lint format notebooks docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks,ducklake]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/batchlens demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The slow end-to-end scenarios (@pytest.mark.slow) run in `make test-slow`; CI runs both.
# `make test` spreads the test files over TEST_WORKERS processes (one per core on the 2-core
# machines it is sized for; 0 runs them one after another in pytest's own process).
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

notebooks: $(STAMP)
	$(BIN)/python -m batchlens.notebooks.build

# docs/cli.md is generated from the parser; tests/unit/test_docs.py fails when it is stale.
docs: $(STAMP)
	$(BIN)/python -m batchlens.cli_reference --write

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks,ducklake,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache demo.duckdb demo.duckdb.batchlens demo.html
