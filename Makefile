# polyfleet: `make demo` runs the main job on a simulated fleet, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml tests/plugins/polyfleet-example-driver/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e tests/plugins/polyfleet-example-driver
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/polyfleet demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/inventory_bench.py
	$(BIN)/python bench/simulator_bench.py
	$(BIN)/python bench/scan_bench.py
	$(BIN)/python bench/health_bench.py
	$(BIN)/python bench/reactivation_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
