# Ignition: `make run` brings up the whole product; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test soak bench lint install migrate seed clean-var node-sdk

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# Smartcar's Node SDK for tests/e2e/test_node_sdk.py (skipped without it; REQUIRE_NODE_SDK=1 fails instead).
node-sdk:
	npm ci --prefix tests/e2e/node --no-audit --no-fund

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: migrate
	@$(PY) manage.py seed_demo
	@echo ""
	@echo "  Ignition is starting: open http://127.0.0.1:8000/ and sign in with the demo login above."
	@echo "  Emails (verification, invitations) are printed here. Ctrl-C stops everything."
	@echo ""
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Mixed API traffic from many clients over several teams against the whole stack while beat runs, across a
# period's end; then every count must agree (tests/system/test_soak.py). SOAK_SECONDS=600 by default.
SOAK_SECONDS ?= 600
soak: install
	SOAK_SECONDS=$(SOAK_SECONDS) $(VENV)/bin/pytest tests/system/test_soak.py --numprocesses 0 -s $(PYTEST_ARGS)

# The vehicle API over HTTP (gunicorn + PostgreSQL, driven by wrk) against a bare Django view: req/s, p50, p99 and
# the ratios of issue 14's targets (bench/README.md). Needs wrk (apt-get install wrk) and PostgreSQL.
bench: install
	$(VENV)/bin/python bench/bench_http.py $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

clean-var:
	rm -rf var
