# fpyga: the README's two commands.
#   make demo   set everything up, build, run the main job
#   make test   set everything up, build, run every test
#   make build  set-up and build only (library, CLI, Python package and kernels into .venv)
SHELL := /bin/bash
.DEFAULT_GOAL := build

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# The interpreter is chosen deliberately, not taken from PATH: Debian's own python3 (with
# python3-venv and python3-dev from apt). Override with `make PYTHON=/path/to/python3`.
PYTHON ?= /usr/bin/python3
VENV := $(ROOT)/.venv
BUILD := $(ROOT)/build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=

APT_PACKAGES := build-essential cmake pkg-config git python3 python3-venv python3-dev \
  libxrt-dev uuid-dev ocl-icd-opencl-dev opencl-headers opencl-clhpp-headers pocl-opencl-icd clinfo \
  libffi-dev libpugixml-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev \
  libbenchmark-dev clang-14 libclang-rt-14-dev

.PHONY: deps venv build test test-cpp test-python demo retrain fuzz clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing system packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "fpyga needs these Debian packages. Run:"; \
	    echo "  sudo apt-get install -y" $$missing; \
	    exit 1; \
	  fi; \
	fi

$(VENV)/.requirements: requirements.txt | deps
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	@cp requirements.txt $@

venv: deps $(VENV)/.requirements

build: venv
	cmake -S $(ROOT) -B $(BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DPython_EXECUTABLE=$(VENV)/bin/python -DCMAKE_INSTALL_PREFIX=$(VENV) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD) > /dev/null

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ROOT) && $(VENV)/bin/python -m pytest -q tests/python

demo: build
	cd $(ROOT) && $(VENV)/bin/python -m fpyga.demo

# Retrain the demo's models (scikit-learn, magnitude pruning) into models/; `make build` then
# reconverts them with hls4ml.
retrain: build
	cd $(ROOT) && $(VENV)/bin/python -m fpyga.demo.train

clean:
	rm -rf $(BUILD) $(VENV)
