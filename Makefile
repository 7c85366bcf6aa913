# Partner Audit Log — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SERVICES := $(PYTHON) deploy/local/services.py
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-reliability lint services-up services-down \
	services-status services-clean kibana-import bench bench-quick bench-clean clean \
	images kustomize-tool deploy-check

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

# The compiled helpers are built by the install: a change to their source reinstalls.
$(VENV)/.installed: pyproject.toml schemas/_speedups.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "Python 3.11+ is needed (found $$($(PYTHON) --version 2>&1)); set PYTHON=python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## Make or reuse the virtual environment and install the project

services-up: ## Start (or reuse) local Kafka and Elasticsearch
	@$(SERVICES) up

services-down: ## Stop local Kafka and Elasticsearch
	@$(SERVICES) down

services-status: ## Show local services, their endpoints and memory
	@$(SERVICES) status

services-clean: ## Stop local services and delete their data and logs
	@$(SERVICES) clean

run: install ## Start everything (services, worker, API); prints the API URL and a dev token
	@$(PY) -m deploy.local.run

test: install ## Run every test, starting the services it needs
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$ELASTICSEARCH_URL" ]; then $(SERVICES) up; fi
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install ## Run the unit tests only (no network)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-reliability: install ## Run R1-R6 at full size (100,000 events)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$ELASTICSEARCH_URL" ]; then $(SERVICES) up; fi
	AUDIT_RELIABILITY_SCALE=full $(PY) -m pytest tests/integration -m slow $(PYTEST_ARGS)

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(VENV)/.bench-installed ## B1-B5 of QUALITY.md at full size (under 90 minutes); docs/benchmarks.md
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$ELASTICSEARCH_URL" ]; then $(SERVICES) up; fi
	$(PY) -m bench.run

bench-quick: $(VENV)/.bench-installed ## B1-B5 at a small N (under 10 minutes)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$ELASTICSEARCH_URL" ]; then $(SERVICES) up; fi
	$(PY) -m bench.run --quick

bench-clean: install ## Delete the benchmarks' indices and topics (including the reusable B3 dataset)
	$(PY) -m bench.clean

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

images: ## Build the worker and API images (podman or docker; a local base when no registry answers)
	@$(PYTHON) deploy/docker/images.py build

$(VENV)/.deploy-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,deploy]'
	@touch $@

deploy-check: $(VENV)/.deploy-installed ## Opt-in: compose stack up with podman-compose (stand-ins where no registry), demo stream through it, all torn down
	@$(PY) deploy/docker/compose_check.py

KUSTOMIZE_VERSION ?= v5.7.1
$(VENV)/bin/kustomize: | $(VENV)/.installed
	@command -v go >/dev/null || { echo "kustomize-tool: Go is needed to install kustomize (go install)"; exit 1; }
	GOBIN=$(abspath $(VENV))/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

kustomize-tool: $(VENV)/bin/kustomize ## Install kustomize (Go module proxy) for the deploy/k8s tests

kibana-import: ## Load the Kibana data view, saved search and dashboard (KIBANA_URL, default http://127.0.0.1:5601)
	@$(PYTHON) deploy/kibana/import.py

clean: ## Remove the virtual environment and caches (keeps downloads and service data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
