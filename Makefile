# fpyga: the README's two commands.
#   make demo   set everything up, build, run the main job
#   make test   set everything up, build, run every test
#   make build  set-up and build only (pip installs the package: library, CLI, kernels into .venv)
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
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev libcpp-httplib-dev libssl-dev openssl

.PHONY: deps venv build test test-cpp test-python demo retrain fuzz sanitize tsan clean

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

# pip installs the project into .venv as the package users get (pyproject.toml, scikit-build-core:
# library, plugins, CLI, headers, CMake package, xclbins inside site-packages/fpyga), building in
# $(BUILD) with the test suites, benchmarks and the server switched on, so ctest runs there too.
build: venv
	cd $(ROOT) && CMAKE_GENERATOR="Unix Makefiles" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
	  CMAKE_ARGS="$(CMAKE_ARGS)" $(VENV)/bin/python -m pip install -v --no-build-isolation --no-deps \
	  --config-settings=build-dir=$(BUILD) --config-settings=cmake.define.FPYGA_BUILD_TESTS=ON \
	  --config-settings=cmake.define.FPYGA_BUILD_BENCH=ON --config-settings=cmake.define.FPYGA_WITH_SERVE=ON .

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ROOT) && $(VENV)/bin/python -m pytest -q tests/python
	cd $(ROOT) && FPYGA_PACKAGING_DIR=$(BUILD)/packaging CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
	  $(VENV)/bin/python -m pytest -q tests/packaging

demo: build
	cd $(ROOT) && $(VENV)/bin/python -m fpyga.demo

# Retrain the demo's models (scikit-learn, magnitude pruning) into models/; `make build` then
# reconverts them with hls4ml.
retrain: build
	cd $(ROOT) && $(VENV)/bin/python -m fpyga.demo.train

