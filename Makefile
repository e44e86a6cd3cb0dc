# One entry point for people and CI. Everything installs into .venv at the repo root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INFRA_STAMP := $(VENV)/.installed-infra
NODE_STAMP := node_modules/.package-lock.json
# The CDK CLI runs cdk.json's "python3 app.py" with the venv first on PATH; no telemetry, no version check.
CDK_ENV := PATH="$(CURDIR)/$(BIN):$$PATH" CDK_DISABLE_CLI_TELEMETRY=true CDK_DISABLE_VERSION_CHECK=1 \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

.PHONY: help install serve test lint typecheck unit clean layers synth infra-test asl

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(INFRA_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,infra]'
	touch $(INFRA_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP)  ## Install the service, the `orders` command and the dev tools into .venv

serve: $(STAMP)  ## Install if needed, then start the whole system locally (moto + API on :8000)
	$(BIN)/orders serve

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

typecheck: $(INFRA_STAMP)  ## mypy: strict on the shared library (layers/) and the handlers (functions/), normal elsewhere
	$(BIN)/mypy --strict layers/core/python/orders_core
	$(BIN)/mypy --strict functions
	$(BIN)/mypy local/orders_local tests
	$(BIN)/mypy infra app.py

test: lint typecheck layers $(NODE_STAMP)  ## Lint, types, then every test (tests/infra included)
	$(BIN)/python -m pytest -q

unit: $(STAMP)  ## Only the fast tests (domain, contract on the in-memory store)
	$(BIN)/python -m pytest -q tests/unit

layers: $(STAMP)  ## Build the Lambda layers into build/layers (deps; auth: the live authorizer's), kept while current
	$(BIN)/python -m infra.layers_build
	$(BIN)/python -m infra.auth_layer_build

asl: $(STAMP) $(NODE_STAMP)  ## Validate workflows/rebuild.asl.json (rendered as deployed) with asl-validator
	$(BIN)/python -m infra.workflow

synth: $(INFRA_STAMP) $(NODE_STAMP) layers asl  ## Synthesize the stack into cdk.out (offline), cdk-nag gated, cfn-lint
	$(CDK_ENV) npx --no-install cdk synth --quiet --no-notices
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json

infra-test: $(INFRA_STAMP) $(NODE_STAMP) layers  ## Only the CDK tests (tests/infra, asl-validator included)
	$(BIN)/python -m pytest -q tests/infra

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cdk.out

.PHONY: catalog schemas asyncapi bench-load

catalog: $(STAMP)  ## Regenerate docs/event-catalog.md (event types, versions, fields)
	$(BIN)/python -m orders_core.event_catalog docs/event-catalog.md

schemas: $(STAMP)  ## Regenerate docs/events/<Type>.v<N>.schema.json (the integration events' contract)
	$(BIN)/python -m orders_core.integration.schemas docs/events

asyncapi: $(STAMP)  ## Regenerate docs/asyncapi.yaml (live updates, integration events) from the code
	$(BIN)/python -m orders_local.asyncapi docs/asyncapi.yaml

bench-load: $(STAMP)  ## Benchmark cold aggregate loads (10/1,000/10,000 events) on moto; writes bench/results-*.json
	$(BIN)/python -m bench.aggregate_load

.PHONY: reliability

reliability: $(STAMP)  ## Reliability suite at full scale (load, faults, bad input, auth, limits); prints the figures, writes docs/reliability-figures.json
	RELIABILITY_SCALE=full RELIABILITY_FIGURES=docs/reliability-figures.json $(BIN)/python -m pytest -q -p no:cacheprovider tests/reliability

.PHONY: bench bench-small

bench: $(STAMP) layers  ## Every benchmark at full size (< 15 min on 2 cores): bench/results.json, docs/performance.md
	$(BIN)/python -m bench

bench-small: $(STAMP)  ## The benchmarks' fast version (< 1 min, as tests/bench runs it) into build/bench-small/
	$(BIN)/python -m bench --small
