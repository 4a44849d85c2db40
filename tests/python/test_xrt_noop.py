"""The XRT backend through the PYNQ-shaped Python API on XRT's noop shim.

XRT picks its shim once per process, from XCL_EMULATION_MODE, before fpyga's first device
enumeration; each scenario therefore runs in a fresh interpreter with XCL_EMULATION_MODE=noop
(and XILINX_XRT unset, which fpyga must handle). The noop shim computes nothing: the scenarios
check the flow (devices, loads, banks, syncs, calls, runs, overlays in turn) and the errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fpyga

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"


def _shared_xclbin() -> Path:
    base = Path(os.environ["FPYGA_TEST_DATA"]) if os.environ.get("FPYGA_TEST_DATA") else \
        ROOT.parent / "shared" / "data"
    path = base / "xclbin" / "aws_vector_addition_2018_3.awsxclbin"
    if not path.exists():
        reason = f"test input not found: {path} (set FPYGA_TEST_DATA)"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _built(name: str) -> Path:
    candidates = []
    if os.environ.get("FPYGA_XCLBIN_DIR"):
        candidates.append(Path(os.environ["FPYGA_XCLBIN_DIR"]))
    candidates += [ROOT / "build" / "kernels", Path(sys.prefix) / "share" / "fpyga" / "xclbin"]
    for d in candidates:
        if (d / f"{name}.xclbin").exists():
            return d / f"{name}.xclbin"
    reason = f"{name}.xclbin not built (build the fpyga_kernels target)"
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


def run_noop(code: str, devices: int = 1) -> str:
    """Runs `code` in a fresh interpreter on the noop shim; returns its stdout."""
    env = dict(os.environ)
    env.update(XCL_EMULATION_MODE="noop", FPYGA_XRT_NOOP_DEVICES=str(devices))
    env.pop("XILINX_XRT", None)
    env.pop("FPYGA_DEVICE", None)
    # The fpyga being tested, wherever this interpreter found it.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(fpyga.__file__).resolve().parents[1])] + sys.path)
    prelude = "import numpy as np\nimport fpyga\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"scenario failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_noop_device_is_discovered_and_default():
    out = run_noop("""
        import os
        devs = fpyga.Device.devices
        assert [d.backend for d in devs][:2] == ["xrt", "xrt"], devs
        assert "emu" in [d.backend for d in devs]
        assert fpyga.Device.active_device == devs[0]
        assert "noop" in devs[0].name
        # fpyga set XILINX_XRT in the C environment (os.environ is Python's copy from startup)
        import ctypes
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_char_p
        root = libc.getenv(b"XILINX_XRT").decode()
        assert os.path.exists(os.path.join(root, "lib", "libxrt_noop.so.2")), root
        print("ok", len(devs))
    """, devices=2)
    assert out.startswith("ok")


def test_awsxclbin_flow():
    path = _shared_xclbin()
    run_noop(f"""
        dev = [d for d in fpyga.Device.devices if d.backend == "xrt"][0]
        ol = fpyga.Overlay({str(path)!r}, device=dev)
        assert "vector_add_1" in ol.ip_dict
        assert ol.ip_dict["vector_add_1"]["cu_name"] == "vector_add:vector_add_1"
        assert set(ol.mem_dict) == {{"bank0", "bank1", "bank2", "bank3"}}
        # every used bank takes buffers (PYNQ exposes only used banks as attributes)
        used = [tag for tag, m in ol.mem_dict.items() if m["used"]]
        assert used == ["bank0"], ol.mem_dict
        for tag in used:
            buf = fpyga.allocate(1024, "u4", target=getattr(ol, tag))
            buf.sync_to_device()
            buf.sync_from_device()
            buf.freebuffer()
        a = fpyga.allocate(1024, "u4", target=ol.bank0)
        b = fpyga.allocate(1024, "u4", target=ol.bank0)
        c = fpyga.allocate(1024, "u4", target=ol.bank0)
        assert a.device_address == 0xdeadbeef
        a[:] = 1; b[:] = 2
        a.sync_to_device(); b.sync_to_device()
        ol.vector_add.call(c, a, b, 1024)
        c.sync_from_device()
        h = ol.vector_add_1.start(c, a, b, 16)
        h.wait()
        for i in range(100):
            ol.vector_add.call(c, a, b, i)
        try:
            ol.vector_add.call(c, a, b)
        except TypeError as e:
            assert "vector_add" in str(e)
        else:
            raise AssertionError("wrong argument count accepted")
        try:
            ol.vector_add.read(0x10)
        except RuntimeError as e:
            assert "noop" in str(e), e
        else:
            raise AssertionError("noop shim registers read")
        ol.vector_add.call(c, a, b, 3)   # still usable
    """)


def test_project_xclbins_in_turn_and_two_cus():
    vadd, two, mlp = _built("vadd"), _built("vadd_2cu"), _built("mlp")
    run_noop(f"""
        dev = fpyga.Device.devices[0]
        assert dev.backend == "xrt"
        ol = fpyga.Overlay({str(vadd)!r}, device=dev)
        a = fpyga.allocate(64, "u4", target=dev); b = fpyga.allocate(64, "u4", target=dev)
        c = fpyga.allocate(64, "u4", target=dev)
        ol.vadd.call(a, b, c, 64)

        ol2 = fpyga.Overlay({str(two)!r}, device=dev)
        assert not ol.is_loaded()
        x0 = [fpyga.allocate(64, "u4", target=ol2.bank0) for _ in range(3)]
        x1 = [fpyga.allocate(64, "u4", target=ol2.bank1) for _ in range(3)]
        h0 = ol2.vadd.start(*x0, 64)
        h1 = ol2.vadd.start(*x1, 64)
        h0.wait(); h1.wait()
        try:
            ol2.vadd_2.call(*x0, 64)   # bank0 buffers on the CU wired to bank1
        except ValueError as e:
            assert "bank" in str(e)
        else:
            raise AssertionError("buffer in the wrong bank accepted")
        ol2.vadd_2.call(*x1, 64)

        ol3 = fpyga.Overlay({str(mlp)!r}, device=dev)
        xin = fpyga.allocate(27, "i2", target=dev); yout = fpyga.allocate(1, "i2", target=dev)
        xin.sync_to_device()
        ol3.mlp.call(xin, yout)
        yout.sync_from_device()
    """)


def test_one_overlay_per_device():
    path, vadd = _shared_xclbin(), _built("vadd")
    run_noop(f"""
        d0, d1 = fpyga.Device.devices[:2]
        o0 = fpyga.Overlay({str(path)!r}, device=d0)
        o1 = fpyga.Overlay({str(vadd)!r}, device=d1)
        assert o0.is_loaded() and o1.is_loaded()
        bufs0 = [fpyga.allocate(16, "u4", target=o0.bank0) for _ in range(3)]
        bufs1 = [fpyga.allocate(16, "u4", target=d1) for _ in range(3)]
        o0.vector_add.call(*bufs0, 16)
        o1.vadd.call(*bufs1, 16)
    """, devices=2)
