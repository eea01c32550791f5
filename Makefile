# Appease: `make help` lists the targets.
SHELL := /bin/bash
# Python 3.11 to 3.13. PYTHON picks the interpreter that makes the virtualenv, VENV its
# folder: `make test VENV=.venv313 PYTHON=python3.13` runs the suite on 3.13 beside .venv.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/test.txt | sha1sum | cut -c1-12)

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null \
		|| { echo "Python 3.11, 3.12 or 3.13 is required ($(PYTHON) not found or another version; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(PY) requirements/base.txt requirements/test.txt
	$(BIN)/pip install --quiet -r requirements/test.txt
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

migrate: install ## Apply database migrations
	$(PY) manage.py migrate --no-input

# The demo's web port (PORT=8001 make demo) and follow-up delay: a resolved case's
# "was it solved?" goes out a minute later, so the loop closes while you watch.
PORT ?= 8000
demo: export PORT := $(PORT)
demo: export PUBLIC_URL ?= http://127.0.0.1:$(PORT)
demo: export FOLLOW_UP_DELAY_MINUTES ?= 1
demo: install ## Start the demo: web, worker and beat on SQLite, no servers needed (PORT=8001 for another port)
	mkdir -p $${APPEASE_VAR_DIR:-var}
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo_data
	@echo ""
	@echo "  Appease demo: reps at $$PUBLIC_URL/  supervisors at $$PUBLIC_URL/admin/  API docs at $$PUBLIC_URL/api/docs/"
	@echo "  Stop with Ctrl-C."
	@echo ""
	@# Ctrl-C stops every process; honcho then exits 130, which is how a demo ends, not an error.
	@$(BIN)/honcho start -f Procfile.demo || [ $$? -eq 130 ]

test: install ## Run ruff, the import contracts and the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL say so)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## Ruff lint, format check and the import contracts only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(PY) ## Re-pin requirements/*.txt from pyproject.toml
	rm -rf var/lockenv && $(PYTHON) -m venv var/lockenv
	var/lockenv/bin/pip install --quiet . && var/lockenv/bin/pip freeze --exclude appease > requirements/base.txt
	var/lockenv/bin/pip install --quiet ".[test]" && var/lockenv/bin/pip freeze --exclude appease \
		| sed '1i -r base.txt' | grep -vxFf requirements/base.txt > requirements/test.txt
	rm -rf var/lockenv

messages: install ## Re-extract translatable strings into locale/*/django.po and compile them (needs GNU gettext)
	$(PY) manage.py makemessages -l es -l pt_BR --ignore=.venv --ignore=bench --ignore=tests
	$(PY) manage.py compilemessages

BENCHMARKS := generate issue redeem feedback deliver reporting soak recovery
bench-smoke: install ## Every benchmark in smoke mode (tiny sizes, seconds): each still runs and checks; figures are kept nowhere
	@set -e; for bench in $(BENCHMARKS); do echo "=== bench/$$bench --smoke"; bench/$$bench --smoke; done

import-graph: install ## Count the import graph's cycles, back-arrows and function-local imports (LAYERS="a, b > c" to judge other layers)
	$(PY) tests/architecture/import_graph.py $(if $(LAYERS),--layers "$(LAYERS)")

ENV_FILE ?= deploy/production.env.example
prod-check: install ## Django's and our deployment checks on ENV_FILE (/etc/appease.core.env; default: the example); fails on any warning
	env -i PATH="$$PATH" HOME="$$HOME" bash -c 'set -a && . "$(ENV_FILE)" && set +a && DEBUG=0 exec $(PY) manage.py check --deploy --fail-level WARNING'


clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var/*.sqlite3* var/broker var/celerybeat-schedule*

.PHONY: help install migrate demo test lint format lock messages bench-smoke import-graph prod-check clean
