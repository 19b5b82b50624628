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

STUBS_STAMP := build/stubs/.installed

setup: $(APT_STAMP) $(STAMP) $(NPM_STAMP) $(STUBS_STAMP)

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

# The boards' published stubs (pinned in requirements-dev.txt), one folder per board
# (build/stubs/esp32, build/stubs/esp8266), for tools/check_board_stubs.py.
$(STUBS_STAMP): $(STAMP)
	$(PY) tools/check_board_stubs.py --install
	touch $@

test: setup
	$(PY) -m pytest tests_host -q -p no:cacheprovider -n 2 --dist loadfile

# Only the board-side unit tests, under the unix MicroPython (also part of `make test`).
test-mp: setup
	$(PY) tests_host/mp/run_all.py --micropython $(MP)

bench: setup
	$(PY) tools/bench/run.py

run: setup
	$(PY) tools/run_dev.py --listen $(LISTEN) $(if $(DTU),--dtu $(DTU))

# The web app: web_static/ minified and gzipped into build/web/ (run_host.py does it too).
.PHONY: web
web:
	$(PYTHON) tools/build_web.py

# A real board (tools/boardctl.py; README "Hardware quick start"). Each checks PORT first.
PORT ?=
BOARD ?=
IMAGE ?=
BOARD_ARGS = $(if $(PORT),--port $(PORT)) $(if $(BOARD),--board $(BOARD))
.PHONY: flash deploy console romfs romfs-image bench-memory
flash: $(STAMP)
	$(PY) tools/boardctl.py flash $(BOARD_ARGS) $(if $(IMAGE),--image $(IMAGE))
deploy: $(STAMP)
	$(PY) tools/boardctl.py deploy $(BOARD_ARGS)
console: $(STAMP)
	$(PY) tools/boardctl.py console $(if $(PORT),--port $(PORT))
romfs: $(STAMP)
	$(PY) tools/boardctl.py romfs $(BOARD_ARGS)
# Just the memory budget section of `make bench` (tools/bench/memory.py, through the one runner; a few minutes).
# FROZEN=path/to/micropython: a build with the app frozen in (README, Memory budget) for the
# real figures next to the estimates; MQTT=1: every run with MQTT and discovery on.
FROZEN ?=
MQTT ?=
bench-memory: setup
	$(PY) tools/bench/run.py memory --verbose $(if $(FROZEN),--frozen $(FROZEN)) $(if $(MQTT),--mqtt)

romfs-image: $(STAMP)
	$(PY) tools/boardctl.py romfs --build-only $(if $(BOARD),--board $(BOARD))

# Updates (tools/bundle.py): build/bundle/ is the board's filesystem;
# build/release/ the archive, manifest.json and version.json for a GitHub release.
CHANNEL ?= release
RELEASE_TAG ?=
.PHONY: bundle release
bundle: $(STAMP)
	$(PY) tools/bundle.py bundle --channel $(CHANNEL)
release: $(STAMP)
	$(PY) tools/bundle.py release --channel $(CHANNEL) $(if $(RELEASE_TAG),--tag $(RELEASE_TAG))

clean:
	rm -rf build .pytest_cache .hypothesis
