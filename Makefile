# Trademk — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest bench clean web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-run $(VENV)/.installed-dev

# The dashboard (web/) is built into src/trademk/web/dist by esbuild, from npm packages
# pinned in web/package-lock.json; rebuilt only when its sources change.
WEB_DIST := src/trademk/web/dist
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/build.mjs

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

$(WEB_DIST)/.built: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build
	touch $@

web: $(WEB_DIST)/.built

run: web $(VENV)/.installed-run
	$(BIN)/trademk migrate
	exec $(BIN)/trademk run

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: web $(VENV)/.installed-dev
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: web lint typecheck pytest

# Speed figures for docs/BENCHMARKS.md (never part of `make test`). Needs the
# PostgreSQL and Redis that the tests use (TEST_POSTGRES_URL, TEST_REDIS_URL).
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/ingest.py --backend all
	$(BIN)/python benchmarks/tickstore_write.py --repeat 3
	$(BIN)/python benchmarks/latency.py --redis $(TEST_REDIS_URL)
	$(BIN)/python benchmarks/redis_hop.py
	$(BIN)/python benchmarks/backtest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache web/node_modules $(WEB_DIST)
