# Two commands set up everything on a fresh machine (each is idempotent and uses its own .venv):
#   make studio   — install, then start the studio on http://127.0.0.1:7860
#   make test     — install (with test tools), then run ruff and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# CPU-only machines get the CPU build of torch (never GBs of CUDA wheels); with an NVIDIA GPU
# the registry's CUDA build is used. Override with TORCH_SPEC=… and TORCH_INDEX=<index url>.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.4,torch==2.13.0)
TORCH_INDEX ?=
ARGS ?=
PYTEST_ARGS ?=
# The suite runs in parallel workers (pytest-xdist), one per core up to 4, each test file in one
# worker; `make test PYTEST_PARALLEL=` runs it in one process.
PYTEST_PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: studio test test-postgres lint bench setup setup-dev browser postgres

studio: $(VENV)/.stamp-base
	$(PY) launch.py $(ARGS)

test: $(VENV)/.stamp-dev browser postgres
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The API and service tests again, each studio on its own PostgreSQL database instead of SQLite.
test-postgres: $(VENV)/.stamp-dev postgres
	STUDIO_TEST_DATABASE=postgres $(PY) -m pytest tests/services tests/api -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: $(VENV)/.stamp-dev
	$(PY) -m ruff check .

bench: $(VENV)/.stamp-base
	$(PY) -m bench $(ARGS)

setup: $(VENV)/.stamp-base
setup-dev: $(VENV)/.stamp-dev

$(VENV)/.stamp-base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PIP) install -e .
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(PIP) install -e ".[dev]"
	touch $@

# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser download is
# not needed). Installed when we may; otherwise the browser tests say how (and fail under CI=true).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: /usr/bin/chromium missing — run 'sudo apt-get install chromium' for the browser tests"; fi

# The store's tests and the replica tests start a throwaway PostgreSQL server from Debian's
# `postgresql` binaries (tests/postgres.py). Installed when we may; otherwise those tests say how
# (and fail under CI=true).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "note: PostgreSQL missing — run 'sudo apt-get install postgresql' for the database tests"; fi
