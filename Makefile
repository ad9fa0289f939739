# Developer entry points (see README "Commands").
# Every target runs with .venv/bin first on PATH, so the Procfile's bare
# `uvicorn` / `celery` and any subprocess the tests start resolve to the venv.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install run test lint bench

install: $(STAMP)

# The stamp makes a repeated `make install` a no-op until requirements.txt
# changes; the venv itself is only created when missing.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

run: install
	$(PY) -m meeting_intel.devserver run

# devserver exec starts an embedded Redis only when REDIS_URL is unset, so CI
# (which exports DATABASE_URL/REDIS_URL) uses the real services.
test: install
	$(PY) -m meeting_intel.devserver exec -- $(PY) -m pytest $(PYTEST_ARGS)

lint:
	@if command -v ruff >/dev/null 2>&1; then ruff check .; \
	else echo "ruff not installed (pip install ruff); skipping lint"; fi

bench: install
	@if [ -d bench ]; then $(PY) -m bench; else echo "no bench/ directory; nothing to run"; fi