# libFuzzer over the xclbin reader, the pack description, emu's load up to the ELF check and the
# XRT backend's load on the noop shim, with ASan+UBSan, built by clang-14 in build-fuzz. FUZZ_TIME seconds per target; findings land in build-fuzz/tests/fuzz/artifacts.
FUZZ_BUILD := $(ROOT)/build-fuzz
FUZZ_TIME ?= 600
# Real files seed every target but fpyga_fuzz_description: the F1 awsxclbin and the project's
# kernels from `make build` (4-367 KB, so -max_len is raised from libFuzzer's 4096).
FUZZ_SEEDS := $(or $(FPYGA_TEST_DATA),$(ROOT)/../shared/data)/xclbin $(BUILD)/kernels
FUZZ_MAX_LEN ?= 400000
FUZZ_RUN = -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=artifacts/
fuzz: deps
	CC=clang-14 CXX=clang++-14 cmake -S $(ROOT) -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFPYGA_FUZZ=ON -DFPYGA_SANITIZE=ON -DFPYGA_BUILD_TESTS=OFF -DFPYGA_BUILD_PYTHON=OFF \
	  -DFPYGA_BUILD_KERNELS=OFF -DFPYGA_BUILD_BENCH=OFF -DFPYGA_BUILD_TOOLS=OFF
	cmake --build $(FUZZ_BUILD) --target fpyga_fuzz_xclbin fpyga_fuzz_description \
	  fpyga_fuzz_emu_load fpyga_fuzz_xrt_load fpyga_fuzz_corpus -j $(JOBS)
	mkdir -p $(FUZZ_BUILD)/tests/fuzz/artifacts $(FUZZ_BUILD)/tests/fuzz/seeds_real
	for d in $(FUZZ_SEEDS); do cp $$d/*.xclbin $$d/*.awsxclbin $(FUZZ_BUILD)/tests/fuzz/seeds_real/ 2>/dev/null || true; done; \
	  ls $(FUZZ_BUILD)/tests/fuzz/seeds_real
	cd $(FUZZ_BUILD)/tests/fuzz && ./fpyga_fuzz_xclbin corpus seeds_real -dict=$(ROOT)/tests/fuzz/xclbin.dict \
	  -max_len=$(FUZZ_MAX_LEN) $(FUZZ_RUN)
	cd $(FUZZ_BUILD)/tests/fuzz && ./fpyga_fuzz_description corpus_description $(FUZZ_RUN)
	cd $(FUZZ_BUILD)/tests/fuzz && mkdir -p corpus_emu && ./fpyga_fuzz_emu_load corpus_emu seeds_real corpus \
	  -dict=$(ROOT)/tests/fuzz/xclbin.dict -max_len=$(FUZZ_MAX_LEN) $(FUZZ_RUN)
	cd $(FUZZ_BUILD)/tests/fuzz && mkdir -p corpus_xrt && XCL_EMULATION_MODE=noop \
	  ./fpyga_fuzz_xrt_load corpus_xrt seeds_real corpus -dict=$(ROOT)/tests/fuzz/xclbin.dict \
	  -max_len=$(FUZZ_MAX_LEN) $(FUZZ_RUN)

# Sanitizer passes; CI (.ci/run) runs both after `make test`. Each builds in a directory of its
# own and fails on any sanitizer report, from a test or from any process a test starts: ASan,
# LSan and TSan reports go to files (log_path) that .ci/check-sanitizer-logs inspects at the end;
# a UBSan report aborts its process.
#   make sanitize  ASan + UBSan (float-cast-overflow, no recovery) on the library, tools, tests,
#                  Python extension and the kernels' .so: the C++ suite, then the Python suite in
#                  the venv's Python with the ASan runtime preloaded. Leak checking is on for the
#                  C++ suite and off for Python, which by design does not free everything at exit.
#                  The preload is the ASan runtime and libstdc++: ASan resolves its C++ exception
#                  interceptor at start-up, before Python would load libstdc++.
#   make tsan      TSan on the library and the C++ suites that run kernels from several threads.
ASAN_BUILD := $(ROOT)/build-asan
TSAN_BUILD := $(ROOT)/build-tsan
# The Python suites that drive the native core (buffers, kernels, overlays, devices, the nn
# binding, the hardening cases); the slow integration suites (hls4ml builds, the demo, Dask,
# the server, notebooks, the toolchain) run in `make test` and add little here but time.
SANITIZE_PYTEST ?= $(addprefix tests/python/,test_buffer.py test_device.py test_fixed.py \
  test_hardening_lifetime.py test_hardening_python.py test_hardening_xclbin.py test_kernel.py \
  test_nn_core.py test_opencl.py test_overlay.py test_pynq_flows.py test_xrt_noop.py \
  test_pynq_api.py test_pynq_devices.py test_plugins.py test_emu_streams.py test_emu_isolated.py)
# The suites whose tests start kernels from several threads, or race host calls with runs.
TSAN_TESTS ?= ^(emu_|api_|XrtNoop\.|xrt_hardening\.|NnModelEmu\.)
# Not emu_bounds: its faults are caught by a SIGSEGV handler that leaves with siglongjmp, which
# crashes under TSan's own signal handling (two of its tests, 2026-11-30); the normal and the
# ASan passes run them.
TSAN_EXCLUDE ?= ^emu_bounds\.
# `make tsan` builds only what those suites need: the CLI, the kernels and these test programs.
TSAN_PROGRAMS ?= fpyga_test_(emu|emu_memory|emu_args|emu_streams|emu_isolated|api|xrt_noop|xrt_hardening|nn_model)\b
SAN_OPTIONS_COMMON := print_stacktrace=1
# An allocation the host cannot back fails as it does without ASan (bad_alloc, NULL), since the
# tests check how fpyga handles that; ASan's default would abort the process instead.
ASAN_OPTIONS_COMMON := $(SAN_OPTIONS_COMMON):allocator_may_return_null=1
# GCC's UBSan runtime beside ASan writes to stderr whatever log_path says: a report aborts the
# process instead (SIGABRT), which no test mistakes for an ordinary error exit.
UBSAN_OPTIONS_COMMON := $(SAN_OPTIONS_COMMON):halt_on_error=1:abort_on_error=1
sanitize: venv
	cmake -S $(ROOT) -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFPYGA_SANITIZE=address -DFPYGA_SANITIZE_KERNELS=ON -DFPYGA_BUILD_BENCH=OFF \
	  -DPython_EXECUTABLE=$(VENV)/bin/python
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	rm -rf $(ASAN_BUILD)/sanitizer-logs && mkdir -p $(ASAN_BUILD)/sanitizer-logs
	cd $(ASAN_BUILD) && \
	  ASAN_OPTIONS=$(ASAN_OPTIONS_COMMON):detect_leaks=1:log_path=$(ASAN_BUILD)/sanitizer-logs/cpp-asan \
	  UBSAN_OPTIONS=$(UBSAN_OPTIONS_COMMON) \
	  ctest --output-on-failure -j $(JOBS); \
	  status=$$?; $(ROOT)/.ci/check-sanitizer-logs $(ASAN_BUILD)/sanitizer-logs && exit $$status
	cd $(ROOT) && preload=$$(ldd $(ASAN_BUILD)/python/fpyga/_core*.so | \
	    awk '/libasan/ {a = $$3} /libstdc\+\+/ {s = $$3} END {if (a && s) print a, s}') && \
	  test -n "$$preload" && \
	  LD_PRELOAD="$$preload" PYTHONMALLOC=malloc \
	  ASAN_OPTIONS=$(ASAN_OPTIONS_COMMON):detect_leaks=0:log_path=$(ASAN_BUILD)/sanitizer-logs/py-asan \
	  UBSAN_OPTIONS=$(UBSAN_OPTIONS_COMMON) \
	  PYTHONPATH=$(ASAN_BUILD)/python FPYGA_XCLBIN_DIR=$(ASAN_BUILD)/kernels \
	  FPYGA_CLI=$(ASAN_BUILD)/cpp/tools/fpyga FPYGA_SANITIZED_KERNELS=1 \
	  $(VENV)/bin/python -m pytest -q -p no:cacheprovider $(SANITIZE_PYTEST); \
	  status=$$?; $(ROOT)/.ci/check-sanitizer-logs $(ASAN_BUILD)/sanitizer-logs && exit $$status

tsan: venv
	cmake -S $(ROOT) -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFPYGA_SANITIZE=thread \
	  -DFPYGA_BUILD_PYTHON=OFF -DFPYGA_BUILD_BENCH=OFF -DPython_EXECUTABLE=$(VENV)/bin/python
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target fpyga_cli fpyga_kernels \
	  $$(cmake --build $(TSAN_BUILD) --target help | grep -oE '$(TSAN_PROGRAMS)' | sort -u)
	rm -rf $(TSAN_BUILD)/sanitizer-logs && mkdir -p $(TSAN_BUILD)/sanitizer-logs
	cd $(TSAN_BUILD) && \
	  TSAN_OPTIONS=$(SAN_OPTIONS_COMMON):second_deadlock_stack=1:die_after_fork=0:suppressions=$(ROOT)/tests/tsan-suppressions.txt:log_path=$(TSAN_BUILD)/sanitizer-logs/tsan \
	  ctest --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)' -E '$(TSAN_EXCLUDE)'; \
	  status=$$?; $(ROOT)/.ci/check-sanitizer-logs $(TSAN_BUILD)/sanitizer-logs && exit $$status

clean:
	rm -rf $(BUILD) $(VENV)
