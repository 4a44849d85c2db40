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
  libbenchmark-dev clang-14 libclang-rt-14-dev \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev libcpp-httplib-dev

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

# libFuzzer over the xclbin reader (and the pack description) with ASan+UBSan, built by clang-14
# in build-fuzz. FUZZ_TIME seconds per target; findings land in build-fuzz/tests/fuzz/artifacts.
FUZZ_BUILD := $(ROOT)/build-fuzz
FUZZ_TIME ?= 600
fuzz: deps
	CC=clang-14 CXX=clang++-14 cmake -S $(ROOT) -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFPYGA_FUZZ=ON -DFPYGA_SANITIZE=ON -DFPYGA_BUILD_TESTS=OFF -DFPYGA_BUILD_PYTHON=OFF \
	  -DFPYGA_BUILD_KERNELS=OFF -DFPYGA_BUILD_BENCH=OFF -DFPYGA_BUILD_TOOLS=OFF
	cmake --build $(FUZZ_BUILD) --target fpyga_fuzz_xclbin fpyga_fuzz_description fpyga_fuzz_corpus -j $(JOBS)
	mkdir -p $(FUZZ_BUILD)/tests/fuzz/artifacts
	cd $(FUZZ_BUILD)/tests/fuzz && ./fpyga_fuzz_xclbin corpus -dict=$(ROOT)/tests/fuzz/xclbin.dict \
	  -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=artifacts/
	cd $(FUZZ_BUILD)/tests/fuzz && ./fpyga_fuzz_description corpus_description \
	  -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=artifacts/

clean:
	rm -rf $(BUILD) $(VENV)
