"""PYNQ's device-level expectations (issue 13): device order, introspection values that say what
they are, and old F1 images whose IP_LAYOUT names compute units by their kernel only.

XRT's noop shim is chosen once per process, so its scenarios run in a fresh interpreter (as in
test_xrt_noop.py). Old images are built here with ``fpyga xclbin pack`` (``ip_layout_name``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fpyga

from conftest import missing_input

ROOT = Path(__file__).resolve().parents[2]

VADD_SOURCE = r"""
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
"""

CLOCKS = [{"name": "DATA_CLK", "frequency_mhz": 250, "type": "data"},
          {"name": "KERNEL_CLK", "frequency_mhz": 500, "type": "kernel"}]

# vadd as an old image: IP_LAYOUT says "vadd", the metadata's instances vadd_1 and vadd_2.
OLD_VADD = {
    "mode": "sw_emu",
    "clocks": CLOCKS,
    "memories": [{"tag": "bank0", "used": True, "base_address": 0, "size_bytes": 1048576},
                 {"tag": "bank1", "used": True, "base_address": 17179869184, "size_bytes": 1048576}],
    "kernels": [{"name": "vadd", "args": [
        {"name": "in1", "type": "unsigned int const *"}, {"name": "in2", "type": "unsigned int const *"},
        {"name": "out_r", "type": "unsigned int *"}, {"name": "size", "type": "int"}],
        "instances": [
            {"name": "vadd_1", "ip_layout_name": "vadd", "base_address": 25165824,
             "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}},
            {"name": "vadd_2", "ip_layout_name": "vadd", "base_address": 25231360,
             "connections": {"in1": "bank1", "in2": "bank1", "out_r": "bank1"}}]}],
}

# An F1 image as SDAccel 2018 wrote them: "vector_add" in IP_LAYOUT, "vector_add_1" in the XML.
OLD_F1 = {
    "mode": "pr",
    "platform": "xilinx_aws-vu9p-f1-04261818_dynamic_5_0",
    "clocks": [{"name": "clk_main_a0", "frequency_mhz": 250, "type": "system"}] + CLOCKS,
    "memories": [{"tag": "bank0", "used": True, "base_address": 0},
                 {"tag": "bank1", "used": False}, {"tag": "bank2", "used": False},
                 {"tag": "bank3", "used": False}],
    "kernels": [{"name": "vector_add", "language": "clc", "args": [
        {"name": "c", "type": "int*"}, {"name": "a", "type": "int*"}, {"name": "b", "type": "int*"},
        {"name": "n_elements", "type": "int"}],
        "instances": [{"name": "vector_add_1", "ip_layout_name": "vector_add", "base_address": 0,
                       "connections": {"c": "bank0", "a": "bank0", "b": "bank0"}}]}],
}


def _pack(cli, directory, name, description, bitstream):
    desc = directory / f"{name}.json"
    desc.write_text(json.dumps(description))
    out = directory / f"{name}.xclbin"
    subprocess.run([cli, "xclbin", "pack", "--json", str(desc), "--bitstream", str(bitstream),
                    "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def old_images(fpyga_cli, tmp_path_factory):
    """(old-style vadd for emu, old F1 image for XRT), both packed by the CLI."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        missing_input("a C++ compiler (g++) to build the test kernel")
    d = tmp_path_factory.mktemp("old_images")
    (d / "vadd.cpp").write_text(VADD_SOURCE)
    subprocess.run([cxx, "-O2", "-shared", "-fPIC", "-o", str(d / "vadd.so"), str(d / "vadd.cpp")],
                   check=True)
    (d / "agfi.txt").write_bytes(b"agfi-0123456789abcdef0")
    return (_pack(fpyga_cli, d, "old_vadd", OLD_VADD, d / "vadd.so"),
            _pack(fpyga_cli, d, "old_f1", OLD_F1, d / "agfi.txt"))


