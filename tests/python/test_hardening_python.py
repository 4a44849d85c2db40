"""Misuse from Python that must end in a clear exception, never a crash, hang or wrong result
(issue 18): object dtypes, non-contiguous views, read-only arrays, odd shapes and sizes, odd
timeouts, and Ctrl-C while a wait blocks.

The Ctrl-C tests run a kernel that holds its compute unit until the host raises a flag in
device memory (``hold``, compiled here with the host's C++ compiler and packed with the fpyga
CLI, as tests/cpp/test_emu_util.hpp does for the C++ suite), and send SIGINT to a child
Python process from a timer while its main thread waits.
"""

import math
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fpyga as pynq


@pytest.fixture
def vadd(xclbin_dir, emu):
    return pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)


def _buffers(ol, n=64):
    a = pynq.allocate(n, "u4", target=ol.bank0)
    b = pynq.allocate(n, "u4", target=ol.bank0)
    c = pynq.allocate(n, "u4", target=ol.bank0)
    a[:] = np.arange(n, dtype="u4")
    b[:] = 1000
    a.sync_to_device()
    b.sync_to_device()
    return a, b, c


# --- item 6: only plain-data dtypes back a device buffer ---------------------------------------

@pytest.mark.parametrize("dtype", [object, np.dtype([("x", "i4"), ("o", object)]), "O"])
def test_allocate_refuses_object_dtypes(emu, dtype):
    with pytest.raises(TypeError, match=r"allocate\(\): dtype .*(object|O).* cannot back a device buffer"):
        pynq.allocate(8, dtype, target=emu)


@pytest.mark.parametrize("dtype", ["u1", "i8", "f2", "c16", "?", "S7", "U3", "M8[ns]",
                                   np.dtype([("x", "i4"), ("y", "f8")])])
def test_allocate_takes_plain_data_dtypes(vadd, dtype):
    buf = pynq.allocate((2, 3), dtype, target=vadd.bank0)
    assert buf.dtype == np.dtype(dtype) and buf.shape == (2, 3)
    buf.sync_to_device()
    buf.freebuffer()


def test_kernel_refuses_an_object_array_over_a_buffer(vadd):
    a, b, c = _buffers(vadd)
    # What allocate() refuses, built by hand over the same device memory.
    objs = np.ndarray.__new__(pynq.PynqBuffer, (8,), object, buffer=pynq._core.buffer_of(c))
    with pytest.raises(TypeError, match=r"argument 'out_r'.*object references"):
        vadd.vadd_1.call(a, b, objs, 8)


# --- item 11: non-contiguous views are refused as arguments, and where a sync would be wrong ---

@pytest.mark.parametrize("view", [
    lambda x: x[::2],
    lambda x: x[::-1],
    lambda x: x.reshape(8, 8).T,
    lambda x: x.reshape(8, 8)[:, 0],
])
def test_kernel_refuses_non_contiguous_views(vadd, view):
    a, b, c = _buffers(vadd)
    before = c.copy()
    for args, name in [((view(a), b, c), "in1"), ((a, view(b), c), "in2"), ((a, b, view(c)), "out_r")]:
        with pytest.raises(TypeError, match=rf"kernel 'vadd': argument '{name}' .*non-contiguous view"):
            vadd.vadd_1.call(*args, 4)
        with pytest.raises(TypeError, match=rf"argument '{name}' .*non-contiguous view"):
            vadd.vadd_1.start(*args, 4)
    c.sync_from_device()
    assert np.array_equal(c, before)  # nothing ran
    # Contiguous slices still work, at their offset.
    vadd.vadd_1.call(a[8:16], b[8:16], c[8:16], 8)
    c.sync_from_device()
    assert np.array_equal(c[8:16], np.arange(8, 16, dtype="u4") + 1000)


def test_sync_refuses_views_with_gaps(vadd):
    a, b, c = _buffers(vadd)
    vadd.vadd_1.call(a, b, c, 64)
    c[:] = 7  # host writes not synced: a sync of c[::2] must not overwrite them with device data
    for view in (c[::2], c.reshape(8, 8)[:, 1]):
        with pytest.raises(TypeError, match=r"sync_from_device: PynqBuffer of shape .* gaps"):
            view.sync_from_device()
        with pytest.raises(TypeError, match=r"sync_to_device: PynqBuffer of shape .* gaps"):
            view.sync_to_device()
    assert (c == 7).all()
    # Views that cover their bytes exactly sync them exactly.
    c[::-1].sync_from_device()
    assert np.array_equal(c, np.arange(64, dtype="u4") + 1000)
    c[:] = 5
    c.reshape(8, 8).T.sync_to_device()
    c[:] = 0
    c.sync_from_device()
    assert (c == 5).all()


# --- item 12: wait_for with infinite, huge, NaN and negative timeouts ---------------------------

def test_wait_for_odd_timeouts(vadd):
    a, b, c = _buffers(vadd)
    for bad in (float("nan"), -1.0, -1e-9, float("-inf")):
        r = vadd.vadd_1.start(a, b, c, 64)
        with pytest.raises(ValueError, match=r"wait_for\(seconds\)"):
            r.wait_for(bad)
        r.wait()
    for forever in (float("inf"), 1e30, 1e300, 2.0**63):
        r = vadd.vadd_1.start(a, b, c, 64)
        assert r.wait_for(forever) == "completed"
        r.wait()
    r = vadd.vadd_1.start(a, b, c, 64)
    r.wait()
    assert r.wait_for(float("inf")) == "completed"
    with pytest.raises(ValueError):
        r.wait_for(float("nan"))


