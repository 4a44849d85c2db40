"""Shared fixtures of fpyga's Python tests.

- ``device``: every device ``fpyga.Device.devices`` lists (emu always), filtered by the
  environment variable ``FPYGA_TEST_DEVICES`` (a comma-separated list of backends or specs, e.g.
  ``emu,xrt`` or ``emu:0``).
- ``overlay_path(device, name)``: the overlay file of one of the project's kernels for that
  device: ``<name>.xclbin`` from the built kernels, or on an OpenCL device that builds OpenCL C
  (PoCL, GPUs) ``kernels/opencl/<name>.cl``; a device that can run neither is skipped, saying why.
- ``xclbin_dir``: the built kernels: ``$FPYGA_XCLBIN_DIR``, else ``<repo>/build/kernels``, else
  ``sys.prefix/share/fpyga/xclbin``.
- ``real_xclbin``: the real F1 awsxclbin (``$FPYGA_TEST_DATA/xclbin`` or
  ``<repo>/../shared/data/xclbin``). Missing inputs skip with the reason, and fail under CI=true.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fpyga

REPO = Path(__file__).resolve().parents[2]
REAL_XCLBIN_NAME = "aws_vector_addition_2018_3.awsxclbin"


def missing_input(reason):
    """Skips the test for a missing input, or fails it under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required test input missing (CI=true): {reason}")
    pytest.skip(reason)


def _selected_devices():
    wanted = [w.strip() for w in os.environ.get("FPYGA_TEST_DEVICES", "").split(",") if w.strip()]
    devices = fpyga.Device.devices
    if not wanted:
        return devices
    return [d for d in devices if d.backend in wanted or d.spec in wanted]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        devices = _selected_devices()
        metafunc.parametrize("device", devices, ids=[d.spec for d in devices])


def _xclbin_dirs():
    dirs = []
    if os.environ.get("FPYGA_XCLBIN_DIR"):
        dirs.append(Path(os.environ["FPYGA_XCLBIN_DIR"]))
    dirs += [REPO / "build" / "kernels", Path(sys.prefix) / "share" / "fpyga" / "xclbin"]
    return dirs


@pytest.fixture(scope="session")
def xclbin_dir():
    """Directory of the project's built kernel xclbins."""
    for d in _xclbin_dirs():
        if (d / "vadd.xclbin").is_file():
            return d
    missing_input(
        "the project's kernel xclbins were not found in "
        + ", ".join(str(d) for d in _xclbin_dirs())
        + " (build them with `make build`, or set FPYGA_XCLBIN_DIR)"
    )


def runs_xclbins(device):
    """True for devices that load xclbins: emu, XRT, and Xilinx's OpenCL platform."""
    return device.backend != "opencl" or "xilinx" in device.name.lower()


@pytest.fixture
def overlay_path(xclbin_dir):
    """``overlay_path(device, name)``: the overlay file of kernel set ``name`` for ``device``."""

    def find(device, name):
        if runs_xclbins(device):
            path = xclbin_dir / f"{name}.xclbin"
            if not path.is_file():
                missing_input(f"{path} was not built")
            return path
        source = REPO / "kernels" / "opencl" / f"{name}.cl"
        if source.is_file():
            return source
        pytest.skip(f"{device.spec} ({device.name}) builds OpenCL C sources and there is no "
                    f"OpenCL C version of '{name}' in kernels/opencl")

    return find


@pytest.fixture(scope="session")
def fpyga_cli(xclbin_dir):
    """Path of the ``fpyga`` command line: ``$FPYGA_CLI``, the build's ``cpp/tools/fpyga`` beside
    its kernels, ``<prefix>/bin/fpyga``, or the one on PATH."""
    candidates = [os.environ.get("FPYGA_CLI"), str(Path(xclbin_dir).parent / "cpp" / "tools" / "fpyga"),
                  str(Path(sys.prefix) / "bin" / "fpyga"), shutil.which("fpyga")]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        missing_input("the fpyga CLI ($FPYGA_CLI, <build>/cpp/tools/fpyga, <prefix>/bin/fpyga)")
    return found


@pytest.fixture(scope="session")
def pack_sw_emu_kernel(fpyga_cli, tmp_path_factory):
    """Builds a test kernel from C++ source as an sw_emu xclbin: ``pack(name, source,
    description)`` compiles ``source`` into a shared object (as v++ -t sw_emu does) and packs it
    with ``description`` (``fpyga xclbin pack --json``); returns the xclbin's path."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")

    def pack(name, source, description):
        if cxx is None:
            missing_input("a C++ compiler (g++) to build the test kernels")
        d = tmp_path_factory.mktemp(name)
        (d / f"{name}.cpp").write_text(source)
        (d / f"{name}.json").write_text(json.dumps(description))
        subprocess.run([cxx, "-std=c++17", "-O2", "-shared", "-fPIC", "-o", str(d / f"{name}.so"),
                        str(d / f"{name}.cpp")], check=True)
        subprocess.run([fpyga_cli, "xclbin", "pack", "--json", str(d / f"{name}.json"),
                        "--bitstream", str(d / f"{name}.so"), "-o", str(d / f"{name}.xclbin")],
                       check=True)
        return d / f"{name}.xclbin"

    return pack


@pytest.fixture(scope="session")
def real_xclbin():
    """Path of the real AWS F1 awsxclbin (vector addition, SDAccel 2018.3)."""
    dirs = []
    if os.environ.get("FPYGA_TEST_DATA"):
        dirs.append(Path(os.environ["FPYGA_TEST_DATA"]) / "xclbin")
    dirs.append(REPO.parent / "shared" / "data" / "xclbin")
    for d in dirs:
        if (d / REAL_XCLBIN_NAME).is_file():
            return d / REAL_XCLBIN_NAME
    missing_input(f"{REAL_XCLBIN_NAME} not found in " + ", ".join(map(str, dirs))
                  + " (set FPYGA_TEST_DATA)")


@pytest.fixture
def emu():
    """The emulated device (always present)."""
    return fpyga.Device.open("emu")


# Builds of hls4ml networks (fpyga.hls4ml.build) go to a cache of this test session, never the
# user's: every run exercises the real build, and leaves nothing behind.
if "FPYGA_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["FPYGA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fpyga-test-cache-")
    atexit.register(shutil.rmtree, os.environ["FPYGA_CACHE_DIR"], True)