def run_noop(code: str, devices: int = 1) -> str:
    """Runs `code` in a fresh interpreter on XRT's noop shim; returns its stdout."""
    env = dict(os.environ)
    env.update(XCL_EMULATION_MODE="noop", FPYGA_XRT_NOOP_DEVICES=str(devices))
    env.pop("XILINX_XRT", None)
    env.pop("FPYGA_DEVICE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(fpyga.__file__).resolve().parents[1])] + sys.path)
    prelude = "import numpy as np\nimport fpyga\nfrom fpyga import _core\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# --- device order -------------------------------------------------------------------------------


def test_the_first_device_is_the_active_device_and_loads_xclbins(xclbin_dir):
    devices = fpyga.Device.devices
    assert devices[0] == fpyga.Device.active_device
    kinds = [d._core.loads_xclbin for d in devices]
    assert kinds == sorted(kinds, reverse=True), [(d.spec, k) for d, k in zip(devices, kinds)]
    for d in devices:
        if d.backend == "emu":
            assert d._core.loads_xclbin
    # What failed before: the first listed device could not load the user's xclbin.
    ol = fpyga.Overlay(str(xclbin_dir / "vadd.xclbin"), device=fpyga.Device.devices[0])
    a = fpyga.allocate(16, "u4", target=ol.bank0)
    b = fpyga.allocate(16, "u4", target=ol.bank0)
    c = fpyga.allocate(16, "u4", target=ol.bank0)
    a[:] = np.arange(16)
    b[:] = 100
    a.sync_to_device()
    b.sync_to_device()
    ol.vadd.call(a, b, c, 16)
    c.sync_from_device()
    assert list(c) == list(np.arange(16) + 100)


def test_on_xrt_the_cards_come_first_and_the_default_leads():
    out = run_noop("""
        specs = [d.spec for d in fpyga.Device.devices]
        print(specs)
        assert specs[:2] == ["xrt:0", "xrt:1"], specs
        assert fpyga.Device.devices[0] == fpyga.Device.active_device
        loads = [d._core.loads_xclbin for d in fpyga.Device.devices]
        assert loads == sorted(loads, reverse=True), list(zip(specs, loads))
        print("ok")
    """, devices=2)
    assert out.strip().endswith("ok")


# --- introspection --------------------------------------------------------------------------------


def test_emu_sensors_are_absent_not_made_up(emu):
    s = emu._core.sensors()
    assert s.source == ""
    assert s.power_watts is None
    assert s.rails == [] and s.temperatures == []
    assert "emu" in s.note
    assert emu._core.max_clock_frequency_mhz() is None


def test_emu_memory_usage_is_the_bank_allocators(emu, old_images):
    if os.environ.get("FPYGA_EMU_CHECK_BOUNDS"):
        pytest.skip("guard pages change the bytes a buffer holds")
    ol = fpyga.Overlay(str(old_images[0]), device=emu)
    core_bank = ol.bank1._core
    before = core_bank.usage()
    assert (before.source, before.tag, before.index) == ("emu", "bank1", 1)
    assert (before.used_bytes, before.buffers) == (0, 0)
    x = fpyga.allocate(1500, "u4", target=ol.bank1)  # 6000 bytes: two 4 KiB granules
    y = fpyga.allocate(1, "u1", target=ol.bank1)
    u = core_bank.usage()
    assert (u.used_bytes, u.buffers) == (8192 + 4096, 2)
    usage = emu._core.memory_usage()
    assert [m.tag for m in usage] == ["bank0", "bank1"]
    assert (usage[0].buffers, usage[1].buffers) == (0, 2)
    x.freebuffer()
    assert (core_bank.usage().used_bytes, core_bank.usage().buffers) == (4096, 1)
    y.freebuffer()
    assert core_bank.usage().buffers == 0


def test_clocks_come_from_the_loaded_xclbin(emu, old_images):
    ol = fpyga.Overlay(str(old_images[0]), device=emu)
    clocks = emu._core.clocks()
    assert [(c.name, c.type, c.frequency_mhz, c.source) for c in clocks] == [
        ("DATA_CLK", "data", 250, "xclbin"), ("KERNEL_CLK", "kernel", 500, "xclbin")]
    ol.free()
    assert emu._core.clocks() == []


def test_xrt_noop_introspection_says_what_it_is(old_images):
    out = run_noop(f"""
        dev = fpyga.Device.open("xrt:0")
        s = dev._core.sensors()
        assert s.source == "" and s.power_watts is None, s
        assert s.rails == [] and s.temperatures == [], s
        assert "noop" in s.note, s.note
        assert dev._core.max_clock_frequency_mhz() is None
        ol = fpyga.Overlay({str(old_images[1])!r}, device=dev)
        assert [(c.name, c.frequency_mhz) for c in dev._core.clocks()] == [
            ("clk_main_a0", 250), ("DATA_CLK", 250), ("KERNEL_CLK", 500)]
        u = ol.bank0._core.usage()
        assert (u.source, u.used_bytes, u.buffers) == ("fpyga", 0, 0), u
        buf = fpyga.allocate(5000, "u1", target=ol.bank0)
        u = ol.bank0._core.usage()
        assert (u.used_bytes, u.buffers) == (8192, 1), u
        assert [m.buffers for m in dev._core.memory_usage()] == [1, 0, 0, 0]
        buf.freebuffer()
        assert ol.bank0._core.usage().buffers == 0
        print("ok")
    """)
    assert out.strip().endswith("ok")


# --- old F1 images --------------------------------------------------------------------------------


def test_old_style_image_runs_on_emu_named_as_pynq_names_it(emu, old_images):
    ol = fpyga.Overlay(str(old_images[0]), device=emu)
    assert sorted(ol.ip_dict) == ["vadd_1", "vadd_2"]
    assert ol.ip_dict["vadd_2"]["cu_name"] == "vadd:vadd_2"
    for name, bank in (("vadd_1", ol.bank0), ("vadd_2", ol.bank1)):
        a = fpyga.allocate(32, "u4", target=bank)
        b = fpyga.allocate(32, "u4", target=bank)
        c = fpyga.allocate(32, "u4", target=bank)
        a[:] = np.arange(32)
        b[:] = 7
        a.sync_to_device()
        b.sync_to_device()
        getattr(ol, name).call(a, b, c, 32)
        c.sync_from_device()
        assert list(c) == list(np.arange(32) + 7), name


def test_old_f1_image_loads_on_xrt_named_as_pynq_names_it(old_images):
    out = run_noop(f"""
        ol = fpyga.Overlay({str(old_images[1])!r}, device=fpyga.Device.open("xrt:0"))
        assert list(ol.ip_dict) == ["vector_add_1"], list(ol.ip_dict)
        assert ol.ip_dict["vector_add_1"]["cu_name"] == "vector_add:vector_add_1"
        k = ol.vector_add_1
        c = fpyga.allocate(1024, "i4", target=ol.bank0)
        a = fpyga.allocate(1024, "i4", target=ol.bank0)
        b = fpyga.allocate(1024, "i4", target=ol.bank0)
        a.sync_to_device(); b.sync_to_device()
        k.call(c, a, b, 1024)
        k.start(c, a, b, 1024).wait()
        print("ok")
    """)
    assert out.strip().endswith("ok")
