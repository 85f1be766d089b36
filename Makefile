# evt: make setup | run | test | bench | evt-trigger-runner | clean
SHELL := /bin/bash
VENV ?= .venv
EVT := $(VENV)/bin/evt
EVT_TRIGGER_RUNNER_IMAGE ?= evt-trigger-runner:latest
EVT_BASE_IMAGE ?= evt-base:bookworm
export EVT_TRIGGER_RUNNER_IMAGE EVT_BASE_IMAGE

.PHONY: setup run test bench evt-trigger-runner clean

setup:
	bash scripts/setup.sh

# the trigger-runner image, from the local Debian base image (no registry needed)
evt-trigger-runner: setup
	$(EVT) image build --base-image $(EVT_BASE_IMAGE) --tag $(EVT_TRIGGER_RUNNER_IMAGE)

run: setup
	$(EVT) list
	$(EVT) trigger --event security_file_open --ops 10000 --parallel 2 --sleep 0

test: setup
	$(VENV)/bin/python -m pytest -ra

bench: setup
	$(VENV)/bin/python benchmarks/bench_trigger.py

clean:
	rm -rf outputs multirun .pytest_cache
