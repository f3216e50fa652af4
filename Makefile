# polyfleet: `make demo` runs the main job on a simulated fleet, `make test` runs every check.
# Both install exactly the lock (requirements/dev.txt: versions and hashes); `make lock` renews it,
# `make test-latest` runs the same checks against the newest releases pyproject.toml allows.
PYTHON ?= python3
PLUGIN := tests/plugins/polyfleet-example-driver
LOCK := requirements/dev.txt
RUNTIME_LOCK := requirements/runtime.txt
PIP_COMPILE_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

ifeq ($(LATEST),1)
VENV := .venv-latest
else
VENV := .venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pip's and setuptools' chatter (build-backend notices) goes to a log, shown only if a step fails.
logged_to = 2>>$(1) || { cat $(1) >&2; exit 1; }
QUIET_INSTALL = $(call logged_to,$(VENV)/install.log)

.PHONY: demo test test-latest lint typecheck pytest bench lock wheel-check screenshots clean

ifeq ($(LATEST),1)
# The early warning against new releases: no lock, the newest version every range admits.
$(STAMP): pyproject.toml $(PLUGIN)/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(QUIET_INSTALL)
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev,bench]' \
		-e $(PLUGIN) $(QUIET_INSTALL)
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/versions.txt
	touch $(STAMP)
else
# Exactly the lock, hash-checked; the project and the test plugin are built with the locked
# setuptools (no build isolation, so nothing unpinned is fetched for the build either).
$(STAMP): $(LOCK) pyproject.toml $(PLUGIN)/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK) $(QUIET_INSTALL)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . -e $(PLUGIN) \
		$(QUIET_INSTALL)
	$(BIN)/python -m pip check
	touch $(STAMP)
endif

demo: $(STAMP)
	$(BIN)/polyfleet demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# Run before every release, after `make lock`, and weekly (a CI schedule): a failure here is the
# next breaking release, seen by us before our users see it.
test-latest:
	rm -rf .venv-latest
	$(MAKE) LATEST=1 test
	@echo "newest releases tested: .venv-latest/versions.txt"

# Renew the lock from pyproject.toml's ranges: the development lock first, then the runtime lock
# constrained to it, so both name the same versions.
lock: $(STAMP)
	$(BIN)/pip-compile $(PIP_COMPILE_FLAGS) --upgrade --all-build-deps --extra dev --extra bench \
		-o $(LOCK) pyproject.toml
	$(BIN)/pip-compile $(PIP_COMPILE_FLAGS) --upgrade -c $(LOCK) -o $(RUNTIME_LOCK) pyproject.toml

# The wheel a user installs: built, installed into a clean venv, and its entry points run.
wheel-check: $(STAMP)
	rm -rf build dist .venv-wheel
	$(PYTHON) -m venv .venv-wheel
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist . \
		$(call logged_to,.venv-wheel/install.log)
	.venv-wheel/bin/python -m pip install --quiet --require-hashes --no-deps -r $(RUNTIME_LOCK) \
		$(call logged_to,.venv-wheel/install.log)
	.venv-wheel/bin/python -m pip install --quiet --no-deps dist/polyfleet-*.whl \
		$(call logged_to,.venv-wheel/install.log)
	.venv-wheel/bin/python -m pip check
	cd / && $(CURDIR)/.venv-wheel/bin/polyfleet --version
	cd / && $(CURDIR)/.venv-wheel/bin/polyfleet drivers list
	cd / && $(CURDIR)/.venv-wheel/bin/polyfleet simulate --help > /dev/null
	cd / && $(CURDIR)/.venv-wheel/bin/python -c "from controller.dashboard.assets import load_assets; \
		assert '/static/js/main.js' in load_assets(), 'dashboard assets missing from the wheel'"
	rm -rf .venv-wheel

# The README's dashboard screenshots, taken by the browser tests from a real run (docs/*.png).
screenshots: $(STAMP)
	POLYFLEET_SCREENSHOTS=docs $(BIN)/pytest -q tests/browser -k screenshots

bench: $(STAMP)
	$(BIN)/python bench/inventory_bench.py
	$(BIN)/python bench/simulator_bench.py
	$(BIN)/python bench/scan_bench.py
	$(BIN)/python bench/health_bench.py
	$(BIN)/python bench/reactivation_bench.py

clean:
	rm -rf .venv .venv-latest .venv-wheel build dist .mypy_cache .pytest_cache .ruff_cache
