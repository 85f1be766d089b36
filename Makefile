# evt — the README's two commands are `make run` and `make test`; both start with `setup`.
SHELL := /bin/bash
VENV ?= .venv
EVT := $(VENV)/bin/evt
PYTHON := $(VENV)/bin/python
EVT_TRIGGER_RUNNER_IMAGE ?= evt-trigger-runner:latest
EVT_BASE_IMAGE ?= evt-base:bookworm
export EVT_TRIGGER_RUNNER_IMAGE EVT_BASE_IMAGE

.PHONY: setup venv image run test test-fast lint format fuzz soak bench bench-docs evt-trigger-runner clean verify-kernels

# system packages, tracefs, dockerd, the virtualenv, the local Debian base image
setup:
	bash scripts/setup.sh

# the virtualenv alone (no root, no dockerd): enough for make lint and make test-fast
venv:
	EVT_VENV=$(VENV) bash scripts/venv.sh

# the trigger-runner image, rebuilt only when its sources changed
image: setup
	$(EVT) image build --if-stale --base-image $(EVT_BASE_IMAGE) --tag $(EVT_TRIGGER_RUNNER_IMAGE)

# the image target of Tracee's Go evt (make evt-trigger-runner): always rebuilds
evt-trigger-runner: setup
	$(EVT) image build --base-image $(EVT_BASE_IMAGE) --tag $(EVT_TRIGGER_RUNNER_IMAGE)

# the main job on the embedded defaults: the smoke scenario in containers, counted by bpftrace
run: image
	$(EVT) stress scenario=smoke tracer=bpftrace

# pytest-xdist workers: tests wait on processes, containers and sockets as much as they compute
TEST_WORKERS ?= 2

# everything: the checks, then the unit tests, then the integration tests (root, dockerd,
# tracers): those marked `alone` (loss, rates, timing, host-wide state) one at a time, last;
# the others in parallel, a test file per worker (its module fixtures are built once)
test: image
	$(MAKE) lint
	$(PYTHON) -m pytest -ra -n $(TEST_WORKERS) tests/unit
	$(PYTHON) -m pytest -ra -n $(TEST_WORKERS) --dist loadfile -m "not alone" tests/integration
	$(PYTHON) -m pytest -ra -m alone tests/integration

# the fast lane: the unit tests that need no root, no dockerd and no tracer, but for those
# marked slow (a second or more each, waiting on processes or time): under a minute, anywhere
test-fast: venv
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-fast} $(PYTHON) -m pytest -ra -n $(TEST_WORKERS) -m "not slow" tests/unit

# ruff (lint and format check) and mypy, configured in pyproject.toml
LINT_PATHS := evt hydra_plugins tests benchmarks scripts
lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# applies what `make lint` checks for layout: import order and ruff's formatting
format: venv
	$(VENV)/bin/ruff check --select I --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

# every trigger at its Tracee hook on every stock kernel evt knows, one VM each (`make test`
# runs the first one); exit 1 when a verdict differs from the one the trigger files record
verify-kernels: setup
	$(EVT) verify --kernel debian-6.1 --kernel debian-6.12 --check

# the property tests of every parser of user input, with many more examples than `make test`
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PYTHON) -m pytest -ra -m property

# 100 stress runs back to back with a tracer, checking that nothing leaks (`make test` runs 5)
soak: image
	EVT_SOAK_RUNS=100 $(PYTHON) -m pytest -ra -m soak

# every benchmark to the end, each writing benchmarks/results/<name>.json (docs/benchmarks.md);
# each starts once the load average is at or below 1.0 (benchmarks/wait_quiet.py)
BENCHMARKS := trigger pacing stress container bpftrace loss image compare remote
bench: image
	failed=; for name in $(BENCHMARKS); do python3 benchmarks/wait_quiet.py; $(PYTHON) benchmarks/bench_$$name.py || failed="$$failed $$name"; done; \
	python3 benchmarks/docs_tables.py; if [ -n "$$failed" ]; then echo "benchmarks failed:$$failed"; exit 1; fi

# the figure tables of docs/benchmarks.md, from benchmarks/results/*.json
bench-docs:
	python3 benchmarks/docs_tables.py  # the standard library only: no set-up needed

# build leftovers only: outputs/ and multirun/ hold results, the user's data
clean:
	rm -rf .pytest_cache .build