# --- item 14: read-only arrays, non-integer shapes ---------------------------------------------

def test_sync_from_device_refuses_read_only_arrays(vadd):
    a, b, c = _buffers(vadd)
    vadd.vadd_1.call(a, b, c, 64)
    c[:] = 3
    c.setflags(write=False)
    with pytest.raises(ValueError, match=r"sync_from_device: PynqBuffer of shape \(64,\) and dtype uint32 is read-only"):
        c.sync_from_device()
    with pytest.raises(ValueError, match=r"read-only"):
        c[10:20].sync_from_device()
    with pytest.raises(ValueError, match=r"read-only"):
        c.invalidate()
    assert (c == 3).all()
    c.sync_to_device()  # reading a read-only array is fine
    c.setflags(write=True)
    c.sync_from_device()
    assert (c == 3).all()


@pytest.mark.parametrize("shape", [1.5, 2.0, (2, 1.5), "3", (np.float32(2),), None])
def test_allocate_refuses_non_integer_shapes(vadd, shape):
    with pytest.raises(TypeError, match=r"allocate\(\): shape must be an int or a tuple of ints"):
        pynq.allocate(shape, target=vadd.bank0)


def test_allocate_takes_integer_like_shapes(vadd):
    bank = vadd.bank0
    assert pynq.allocate(np.int64(3), target=bank).shape == (3,)
    assert pynq.allocate((np.uint8(2), 3), target=bank).shape == (2, 3)
    assert pynq.allocate([4], target=bank).shape == (4,)
    assert pynq.allocate((), target=bank).shape == ()
    with pytest.raises(ValueError, match="negative dimension"):
        pynq.allocate((2, -1), target=bank)


# --- item 18: sizes beyond any bank ------------------------------------------------------------

@pytest.mark.parametrize("shape,dtype", [((2**62,), "u4"), ((2**64,), "u1"), ((2**40, 2**40), "u1"),
                                         ((2**70,), "u8")])
def test_allocate_too_large_says_the_size(vadd, shape, dtype):
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    with pytest.raises(MemoryError, match=rf"needs {nbytes} bytes .* more than memory 'bank0' holds"):
        pynq.allocate(shape, dtype, target=vadd.bank0)
    # The bank is still usable.
    assert pynq.allocate(4, "u4", target=vadd.bank0).shape == (4,)


# --- item 10: Ctrl-C while a wait blocks -------------------------------------------------------

HOLD_SOURCE = r"""
#include <chrono>
// Holds its compute unit until the host raises *flag (synced while it runs), at most 20 s.
extern "C" void hold(const int* flag) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && std::chrono::steady_clock::now() < end) {}
}
"""

HOLD_DESCRIPTION = {
    "mode": "sw_emu", "platform": "test",
    "kernels": [{"name": "hold", "language": "c++",
                 "args": [{"name": "flag", "type": "int const *", "kind": "global",
                           "offset": 16, "size": 8}],
                 "instances": [{"name": "hold_1", "base_address": 0}]}],
}


@pytest.fixture(scope="module")
def hold_xclbin(pack_sw_emu_kernel):
    return pack_sw_emu_kernel("hold", HOLD_SOURCE, HOLD_DESCRIPTION)


# The child starts `hold`, arms a timer that sends SIGINT to itself, then blocks in WAIT; it
# prints how long the wait took to raise KeyboardInterrupt, then releases the kernel and checks
# that the device still works.
CHILD = r"""
import os, signal, sys, threading, time
import numpy as np
import fpyga as pynq

ol = pynq.Overlay(sys.argv[1], device=pynq.Device.open("emu"))
k = ol.hold_1
flag = pynq.allocate(1, "i4", target=ol.device)
flag2 = pynq.allocate(1, "i4", target=ol.device)
flag[:] = 0
flag2[:] = 1
flag.sync_to_device()
flag2.sync_to_device()
r = k.start(flag)
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    WAIT
    print("returned", time.monotonic() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - t0, flush=True)
flag[:] = 1
flag.sync_to_device()
r.wait()
k.call(flag2)  # the device still runs kernels
print("released", time.monotonic() - t0, flush=True)
"""


@pytest.mark.parametrize("wait", ["r.wait()", "r.wait_for(float('inf'))", "r.wait_for(60)",
                                  "k.call(flag2)"])
def test_ctrl_c_interrupts_a_blocking_wait(hold_xclbin, wait):
    child = CHILD.replace("WAIT", wait)
    p = subprocess.run([sys.executable, "-c", child, str(hold_xclbin)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = dict(line.split() for line in p.stdout.splitlines())
    assert "interrupted" in lines, p.stdout
    # The timer fires at 0.5 s; the hold kernel would keep the wait busy for 20 s.
    assert 0.4 < float(lines["interrupted"]) < 5.0, p.stdout
    assert float(lines["released"]) < 10.0, p.stdout

