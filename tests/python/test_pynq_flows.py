"""The Alveo-PYNQ introduction flows as PYNQ users write them (``import fpyga as pynq``), on every
device: vector addition, exploring the design, vadd then vmult, banks and start/wait overlap,
one overlay per device."""

import numpy as np
import pytest

import fpyga as pynq


def test_vector_addition(device, overlay_path):
    ol = pynq.Overlay(overlay_path(device, "vadd"), device=device)
    vadd = ol.vadd
    size = 1 << 16
    in1 = pynq.allocate((size,), "u4", target=device)
    in2 = pynq.allocate((size,), "u4", target=device)
    out = pynq.allocate((size,), "u4", target=device)
    in1[:] = np.random.default_rng(0).integers(0, 1 << 31, size, dtype="u4")
    in2[:] = 200
    in1.sync_to_device()
    in2.sync_to_device()
    vadd.call(in1, in2, out, size)
    out.sync_from_device()
    assert np.array_equal(out, in1 + in2)
    for b in (in1, in2, out):
        b.freebuffer()


def test_exploring_the_design(device, overlay_path):
    ol = pynq.Overlay(overlay_path(device, "vadd"), device=device)
    (name,) = ol.ip_dict
    ip = ol.ip_dict[name]
    assert ip["cu_name"] == f"vadd:{name}"
    assert [r for r in ip["registers"]] == ["CTRL", "in1", "in2", "out_r", "size"]
    assert ip["registers"]["size"]["address_offset"] == 0x34
    used = [t for t, m in ol.mem_dict.items() if m["used"]]
    assert used and all(ip["registers"][a]["memory"] in used for a in ("in1", "in2", "out_r"))
    assert str(ol.vadd.signature) == (
        "(in1: 'unsigned int const *', in2: 'unsigned int const *', out_r: "
        f"'{ip['registers']['out_r']['type']}', size: 'int')")


def test_vadd_then_vmult(emu, xclbin_dir):
    n = 256
    add = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    a, b, s = (pynq.allocate(n, "u4", target=emu) for _ in range(3))
    a[:] = np.arange(n)
    b[:] = 3
    a.sync_to_device()
    b.sync_to_device()
    add.vadd.call(a, b, s, n)
    s.sync_from_device()
    mult = pynq.Overlay(xclbin_dir / "vmult.xclbin", device=emu)
    x, y, p = (pynq.allocate(n, "u4", target=emu) for _ in range(3))
    x[:] = s
    y[:] = b
    x.sync_to_device()
    y.sync_to_device()
    mult.vmult.call(x, y, p, n)
    p.sync_from_device()
    assert np.array_equal(p, (np.arange(n) + 3) * 3)
    with pytest.raises(RuntimeError):      # the first overlay's buffers went with it
        add.vadd.call(a, b, s, n)


def test_banks_and_overlapped_runs(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    half = 1 << 16
    rng = np.random.default_rng(1)
    runs, outs, expected = [], [], []
    for cu, bank in ((ol.vadd_1, ol.bank0), (ol.vadd_2, ol.bank1)):
        a, b, c = (pynq.allocate(half, "u4", target=bank) for _ in range(3))
        a[:] = rng.integers(0, 1 << 30, half, dtype="u4")
        b[:] = rng.integers(0, 1 << 30, half, dtype="u4")
        a.sync_to_device()
        b.sync_to_device()
        runs.append(cu.start(a, b, c, half))
        outs.append(c)
        expected.append(a + b)
    for r in runs:
        r.wait()
    for c, e in zip(outs, expected):
        c.sync_from_device()
        assert np.array_equal(c, e)


def test_one_overlay_per_device(xclbin_dir):
    devices = [d for d in pynq.Device.devices
               if d.backend != "opencl" or "xilinx" in d.name.lower()]
    overlays = [pynq.Overlay(xclbin_dir / "vadd.xclbin", device=d) for d in devices]
    for i, ol in enumerate(overlays):
        assert ol.is_loaded() and ol.device is devices[i]
        a = pynq.allocate(100, "u4", target=ol.device)
        c = pynq.allocate(100, "u4", target=ol.device)
        a[:] = i + 1
        a.sync_to_device()
        ol.vadd.call(a, a, c, 100)
        c.sync_from_device()
        assert np.all(c == 2 * (i + 1))
