# Two commands on a fresh machine (Python 3.11 + pip): `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

# DATASET=hillstrom runs on the real Hillstrom campaign, in its own data directory (never mixed
# with the synthetic world's warehouse) unless CAMPAIGN_DATA_DIR is set.
ifeq ($(DATASET),hillstrom)
export CAMPAIGN_DATA_DIR ?= $(CURDIR)/data/hillstrom
endif
export CAMPAIGN_DATA_DIR ?= $(CURDIR)/data
# CAMPAIGN_PROFILE=production (after `make services-up` and `eval "$$(scripts/services.sh env)"`):
# Dagster, MLflow and the warehouse on Postgres, the online store on Redis; its own Dagster home.
ifeq ($(CAMPAIGN_PROFILE),production)
export DAGSTER_HOME ?= $(CAMPAIGN_DATA_DIR)/dagster_home_production
DAGSTER_YAML := dagster.production.yaml
else
export DAGSTER_HOME ?= $(CAMPAIGN_DATA_DIR)/dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(CAMPAIGN_DATA_DIR)/mlflow/mlflow.db
DAGSTER_YAML := dagster.yaml
endif
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

CUSTOMERS ?= 100000

.PHONY: help setup setup-spark java test-spark bench-spark run test test-all browser redis screenshot ui drift-ui mlflow bench bench-10m bench-online bench-api test-slow test-ci-slow lint format dbt-build clean services-up services-down services-status servers test-production

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Once `make setup-spark` has installed the spark extra, a re-sync keeps it.
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode $(if $(wildcard $(VENV)/.synced-spark),--extra spark) --python $(PYTHON)
	@touch $@

$(VENV)/.synced-spark: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --extra spark --python $(PYTHON)
	@touch $@ $(VENV)/.synced

setup: $(VENV)/.synced ## create the environment from the lock file (idempotent)
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || cp $(DAGSTER_YAML) $(DAGSTER_HOME)/dagster.yaml

setup-spark: setup $(VENV)/.synced-spark java ## add the spark profile's packages (pyspark, dbt-spark, feast[spark]; ~0.5 GB) and a JDK

java: ## a Java runtime for Spark (Debian's openjdk-17 with apt-get when missing)
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null; \
	  else echo "Spark needs a Java runtime: sudo apt-get install openjdk-17-jre-headless" >&2; exit 1; fi; }

run: setup ## generate the demo world and run the whole pipeline (CUSTOMERS=100000; DATASET=hillstrom)
	$(BIN)/campaign run$(if $(DATASET), --dataset $(DATASET))$(if $(filter hillstrom files,$(DATASET)),, --customers $(CUSTOMERS))

test: setup browser redis lint ## lint, then the test suite (what CI runs)
	$(BIN)/pytest -m "not slow and not production and not spark" --ignore=tests/spark -q --durations=20

browser: ## Debian's Chromium for the UI test (installed with apt-get when missing)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "The UI test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

redis: ## Debian's redis-server for the Redis online store tests (installed with apt-get when missing)
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else echo "The Redis online store tests need Debian's redis-server: sudo apt-get install redis-server" >&2; exit 1; fi; }

screenshot: setup browser ## refresh docs/images/asset_graph.png from the live Dagster UI
	UI_SCREENSHOT_PATH=$(CURDIR)/docs/images/asset_graph.png $(BIN)/pytest -q tests/ui -k asset_graph

test-slow: setup ## the slow tests (second worlds, the drift recovery, notebook 05, Hillstrom)
	$(BIN)/pytest -m "slow and not production and not spark" --ignore=tests/spark -q --durations=10

test-ci-slow: setup ## the slow tests CI runs after make test: the drift recovery end to end and notebook 05 (323 s in CI)
	$(BIN)/pytest -m slow -q tests/e2e/test_drift_recovery.py "tests/e2e/test_notebooks.py::test_notebook_executes[05_bring_your_own_data.ipynb]"

test-production: setup servers ## the production profile end to end on throwaway Postgres + Redis (~3 min; .ci/run runs it)
	$(BIN)/pytest -m production -q tests/production

test-spark: setup-spark ## the spark profile end to end on local[2] (a 3k world, several minutes) and the scoring parity
	$(BIN)/pytest -m spark -q tests/spark

test-all: setup setup-spark browser servers ## the test suite including slow tests
	$(BIN)/pytest -q

ui: setup ## Dagster UI on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

drift-ui: setup ## Evidently UI on http://127.0.0.1:8001: drift share and per-column drift over runs
	$(BIN)/evidently ui --workspace $(CAMPAIGN_DATA_DIR)/evidently --host 127.0.0.1 --port 8001

mlflow: setup ## MLflow UI on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000

bench: setup ## the pipeline at 100k and 1M: per-stage seconds and rows, peak RSS, the floor and the ratio
	$(BIN)/python scripts/bench_pipeline.py --customers 100000 1000000
	$(BIN)/python scripts/bench_metrics.py
	$(BIN)/python scripts/bench_policy.py
	$(BIN)/python scripts/bench_gateway.py --messages 100000 --batch 500

bench-10m: setup ## the pipeline at 10M customers (15+ min, up to 16 GB), beside its floor
	$(BIN)/python scripts/bench_pipeline.py --customers 10000000

bench-spark: setup-spark ## DuckDB vs Spark pipeline stages at 1M and 10M customers: seconds and peak RSS (CUSTOMERS_LIST to change)
	$(BIN)/python scripts/bench_spark.py --customers $(or $(CUSTOMERS_LIST),1000000 10000000)

bench-online: setup redis ## the online store load, stock vs bulk writers, SQLite and Redis, 100k and 1M: seconds, peak RSS, size
	$(BIN)/python scripts/bench_online_store.py

bench-api: setup redis ## decision API on SQLite and Redis: p50/p99 at 1 client, throughput at 1/8/32 clients; events (needs a finished run)
	$(BIN)/python scripts/bench_api.py --store sqlite redis
	$(BIN)/python scripts/bench_events.py

lint: setup ## ruff, the import-layer contracts, sqlfluff (exits non-zero on any finding)
	$(BIN)/lint-imports
	$(BIN)/ruff check orchestration tests feature_repo scripts examples
	$(BIN)/ruff format --check orchestration tests feature_repo scripts examples
	cd dbt_project && ../$(BIN)/sqlfluff lint models

format: setup
	$(BIN)/ruff format orchestration tests feature_repo scripts examples
	$(BIN)/ruff check --fix orchestration tests feature_repo scripts examples

dbt-build: setup ## dbt build on its own (from dbt_project/), with the declared customer attributes
	cd dbt_project && ../$(BIN)/dbt build --profiles-dir . --vars "$$(../$(BIN)/python -m orchestration.core.world.attributes --dbt-vars)"

services-up: ## start Postgres and Redis on 127.0.0.1 (data in data/services; apt-get installs them when missing)
	scripts/services.sh up
	@echo 'production profile: eval "$$(scripts/services.sh env)"'

services-down: ## stop Postgres and Redis (their data stays in data/services)
	scripts/services.sh down

services-status: ## is Postgres / Redis running
	scripts/services.sh status

servers: ## Debian's postgresql and redis-server for the production-profile test (apt-get when missing)
	@{ test -x /usr/lib/postgresql/15/bin/initdb && command -v redis-server >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 redis-server >/dev/null; \
	  else echo "The production-profile test needs Debian's postgresql-15 and redis-server: sudo apt-get install postgresql-15 redis-server" >&2; exit 1; fi; }

clean: ## delete generated data (keeps the environment)
	rm -rf data
