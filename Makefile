# Two commands for a newcomer: `make run` (the demo site on http://127.0.0.1:8000) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-dev env chromium migrate demo serve bench clean screenshots bench-peers bench-peers-install

$(VENV)/bin/python:
	@echo "creating the virtualenv $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install -qq --upgrade pip

# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU build from this machine's disk.
# -qq: progress lines here instead of pip's, errors still shown.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	@echo "installing the site and its separability model (about two minutes the first time)"
	@$(PIP) install -qq -e ".[separability]"
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	@echo "installing the test tools"
	@$(PIP) install -qq -e ".[separability,dev]"
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# A generated SECRET_KEY kept in .env (git-ignored), so DEBUG can stay off.
env:
	@test -f .env || { echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" > .env; echo "wrote .env with a new SECRET_KEY"; }

migrate: install env
	@echo "preparing the database (SQLite unless DATABASE_URL is set) and the static files"
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0

# The demo's separability is computed in a background process while the site already serves
# (the dashboard shows its progress; a later run finds it computed and skips it).
demo: migrate
	@echo "loading the demo data"
	@$(PY) manage.py load_demo --base-url http://$(HOST):$(PORT) --separability background

serve:
	@echo "serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	@$(VENV)/bin/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) evalsite.wsgi

run: demo serve

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Debian's chromium at /usr/bin/chromium: run 'sudo apt-get install chromium'"; exit 1; \
	  fi; }

# Tests that need PostgreSQL, Redis or a worker fail without them. Unless DATABASE_URL / CELERY_BROKER_URL /
# REDIS_URL are set (.ci/run sets them), use the local services when they answer on their usual ports.
answers = (exec 3<>/dev/tcp/127.0.0.1/$(1)) 2>/dev/null
test: install-dev env chromium
	@if [ -z "$${DATABASE_URL:-}" ] && $(call answers,5432); then \
	  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/sepeval_test; fi; \
	if [ -z "$${CELERY_BROKER_URL:-}" ] && $(call answers,6379); then \
	  export CELERY_BROKER_URL=redis://127.0.0.1:6379/12 REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/13}; fi; \
	echo "make test: database $${DATABASE_URL:-SQLite (no PostgreSQL: its tests will fail)}, broker $${CELERY_BROKER_URL:-none (no Redis: its tests will fail)}"; \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Style and types: ruff over everything, mypy (Django plugin) over the apps; strict on the pure cores.
lint: install-dev env
	@echo "ruff"
	@$(VENV)/bin/ruff check .
	@echo "mypy"
	@$(VENV)/bin/mypy

# The README's screenshots, from the browser tests (make test writes them to a temporary folder instead).
screenshots: install-dev env chromium
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(VENV)/bin/pytest -q tests/annotations/test_browser.py tests/dashboard/test_dashboard_browser.py

bench: install-dev env
	$(PY) bench/separability.py
	$(PY) bench/ratings.py

# The peers benchmark (issue 14): Label Studio and Potato, each in its own virtualenv under
# bench/peers/.venvs/ (git-ignored), driven with this site by one load generator: python -m bench.peers.
PEERS_VENVS := bench/peers/.venvs
PEERS_ARGS ?= --clients 20 --seconds 30

$(PEERS_VENVS)/label-studio/.installed:
	@echo "installing label-studio==1.23.2 into $(@D)"
	@$(PYTHON) -m venv $(@D)
	@$(@D)/bin/python -m pip install -qq label-studio==1.23.2 gunicorn==27.0.1
	@touch $@

$(PEERS_VENVS)/potato/.installed:
	@echo "installing potato-annotation==2.12.1 into $(@D)"
	@$(PYTHON) -m venv $(@D)
	@$(@D)/bin/python -m pip install -qq potato-annotation==2.12.1 gunicorn==27.0.1
	@touch $@

bench-peers-install: $(PEERS_VENVS)/label-studio/.installed $(PEERS_VENVS)/potato/.installed

bench-peers: install-dev env bench-peers-install
	$(PY) -m bench.peers $(PEERS_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
