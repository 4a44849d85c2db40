"""allocate() and PynqBuffer: zero-copy host memory, syncs, slices, addresses, targets, freeing."""

import numpy as np
import pytest

import fpyga as pynq
from fpyga import _core


@pytest.fixture
def vadd(device, overlay_path):
    return pynq.Overlay(overlay_path(device, "vadd"), device=device)


# Device memory separate from host memory is emu's (and a card's) behaviour; OpenCL CPU devices
# such as PoCL run kernels on the host memory itself, so those semantics are tested on emu.
@pytest.fixture
def emu_vadd(emu, xclbin_dir):
    return pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)


def test_allocate_shape_dtype_and_alignment(vadd, device):
    buf = pynq.allocate((3, 5), "i2", target=device)
    assert isinstance(buf, pynq.PynqBuffer) and isinstance(buf, np.ndarray)
    assert buf.shape == (3, 5) and buf.dtype == np.int16
    assert np.all(buf == 0)
    assert buf.ctypes.data % 4096 == 0
    assert pynq.allocate(7, target=device).dtype == np.uint32     # PYNQ's default 'u4'


def test_host_memory_is_the_buffers_memory(emu_vadd, emu):
    buf = pynq.allocate(16, "u4", target=emu)
    core = _core.buffer_of(buf)
    assert core.size == 64
    assert core.address == buf.ctypes.data
    view = np.frombuffer(memoryview(core), dtype="u4")
    buf[3] = 0xDEADBEEF
    assert view[3] == 0xDEADBEEF
    assert _core.buffer_of(buf[4:]) == core


def test_device_sees_only_synced_data(emu_vadd, emu):
    n = 32
    a = pynq.allocate(n, "u4", target=emu)
    b = pynq.allocate(n, "u4", target=emu)
    c = pynq.allocate(n, "u4", target=emu)
    a[:] = 1
    b[:] = 2
    a.sync_to_device()
    b.sync_to_device()
    a[:] = 100                       # not synced: the kernel must not see it
    emu_vadd.vadd.call(a, b, c, n)
    assert np.all(c == 0)            # not synced back yet
    c.sync_from_device()
    assert np.all(c == 3)


def test_slices_sync_only_their_bytes(emu_vadd, emu):
    n = 16
    a = pynq.allocate(n, "u4", target=emu)
    zero = pynq.allocate(n, "u4", target=emu)
    c = pynq.allocate(n, "u4", target=emu)
    zero.sync_to_device()
    a[:] = 5
    a[4:8].sync_to_device()          # only elements 4..7 reach the device
    emu_vadd.vadd.call(a, zero, c, n)
    c.sync_from_device()
    assert list(c) == [0] * 4 + [5] * 4 + [0] * 8
    # And back: a slice of the output syncs only its part.
    c[:] = 9
    c[2:3].sync_from_device()
    assert list(c[:5]) == [9, 9, 0, 9, 9]


def test_slice_passed_to_a_kernel_starts_at_the_slice(emu_vadd, emu):
    n = 8
    a = pynq.allocate(2 * n, "u4", target=emu)
    c = pynq.allocate(2 * n, "u4", target=emu)
    a[:] = np.arange(2 * n)
    a.sync_to_device()
    c.sync_to_device()
    emu_vadd.vadd.call(a[n:], a[n:], c[:n], n)
    c.sync_from_device()
    assert list(c[:n]) == [2 * i for i in range(n, 2 * n)]
    assert list(c[n:]) == [0] * n


def test_device_and_physical_address(emu_vadd, emu):
    a = pynq.allocate(64, "u4", target=emu)
    base = a.device_address
    assert a.physical_address == base
    assert a[10:].device_address == base + 40
    assert a.reshape(8, 8)[2].device_address == base + 64
    assert _core.buffer_of(a).device_address == base


def test_flush_and_invalidate_are_the_syncs(emu_vadd, emu):
    n = 4
    a = pynq.allocate(n, "u4", target=emu)
    c = pynq.allocate(n, "u4", target=emu)
    a[:] = 21
    a.flush()
    emu_vadd.vadd.call(a, a, c, n)
    c.invalidate()
    assert list(c) == [42] * n


def test_arithmetic_results_are_not_device_memory(emu_vadd, emu):
    a = pynq.allocate(4, "u4", target=emu)
    result = a + 1
    assert int(a.sum()) == 0 and not isinstance(a.sum(), np.ndarray)
    with pytest.raises(ValueError, match="not backed by device memory"):
        result.sync_to_device()
    with pytest.raises(ValueError, match="not backed by device memory"):
        np.zeros(4).view(pynq.PynqBuffer).sync_from_device()


def test_freebuffer_close_and_context_manager(vadd, device):
    a = pynq.allocate(4, "u4", target=device)
    a[:] = 3
    a.freebuffer()
    assert a.freed
    assert list(a) == [3] * 4       # host memory stays readable
    with pytest.raises(RuntimeError):
        a.sync_to_device()
    b = pynq.allocate(4, "u4", target=device)
    b.close()
    assert b.freed
    with pynq.allocate(4, "u4", target=device) as c:
        c.sync_to_device()
    assert c.freed
    with pytest.raises(RuntimeError):
        vadd.vadd.call(c, c, c, 4)
    # The device stays usable.
    d = pynq.allocate(4, "u4", target=device)
    d.sync_to_device()


def test_targets_device_memory_and_default(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    b1 = pynq.allocate(4, "u4", target=ol.bank1)
    assert b1.memory.tag == "bank1"
    assert ol.bank1.allocate(4).memory.tag == "bank1"      # PYNQ's memory.allocate
    assert b1.device == emu
    # Two banks in use: no default, and the message says what to do.
    with pytest.raises(RuntimeError, match=r"Multiple memories active.*bank0, bank1.*target=ol\.bank0"):
        pynq.allocate(4, "u4", target=emu)
    with pytest.raises(TypeError, match="target"):
        pynq.allocate(4, "u4", target="bank0")
    single = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    assert pynq.allocate(4, "u4", target=emu).memory.tag == "bank0"
    assert emu.default_memory.tag == "bank0"
    previous = pynq.Device.active_device
    pynq.Device.active_device = emu
    try:
        assert pynq.allocate(4, "u4").memory.tag == "bank0"
    finally:
        pynq.Device.active_device = previous
    assert single.is_loaded()


def test_allocation_errors(emu, xclbin_dir):
    pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    with pytest.raises(ValueError, match="negative"):
        pynq.allocate((2, -1), target=emu)
    with pytest.raises(MemoryError, match="4611686018427387904 bytes"):
        pynq.allocate(2**62, "u1", target=emu)
    assert pynq.allocate(8, target=emu).size == 8           # still usable


def test_buffer_in_a_bank_the_argument_is_not_connected_to(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    a0 = pynq.allocate(4, "u4", target=ol.bank0)
    a1 = pynq.allocate(4, "u4", target=ol.bank1)
    with pytest.raises(ValueError, match="in1"):
        ol.vadd_1.call(a1, a0, a0, 4)
    # The kernel handle over both CUs picks the CU whose banks fit.
    a1[:] = 2
    a1.sync_to_device()
    ol.vadd.call(a1, a1, a1, 4)
    a1.sync_from_device()
    assert list(a1) == [4] * 4
