# TrailSpark Destinations: `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every dependency pinned with hashes; `make lock` after editing pyproject.toml.
LOCK := requirements.lock

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PY) >/dev/null || { echo "python3.11 is required"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the service with its dev tools

run: $(STAMP) ## Run everything locally: broker, sandboxes, service, demo producer
	$(BIN)/python -m service.devtools.demo

test: $(STAMP) ## Run the whole test suite against a real broker
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy
	$(BIN)/python -m service.devtools.audit $(LOCK)

lock: ## Regenerate requirements.lock (hashes; Python 3.11, Linux) from pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install -q 'uv>=0.5,<1'
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --quiet \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o $(LOCK)

sbom: $(STAMP) ## CycloneDX SBOM of the locked dependencies -> sbom.cdx.json
	$(BIN)/cyclonedx-py requirements $(LOCK) --pyproject pyproject.toml --of JSON -o sbom.cdx.json

bench-quick: $(STAMP) ## Throughput benchmark: service vs a raw aiokafka loop (under 2 min)
	$(BIN)/python -m bench.throughput

bench: bench-quick ## Every benchmark under bench/ (throughput, then SDK vs aiohttp per CRM)
	$(BIN)/python -m bench.salesforce_client
	$(BIN)/python -m bench.hubspot_client
	$(BIN)/python -m bench.airtable_client

schemas: $(STAMP) ## Regenerate schemas/ from the pydantic models
	$(BIN)/python -m service.models --write schemas

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run test lint lock sbom bench bench-quick schemas clean
