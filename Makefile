# DTU Gateway. `make run` and `make test` do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
APT_STAMP := build/.apt-installed
DTU ?=
LISTEN ?= 127.0.0.1:8080

.PHONY: all setup test test-fast bench run clean

all: test

setup: $(APT_STAMP) $(STAMP) $(NPM_STAMP)

$(APT_STAMP): requirements-apt.txt tools/setup_system.sh
	bash tools/setup_system.sh
	mkdir -p build && touch $@

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup
	$(PY) -m pytest tests_host -q -p no:cacheprovider

# Only the board-side unit tests, under the unix MicroPython (also part of `make test`).
test-mp: setup
	$(PY) tests_host/mp/run_all.py --micropython $(MP)

bench: setup
	$(PY) tools/bench.py

run: setup
	$(PY) tools/run_dev.py --listen $(LISTEN) $(if $(DTU),--dtu $(DTU))

clean:
	rm -rf build .pytest_cache .hypothesis
