"""PYNQ 3.0.1's Alveo API beyond the introduction flows (issue 13): the scheduling idiom with
None, driver classes, MMIO and argument tuples, register bit slices, device and memory
introspection, power recording, PYNQ's module names, the Overlay signature and lifecycle, and
running unmodified `import pynq` code.

Each item runs on emu here and on XRT's noop shim in a fresh interpreter (see test_xrt_noop.py:
XRT picks its shim once per process). The expected values are PYNQ 3.0.1's, read on the noop
shim side by side (``XrtArgument(name='in1', index=1, type='unsigned int const *',
mem='bank0')``...).
"""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import fpyga as pynq
from fpyga.repr_dict import ReprDict
from test_xrt_noop import run_noop

VADD_VLNV = "xilinx.com:hls:vadd:1.0"
PYNQ_RAILS = ["0v85", "12v_aux", "12v_pex", "12v_sw", "1v8", "3v3_aux", "3v3_pex", "mgt0v9avcc",
              "mgtavtt", "sys_5v5", "vccint"]


@pytest.fixture
def vadd(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    yield ol
    if ol.is_loaded():
        ol.free()


def buffers(device, n, count=3):
    return [pynq.allocate(n, "u4", target=device) for _ in range(count)]


def noop(code, xclbin_dir):
    return run_noop(f"XCLBIN_DIR = {str(xclbin_dir)!r}\nimport fpyga as pynq\n" +
                    textwrap.dedent(code))


def load_vadd_with_a_failing_driver(device, xclbin_dir):
    """Loads vadd.xclbin while a driver bound to vadd raises in its __init__."""
    class Broken(pynq.DefaultIP):
        bindto = [VADD_VLNV]

        def __init__(self, description):
            raise RuntimeError("driver bug")

    try:
        with pytest.raises(RuntimeError, match="driver bug"):
            pynq.Overlay(xclbin_dir / "vadd.xclbin", device=device)
    finally:
        Broken.unregister()


# --- scheduling: waitfor with None, and free() after a failed start -----------------------------

def test_waitfor_skips_none_and_a_failed_start_leaves_free_working(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    n = 1024
    a, b, t0, t1, out = (pynq.allocate(n, "u4", target=ol.bank0) for _ in range(5))
    c, d = (pynq.allocate(n, "u4", target=ol.bank1) for _ in range(2))
    a[:] = np.arange(n)
    b[:] = 5
    a.sync_to_device()
    b.sync_to_device()
    # Alveo-PYNQ's chain: the first link waits for (h1, h2, None).
    chain = None
    for _ in range(3):
        h1 = ol.vadd_1.start(a, b, t0, n)
        h2 = ol.vadd_1.start(a, a, t1, n)
        chain = ol.vadd_1.start(t0, t1, out, n, waitfor=(h1, h2, chain))
    chain.wait()
    out.sync_from_device()
    assert np.array_equal(out, np.arange(n) * 3 + 5)
    assert ol.vadd_2.start(c, d, c, n, waitfor=[None, None]).wait() is None
    # Failing starts (a wrong argument, a wrong waitfor entry) leave nothing in flight.
    h = ol.vadd_1.start(a, b, t0, n)
    with pytest.raises(TypeError, match="size"):
        ol.vadd_1.start(a, b, t0, "n", waitfor=(h, None))
    with pytest.raises(TypeError, match="waitfor expects handles"):
        ol.vadd_1.start(a, b, t0, n, waitfor=(h, 5))
    h.wait()
    ol.free()
    assert not ol.is_loaded()


def test_waitfor_none_and_free_on_xrt_noop(xclbin_dir):
    out = noop("""
        ol = pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin")
        a, b, c = (pynq.allocate(64, "u4") for _ in range(3))
        h = ol.vadd_1.start(a, b, c, 64)
        h2 = ol.vadd_1.start(a, b, c, 64, waitfor=(h, None))
        h2.wait()
        try:
            ol.vadd_1.start(a, b, c, "x", waitfor=(h2, None))
        except TypeError:
            pass
        ol.free()
        print("freed", ol.is_loaded())
    """, xclbin_dir)
    assert "freed False" in out


# --- driver classes, DefaultIP, MMIO, args ------------------------------------------------------

def test_driver_class_is_bound_by_vlnv(emu, xclbin_dir):
    class Vadd(pynq.DefaultIP):
        bindto = [VADD_VLNV]

        def __init__(self, description):
            super().__init__(description)
            self.seen = description["fullpath"]

        def add(self, a, b, c):
            self.call(a, b, c, len(c))

    try:
        ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
        assert type(ol.vadd_1) is Vadd and ol.vadd_1.seen == "vadd_1"
        assert ol.ip_dict["vadd_1"]["driver"] is Vadd
        assert ol.ip_dict["vadd_1"]["device"] is emu
        a, b, c = buffers(emu, 32)
        a[:] = np.arange(32)
        b[:] = 1
        a.sync_to_device()
        b.sync_to_device()
        ol.vadd_1.add(a, b, c)
        c.sync_from_device()
        assert np.array_equal(c, np.arange(32) + 1)
        assert "Vadd" in ol.__doc__
    finally:
        Vadd.unregister()
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    assert type(ol.vadd_1) is pynq.DefaultIP


def test_driver_for_another_version_needs_ignore_version(emu, xclbin_dir):
    class Vadd2(pynq.DefaultIP):
        bindto = ["xilinx.com:hls:vadd:2.0"]

    try:
        with pytest.warns(UserWarning, match="ignore_version=True"):
            ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
        assert type(ol.vadd_1) is pynq.DefaultIP
        ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu, ignore_version=True)
        assert type(ol.vadd_1) is Vadd2
    finally:
        Vadd2.unregister()
    with pytest.raises(TypeError, match="list of VLNV"):
        class Wrong(pynq.DefaultIP):
            bindto = VADD_VLNV


def test_unsupported_configuration_falls_back_to_default_ip(emu, xclbin_dir):
    class Picky(pynq.DefaultIP):
        bindto = [VADD_VLNV]

        def __init__(self, description):
            raise pynq.UnsupportedConfiguration("needs 2 compute units")

    try:
        with pytest.warns(UserWarning, match="needs 2 compute units"):
            ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
        assert type(ol.vadd_1) is pynq.DefaultIP
    finally:
        Picky.unregister()


def test_a_failing_driver_leaves_no_program_loaded(emu, xclbin_dir):
    old = pynq.Overlay(xclbin_dir / "vmult.xclbin", device=emu)

    load_vadd_with_a_failing_driver(emu, xclbin_dir)
    # The load replaced vmult, and its program was released whole: nothing is loaded.
    assert not old.is_loaded()
    assert emu.bitfile_name is None and emu.ip_dict == {}
    with pytest.raises(RuntimeError, match="No active memories"):
        pynq.allocate(16, "u4", target=emu)
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    assert ol.is_loaded() and emu.bitfile_name == ol.bitfile_name


def test_a_failed_load_keeps_the_old_overlay_loaded(emu, xclbin_dir, tmp_path):
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    k = ol.vadd_1
    bad = tmp_path / "bad.xclbin"
    bad.write_bytes(b"xclbin2\0" + b"\xff" * 600)
    with pytest.raises(ValueError):
        pynq.Overlay(bad, device=emu)
    assert ol.is_loaded() and emu.bitfile_name == ol.bitfile_name
    a, b, c = buffers(emu, 8)
    a[:] = 2
    a.sync_to_device()
    k.call(a, a, c, 8)
    c.sync_from_device()
    assert list(c) == [4] * 8


def test_failed_loads_on_xrt_noop(xclbin_dir, tmp_path):
    bad = tmp_path / "bad.xclbin"
    bad.write_bytes(b"xclbin2\0" + b"\xff" * 600)
    out = noop(f"""
        dev = pynq.Device.active_device
        old = pynq.Overlay(XCLBIN_DIR + "/vmult.xclbin")
        try:
            pynq.Overlay({str(bad)!r})
        except ValueError:
            print("bad file refused; old loaded:", old.is_loaded(), dev.bitfile_name == old.bitfile_name)
        class Broken(pynq.DefaultIP):
            bindto = ["xilinx.com:hls:vadd:1.0"]
            def __init__(self, description):
                raise RuntimeError("driver bug")
        try:
            pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin")
        except RuntimeError as e:
            print("driver failed:", e, "| loaded:", old.is_loaded(), dev.bitfile_name, dev.ip_dict)
        Broken.unregister()
        ol = pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin")
        print("reload:", ol.is_loaded(), type(ol.vadd_1).__name__)
    """, xclbin_dir)
    assert "bad file refused; old loaded: True True" in out
    assert "driver failed: driver bug | loaded: False None {}" in out
    assert "reload: True DefaultIP" in out


def test_default_ip_from_an_ip_dict_entry(vadd, emu, xclbin_dir):
    ip = pynq.DefaultIP(vadd.ip_dict["vadd_1"])
    assert ip.device is emu and ip.signature == vadd.vadd_1.signature
    assert ip.cu_mask == 1 << vadd.ip_dict["vadd_1"]["cu_index"]
    a, b, c = buffers(emu, 16)
    a[:] = 3
    a.sync_to_device()
    ip.call(a, a, c, 16)
    c.sync_from_device()
    assert list(c) == [6] * 16
    a[:] = 4
    a.sync_to_device()
    ip.start_sw(a, a, c, 16).wait()
    ip.start_ert(a, c, c, 16, waitfor=(None,)).wait()
    c.sync_from_device()
    assert list(c) == [12] * 16
    with pytest.raises(ValueError, match="ap_ctrl"):
        ip.start_sw(a, a, c, 16, ap_ctrl=0x81)
    other = pynq.Overlay(xclbin_dir / "vmult.xclbin", device=emu)
    with pytest.raises(RuntimeError, match="'vadd_1'.*not loaded on device emu:0"):
        pynq.DefaultIP(vadd.ip_dict["vadd_1"])
    assert other.is_loaded()


def test_mmio_reads_and_writes_registers(vadd, emu):
    k = vadd.vadd_1
    assert isinstance(k.mmio, pynq.MMIO) and k.mmio.length == vadd.ip_dict["vadd_1"]["addr_range"]
    k.write(0x34, (1234).to_bytes(4, "little"))
    assert k.read(0x34) == 1234 == k.mmio.read(0x34) == int(k.mmio.array[0x34 // 4])
    k.mmio.write(0x10, b"\x01\x00\x00\x00\x02\x00\x00\x00")
    assert k.mmio.read(0x10, 8) == (2 << 32) | 1
    assert k.mmio.read(0x10, 8, word_order="big") == (1 << 32) | 2
    assert k.mmio.read(0x10, 1) == 1
    k.mmio.array[0x34 // 4] = 77
    assert k.register_map.size.value == 77
    assert list(k.mmio.array[4:6]) == [1, 2]
    # An absolute address inside the compute unit, as PYNQ's MMIO takes it.
    base = vadd.ip_dict["vadd_1"]["phys_addr"]
    window = pynq.MMIO(base + 0x30, 8, device=emu)
    assert window.read(4) == 77
    with pytest.raises(MemoryError, match="unaligned"):
        k.mmio.read(0x35)
    with pytest.raises(MemoryError, match="whole number"):
        k.mmio.write(0x10, b"\x01\x02")
    with pytest.raises(ValueError, match="do not fit"):
        window.read(8)
    with pytest.raises(ValueError, match="not inside the register space.*vadd_1"):
        pynq.MMIO(base - 0x1000, 4, device=emu)
    with pytest.raises(ValueError, match="int or bytes"):
        k.write(0x34, "7")
    with pytest.raises(TypeError, match="fpyga.Device"):
        pynq.MMIO(base, 4, device="emu")


def test_args_are_pynq_xrt_arguments(vadd):
    args = vadd.vadd_1.args
    assert repr(args["in1"]) == ("XrtArgument(name='in1', index=1, "
                                 "type='unsigned int const *', mem='bank0')")
    assert [tuple(a) for a in args.values()] == [
        ("in1", 1, "unsigned int const *", "bank0"), ("in2", 2, "unsigned int const *", "bank0"),
        ("out_r", 3, "unsigned int*", "bank0"), ("size", 4, "int", None)]
    name, index, ctype, mem = args["size"]
    assert (name, index, ctype, mem) == ("size", 4, "int", None)
    assert args["size"].offset == 0x34 and args["in1"].kind == "global"


def test_register_bits_slice_as_in_pynq(vadd):
    rm = vadd.vadd_1.register_map
    rm.size = 0b1011_0011
    assert rm.size[1] == 1 and rm.size[2] == 0
    assert rm.size[3:0] == 0b0011 and rm.size[7:4] == 0b1011
    assert rm.size[0:3] == 0b1100  # an ascending slice gives the bits reversed (PYNQ's rule)
    assert rm.size[:] == rm.size.value
    rm.size[7:4] = 0b0001
    assert rm.size.value == 0b0001_0011
    rm.size[2] = 1
    assert rm.size.value == 0b0001_0111
    rm.size[0:3] = 0b1000  # ascending: bit 0 gets the value's top bit
    assert rm.size.value == 0b0001_0001
    assert rm.in1.width == 64 and rm.size.width == 32
    with pytest.raises(ValueError, match="does not fit"):
        rm.size[3:0] = 16
    with pytest.raises(IndexError):
        rm.size[32]
    with pytest.raises(ValueError, match="step"):
        rm.size[0:8:2]


def test_mmio_args_and_slices_on_xrt_noop(xclbin_dir):
    out = noop("""
        class Vadd(pynq.DefaultIP):
            bindto = ["xilinx.com:hls:vadd:1.0"]
        ol = pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin")
        k = ol.vadd_1
        print(type(k).__name__, ol.ip_dict["vadd_1"]["device"].backend)
        print(tuple(k.args["in1"]), tuple(k.args["size"]))
        ip = pynq.DefaultIP(ol.ip_dict["vadd_1"])
        for what, f in (("read", lambda: k.mmio.read(0x34)),
                        ("write", lambda: k.write(0x34, b"\\x01\\0\\0\\0")),
                        ("slice", lambda: k.register_map.size[3:0])):
            try:
                f()
                print(what, "worked")
            except RuntimeError as e:
                print(what, "RuntimeError:", "noop shim has no registers" in str(e))
    """, xclbin_dir)
    assert "Vadd xrt" in out
    assert "('in1', 1, 'unsigned int const *', 'bank0') ('size', 4, 'int', None)" in out
    # PYNQ aborts the process here; fpyga raises a clear error and the process lives on.
    for what in ("read", "write", "slice"):
        assert f"{what} RuntimeError: True" in out


# --- device and memory introspection, power recording ------------------------------------------

def test_device_introspection(vadd, emu):
    assert emu.bitfile_name == vadd.bitfile_name
    assert emu.ip_dict is vadd.ip_dict and emu.mem_dict is vadd.mem_dict
    assert emu.clocks == {f"clock{i}": {"frequency": c["frequency"]}
                          for i, c in enumerate(vadd.clock_dict.values())}
    bank0 = emu.get_memory_by_name("bank0")
    assert bank0 == emu.get_memory_by_idx(0) == emu.get_memory(vadd.mem_dict["bank0"]) == vadd.bank0
    assert bank0.desc == vadd.mem_dict["bank0"]
    with pytest.raises(RuntimeError, match="Could not find memory 'DDR9'.*bank0"):
        emu.get_memory_by_name("DDR9")
    with pytest.raises(RuntimeError, match="index 99"):
        emu.get_memory_by_idx(99)
    before_bytes, before_count = bank0.mem_used, bank0.num_buffers
    buf = emu.allocate((1 << 20,), "u1")
    assert buf.memory == bank0
    assert bank0.num_buffers == before_count + 1
    assert bank0.mem_used >= before_bytes + (1 << 20)
    usage = emu.get_usage()
    assert usage.ddrMemUsed[0] == bank0.mem_used and usage.ddrBOAllocated[0] == bank0.num_buffers
    assert usage.memSize[0] == bank0.size
    buf.freebuffer()
    assert bank0.num_buffers == before_count and bank0.mem_used == before_bytes
    assert emu.has_capability("REGISTER_RW") and not emu.has_capability("MEMORY_MAPPED")
    emu.close()
    assert not vadd.is_loaded() and emu.bitfile_name is None and emu.mem_dict == {}


def test_sensors_on_emu_are_not_made_up(emu):
    sensors = emu.sensors
    assert list(sensors) == PYNQ_RAILS
    rail = sensors["12v_aux"]
    assert rail.power.name == "12v_aux_power" and rail.voltage.name == "12v_aux_vol"
    assert rail.power.value is None and rail.current.value is None
    assert "None" in repr(rail)


def test_data_recorder_records_sensors_into_a_frame(emu):
    sensors = emu.sensors
    recorder = pynq.DataRecorder(sensors["12v_aux"].power, sensors["vccint"].power)
    with recorder.record(0.01):
        time.sleep(0.05)
        recorder.mark()
        time.sleep(0.05)
    frame = recorder.frame
    assert list(frame.columns) == ["Mark", "12v_aux_power", "vccint_power"]
    assert len(frame) >= 4 and set(frame["Mark"]) == {0.0, 1.0}
    assert frame["12v_aux_power"].isna().all()  # not measured: NaN, never 0
    assert frame.index.is_monotonic_increasing
    with pytest.raises(TypeError, match="not a sensor"):
        pynq.DataRecorder(None)
    recorder.reset()
    assert len(recorder.frame) == 0


def test_recorded_sensor_values_are_kept(emu):
    from fpyga.pmbus import Sensor

    readings = iter(range(1000))
    recorder = pynq.DataRecorder(Sensor("counter_power", "W", lambda: next(readings)))
    with recorder.record(0.005):
        time.sleep(0.05)
    values = list(recorder.frame["counter_power"])
    assert values == list(range(len(values))) and len(values) >= 3


def test_recorder_reads_a_shared_parent_once_per_sample():
    from fpyga.pmbus import Sensor

    class Board:  # one query gives every reading, as a card's device information does
        name, parents, queries = "board", (), 0

        def get_value(self, parents=None):
            Board.queries += 1
            return {"v": 12.0, "a": 2.0}

    board = Board()
    volts = Sensor("12v_pex_vol", "V", lambda r: r["v"], parents=(board,))
    amps = Sensor("12v_pex_curr", "A", lambda r: r["a"], parents=(board,))
    watts = Sensor("12v_pex_power", "W", lambda v, a: v * a, parents=(volts, amps))
    assert watts.value == 24.0
    recorder = pynq.DataRecorder(volts, amps, watts)
    with recorder.record(0.01):
        time.sleep(0.05)
    frame = recorder.frame
    assert (frame["12v_pex_power"] == 24.0).all() and (frame["12v_pex_vol"] == 12.0).all()
    assert Board.queries == 2 + len(frame)  # watts.value read it twice; then once per sample


def test_device_introspection_on_xrt_noop(xclbin_dir):
    out = noop("""
        dev = pynq.Device.active_device
        ol = pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin")
        print("bitfile", dev.bitfile_name == ol.bitfile_name, list(dev.ip_dict))
        print("clocks", sorted(dev.clocks))
        s = dev.sensors
        print("rails", len(s), s["vccint"].power.value)
        b = ol.bank0
        n0 = b.num_buffers
        buf = dev.allocate(4096, "u1")
        print("buffers", b.num_buffers - n0, b.mem_used >= 4096, dev.get_usage().ddrBOAllocated[0] == b.num_buffers)
        buf.freebuffer()
        print("after", b.num_buffers - n0)
        rec = pynq.DataRecorder(s["12v_pex"].power)
        import time
        with rec.record(0.01):
            time.sleep(0.03)
        print("frame", list(rec.frame.columns), bool(rec.frame["12v_pex_power"].isna().all()))
        dev.close()
        print("closed", ol.is_loaded())
    """, xclbin_dir)
    assert "bitfile True ['vadd_1']" in out
    assert "clocks ['clock0', 'clock1']" in out
    assert "rails 11 None" in out
    assert "buffers 1 True True" in out and "after 0" in out
    assert "frame ['Mark', '12v_pex_power'] True" in out
    assert "closed False" in out


# --- PYNQ's module names, through the alias -----------------------------------------------------

ALIAS_SCENARIO = """
import asyncio, os, sys
import fpyga
fpyga.install_pynq_alias()
import pynq
from pynq.ps import CPU_ARCH, CPU_ARCH_IS_SUPPORTED, CPU_ARCH_IS_x86
from pynq.pl_server.xrt_device import XrtDevice, XrtMemory, XrtStream
from pynq.pl_server.device import Device
from pynq.overlay import DefaultIP, WaitHandle, UnsupportedConfiguration, Overlay
from pynq.buffer import PynqBuffer, allocate
from pynq.mmio import MMIO
from pynq.pmbus import DataRecorder
from pynq.registers import Register
import pynq.pl_server
assert pynq is fpyga and pynq.overlay is fpyga.overlay
assert CPU_ARCH == os.uname().machine and CPU_ARCH_IS_x86 and not CPU_ARCH_IS_SUPPORTED
assert XrtDevice is fpyga.Device is Device is pynq.pl_server.Device and XrtMemory is fpyga.Memory
assert XrtStream is fpyga.stream.Stream
assert DefaultIP is pynq.DefaultIP and WaitHandle is pynq.WaitHandle and MMIO is pynq.MMIO
assert UnsupportedConfiguration is pynq.UnsupportedConfiguration and PynqBuffer is pynq.PynqBuffer
assert pynq.ps.CPU_ARCH == CPU_ARCH and Register is fpyga.Register
assert fpyga.overlay.__spec__.name == "fpyga.overlay"
ol = Overlay(os.path.join(sys.argv[1], "vadd.xclbin"))
a, b, c = (allocate(64, "u4") for _ in range(3))
a[:] = 1; a.sync_to_device()
async def main():
    h = ol.vadd_1.start(a, a, c, 64)
    assert isinstance(h, WaitHandle)
    await h.wait_async()
    return h.done
assert asyncio.run(main())
c.sync_from_device()
print("names ok", list(c[:3]))  # XRT's noop shim computes nothing
"""


def _fpyga_path():
    return str(Path(pynq.__file__).resolve().parents[1])


def test_pynq_module_names_on_emu(xclbin_dir, tmp_path):
    script = tmp_path / "names.py"
    script.write_text(ALIAS_SCENARIO)
    env = dict(os.environ, FPYGA_DEVICE="emu", PYTHONPATH=_fpyga_path())
    proc = subprocess.run([sys.executable, str(script), str(xclbin_dir)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "names ok [2, 2, 2]" in proc.stdout


def test_pynq_module_names_on_xrt_noop(xclbin_dir):
    out = run_noop("import sys\nsys.argv = ['x', " + repr(str(xclbin_dir)) + "]\n" +
                   ALIAS_SCENARIO)
    assert "names ok" in out


def test_wait_async_awaits_a_run(vadd, emu):
    a, b, c = buffers(emu, 8)
    h = vadd.vadd_1.start(a, b, c, 8)
    asyncio.run(h.wait_async())
    assert h.done


# --- Overlay signature and lifecycle ------------------------------------------------------------

def test_overlay_takes_pynqs_positional_order(emu, xclbin_dir):
    Device = pynq.Device
    previous = Device.active_device
    Device.active_device = emu
    try:
        ol = pynq.Overlay(str(xclbin_dir / "vadd.xclbin"), None)        # (bitfile, dtbo)
        assert ol.is_loaded() and ol.device is emu
        ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", None, False, True, emu, False)
        assert not ol.is_loaded() and ol.ignore_version
    finally:
        Device.active_device = previous
    with pytest.raises(TypeError, match="unexpected keyword argument 'downlaod'"):
        pynq.Overlay(xclbin_dir / "vadd.xclbin", downlaod=False, device=emu)
    with pytest.raises(ValueError, match="Zynq"):
        pynq.Overlay(xclbin_dir / "vadd.xclbin", "base.dtbo", device=emu)


def test_kernels_taken_before_a_redownload_keep_working(vadd, emu):
    k = vadd.vadd_1
    ip = pynq.DefaultIP(vadd.ip_dict["vadd_1"])
    a, b, c = buffers(emu, 16)
    a[:] = 4
    a.sync_to_device()
    vadd.download()
    assert vadd.is_loaded() and vadd.vadd_1 is k
    for kernel in (k, ip):
        c[:] = 0
        c.sync_to_device()
        kernel.call(a, a, c, 16)
        c.sync_from_device()
        assert list(c) == [8] * 16


def test_a_second_overlay_of_the_same_file_shares_the_program(vadd, emu, xclbin_dir):
    k = vadd.vadd_1
    a, b, c = buffers(emu, 16)
    a[:] = 5
    a.sync_to_device()
    again = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)   # a notebook cell run twice
    assert again.is_loaded() and vadd.is_loaded() and emu.bitfile_name == again.bitfile_name
    for kernel in (k, again.vadd_1):
        kernel.call(a, a, c, 16)
        c.sync_from_device()
        assert list(c) == [10] * 16
    # A driver that fails on the second object leaves the first one's program loaded.
    load_vadd_with_a_failing_driver(emu, xclbin_dir)
    assert vadd.is_loaded()
    k.call(a, a, c, 16)
    again.free()  # one program, so both objects see it go
    assert not vadd.is_loaded() and emu.bitfile_name is None


def test_dictionaries_print_like_pynqs_repr_dict(vadd, emu):
    for name in ("ip_dict", "mem_dict", "clock_dict"):
        d = getattr(vadd, name)
        assert isinstance(d, ReprDict)
        data, meta = d._repr_json_()
        assert meta == {"expanded": False, "root": name}
        json.dumps(data)
    entry = vadd.ip_dict["vadd_1"]
    assert isinstance(entry, ReprDict) and isinstance(entry["registers"], ReprDict)
    assert entry["device"] is emu and entry["driver"] is pynq.DefaultIP
    data, _ = vadd.ip_dict._repr_json_()
    assert data["vadd_1"]["device"] == repr(emu)
    for name in ("gpio_dict", "interrupt_controllers", "interrupt_pins", "hierarchy_dict"):
        assert getattr(vadd, name) == {} and isinstance(getattr(vadd, name), ReprDict)
    assert vadd.pr_dict == {} and vadd.dtbo is None
    entry["state"] = "programmed"  # a write through a lookup sticks (PYNQ's copy loses it)
    assert vadd.ip_dict["vadd_1"]["state"] == "programmed"


def test_overlay_lifecycle_on_xrt_noop(xclbin_dir):
    out = noop("""
        from fpyga.repr_dict import ReprDict
        ol = pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin", None)
        k = ol.vadd_1
        a, b, c = (pynq.allocate(16, "u4") for _ in range(3))
        ol.download()
        k.call(a, b, c, 16)
        print("redownload", ol.vadd_1 is k, type(ol.ip_dict).__name__,
              ol.ip_dict["vadd_1"]["driver"].__name__)
        again = pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin")
        k.call(a, b, c, 16)
        again.vadd_1.call(a, b, c, 16)
        print("second object", ol.is_loaded(), again.is_loaded())
        try:
            pynq.Overlay(XCLBIN_DIR + "/vadd.xclbin", bogus=1)
        except TypeError as e:
            print("TypeError", "bogus" in str(e))
    """, xclbin_dir)
    assert "redownload True ReprDict DefaultIP" in out
    assert "second object True True" in out
    assert "TypeError True" in out


# --- running unmodified code: the Jupyter kernel ------------------------------------------------

def test_jupyter_kernel_runs_unmodified_pynq_code(xclbin_dir, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    prefix = tmp_path / "prefix"
    monkeypatch.setenv("PYTHONPATH", _fpyga_path())
    proc = subprocess.run([sys.executable, "-m", "fpyga.pynq_alias", "--install-kernel",
                           "--prefix", str(prefix)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "fpyga-pynq"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (fpyga as pynq)"
    assert spec["argv"][:4] == [sys.executable, "-m", "fpyga.pynq_alias", "--kernel"]

    # The kernel process inherits this environment: it finds the spec and the same fpyga.
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("FPYGA_XCLBIN_DIR", str(xclbin_dir))
    monkeypatch.setenv("FPYGA_DEVICE", "emu")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nimport pynq\nfrom pynq import Overlay, allocate\n"
        "ol = Overlay(os.path.join(os.environ['FPYGA_XCLBIN_DIR'], 'vadd.xclbin'))\n"
        "a = allocate(4, 'u4'); c = allocate(4, 'u4'); a[:] = 21; a.sync_to_device()\n"
        "ol.vadd_1.call(a, a, c, 4); c.sync_from_device()\n"
        "print(pynq.__name__, list(c))")]
    NotebookClient(nb, timeout=120, kernel_name="fpyga-pynq").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "fpyga [42, 42, 42, 42]"


def test_jupyter_kernel_refuses_to_shadow_a_real_pynq(tmp_path):
    fake = tmp_path / "site" / "pynq"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([_fpyga_path(), str(fake.parent)]))
    proc = subprocess.run([sys.executable, "-m", "fpyga.pynq_alias", "--kernel", "-f",
                           str(tmp_path / "conn.json")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "will not start" in proc.stderr and "real PYNQ is installed" in proc.stderr
