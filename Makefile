# One entry point for people and CI. Everything installs into .venv at the repo root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install serve test lint typecheck unit clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Install the service, the `orders` command and the dev tools into .venv

serve: $(STAMP)  ## Install if needed, then start the whole system locally (moto + API on :8000)
	$(BIN)/orders serve

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

typecheck: $(STAMP)  ## mypy: strict on the shared library (layers/), normal elsewhere
	$(BIN)/mypy --strict layers/core/python/orders_core
	$(BIN)/mypy functions local/orders_local tests

test: lint typecheck  ## Lint, types, then every test
	$(BIN)/python -m pytest -q

unit: $(STAMP)  ## Only the fast tests (domain, contract on the in-memory store)
	$(BIN)/python -m pytest -q tests/unit

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cdk.out
