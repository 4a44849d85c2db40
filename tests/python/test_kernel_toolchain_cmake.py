"""fpyga_add_xclbin from a project of its own: the HLS header lookup and the build steps.

Each test configures a small CMake project in a temporary directory that includes
kernels/cmake/FpygaKernels.cmake, as a downstream user would. It has no fpyga CLI target, so the
toolchain builds the kernel .so and the JSON description and says it cannot pack the xclbin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing_input

ROOT = Path(__file__).resolve().parents[2]
CMAKE = shutil.which("cmake")
CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def _needs_cmake():
    """Every test here drives cmake: skipped without it, a failure under CI=true."""
    if CMAKE is None:
        missing_input("cmake is not installed")


def _hls4ml_templates() -> Path | None:
    spec = importlib.util.find_spec("hls4ml")
    if spec and spec.origin:
        d = Path(spec.origin).parent / "templates" / "vivado"
        if (d / "ap_types" / "ap_int.h").exists():
            return d
    return None


PROJECT = """
cmake_minimum_required(VERSION 3.20)
project(downstream LANGUAGES CXX)
list(APPEND CMAKE_MODULE_PATH "{kernels_cmake}")
include(FpygaKernels)
fpyga_add_xclbin(NAME twice SOURCES twice.cpp KERNELS twice CONNECTIVITY "sp=twice_1.out:bank2")
"""

KERNEL = """
#include <ap_fixed.h>
extern "C" void twice(const ap_fixed<16, 6>* in, ap_fixed<16, 6>* out, int n) {
#pragma HLS INTERFACE m_axi port=in offset=slave bundle=gmem
#pragma HLS INTERFACE m_axi port=out offset=slave bundle=gmem
  for (int i = 0; i < n; ++i) out[i] = in[i] * 2;
}
"""


def _project(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(PROJECT.format(kernels_cmake=ROOT / "kernels" / "cmake"))
    (src / "twice.cpp").write_text(KERNEL)
    return src


def _configure(src: Path, build: Path, python: str, env_extra: dict[str, str]):
    env = {k: v for k, v in os.environ.items() if k not in ("XILINX_HLS", "FPYGA_HLS_INCLUDE")}
    env.update(env_extra)
    return subprocess.run([CMAKE, "-S", str(src), "-B", str(build), f"-DPython_EXECUTABLE={python}"],
                          capture_output=True, text=True, env=env)


def _python_without_hls4ml() -> str | None:
    for exe in ("/usr/bin/python3", shutil.which("python3")):
        if not exe or not os.access(exe, os.X_OK):
            continue
        probe = subprocess.run([exe, "-c", "import importlib.util as u; print(u.find_spec('hls4ml') is None)"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return exe
    return None


def test_no_headers_is_a_configure_error_saying_how_to_get_them(tmp_path):
    python = _python_without_hls4ml()
    if python is None:
        pytest.skip("no Python without hls4ml on this machine to configure with")
    r = _configure(_project(tmp_path), tmp_path / "build", python, {})
    assert r.returncode != 0
    err = " ".join(r.stderr.split())
    assert "needs Xilinx's HLS headers" in err
    pin = next(l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("hls4ml=="))
    assert f"-m pip install '{pin}'" in err
    assert "XILINX_HLS" in err and "FPYGA_HLS_INCLUDE" in err


def test_fpyga_hls_include_without_headers_is_an_error(tmp_path):
    python = _python_without_hls4ml()
    if python is None:
        pytest.skip("no Python without hls4ml on this machine to configure with")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _configure(_project(tmp_path), tmp_path / "build", python, {"FPYGA_HLS_INCLUDE": str(empty)})
    assert r.returncode != 0
    assert "has no ap_int.h" in " ".join(r.stderr.split())


def test_xilinx_hls_first_then_build_so_and_description(tmp_path):
    templates = _hls4ml_templates()
    if templates is None:
        if CI:
            pytest.fail("hls4ml (the pinned one) is not installed in the test's Python")
        pytest.skip("hls4ml is not installed in the test's Python")
    # A stand-in Vitis HLS install: $XILINX_HLS/include holds the headers.
    vitis = tmp_path / "vitis_hls"
    vitis.mkdir()
    (vitis / "include").symlink_to(templates / "ap_types", target_is_directory=True)
    src = _project(tmp_path)
    build = tmp_path / "build"
    r = _configure(src, build, sys.executable, {"XILINX_HLS": str(vitis)})
    assert r.returncode == 0, r.stderr
    assert f"HLS headers from XILINX_HLS: {vitis / 'include'}" in r.stdout
    assert "so twice.xclbin is not packed" in " ".join(r.stderr.split())

    b = subprocess.run([CMAKE, "--build", str(build), "--target", "twice_xclbin"], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout + b.stderr
    so = build / "kernels" / "twice" / "twice.so"
    nm = shutil.which("nm")
    if nm:
        syms = subprocess.run([nm, "-D", "--defined-only", str(so)], capture_output=True, text=True, check=True).stdout
        assert any(line.split()[-1] == "twice" for line in syms.splitlines())
    desc = json.loads((build / "kernels" / "twice" / "twice.json").read_text())
    (k,) = desc["kernels"]
    assert [(a["name"], a["type"], a["offset"]) for a in k["args"]] == [
        ("in", "ap_fixed<16, 6> const *", 0x10), ("out", "ap_fixed<16, 6>*", 0x1C), ("n", "int", 0x28)]
    assert k["instances"][0]["connections"] == {"in": "bank0", "out": "bank2"}
    assert not (build / "kernels" / "twice.xclbin").exists()
