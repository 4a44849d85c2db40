"""emu's isolated mode from Python (issue 18 item 8): with ``FPYGA_EMU_ISOLATE=1`` (read when an
overlay loads) each compute unit runs its kernel in a helper process, so a kernel that crashes
raises RuntimeError naming the kernel and the signal while the interpreter lives on and the
device keeps running kernels; results are those of the default in-process mode; Ctrl-C while a
wait blocks raises KeyboardInterrupt as in-process; a kernel that never ends does not keep the
interpreter from exiting, and its helper goes with it.

The faulting kernels are compiled here with the host's C++ compiler and packed with the fpyga
CLI (conftest's ``pack_sw_emu_kernel``).
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fpyga as pynq

FAULTS_SOURCE = r"""
#include <cstdint>
#include <cstdlib>
#include <unistd.h>
// 0: writes 42 to out[0]; 1: writes to address 0x10; 2: abort(); 3: exit(3).
extern "C" void crash(int* out, int how) {
  volatile int* bad = reinterpret_cast<volatile int*>(std::uintptr_t(how) * 16);
  if (how == 1) *bad = 1;
  if (how == 2) std::abort();
  if (how == 3) std::exit(3);
  out[0] = 42;
}
// Writes the pid it runs in to out[0], then spins until the host raises *flag (no time limit).
extern "C" void spin(const int* flag, int* out) {
  __atomic_store_n(&out[0], static_cast<int>(getpid()), __ATOMIC_RELEASE);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {}
}
"""

_GLOBAL = {"kind": "global", "size": 8}
FAULTS_DESCRIPTION = {
    "mode": "sw_emu", "platform": "test",
    "kernels": [
        {"name": "crash", "language": "c++",
         "args": [{"name": "out", "type": "int *", "offset": 16, **_GLOBAL},
                  {"name": "how", "type": "int", "kind": "scalar", "offset": 28, "size": 4}],
         "instances": [{"name": "crash_1", "base_address": 0}]},
        {"name": "spin", "language": "c++",
         "args": [{"name": "flag", "type": "int const *", "offset": 16, **_GLOBAL},
                  {"name": "out", "type": "int *", "offset": 28, **_GLOBAL}],
         "instances": [{"name": "spin_1", "base_address": 65536}]}],
}


@pytest.fixture(scope="module")
def faults_xclbin(pack_sw_emu_kernel):
    return pack_sw_emu_kernel("faults", FAULTS_SOURCE, FAULTS_DESCRIPTION)


@pytest.fixture
def isolated(monkeypatch):
    monkeypatch.setenv("FPYGA_EMU_ISOLATE", "1")


@pytest.mark.parametrize("how, expected", [
    (1, r"SIGSEGV \(invalid memory access at address 0x10, a write\)"),
    (2, r"SIGABRT"),
    (3, r"called exit\(3\)"),
])
def test_a_crashing_kernel_raises_and_the_device_runs_the_next_kernel(faults_xclbin, emu, isolated,
                                                                       how, expected):
    ol = pynq.Overlay(faults_xclbin, device=emu)
    out = pynq.allocate(4, "i4", target=ol.device)
    with pytest.raises(RuntimeError, match=r"kernel 'crash' \(compute unit 'crash_1'\).*" + expected):
        ol.crash_1.call(out, how)
    with pytest.raises(RuntimeError, match=expected):
        ol.crash_1.start(out, how).wait()
    ol.crash_1.call(out, 0)
    out.sync_from_device()
    assert out[0] == 42
    ol.free()


def test_vadd_gives_the_results_of_in_process_mode(xclbin_dir, emu, monkeypatch):
    n = 1 << 14
    rng = np.random.default_rng(18)
    x = rng.integers(0, 2**32, n, dtype="u4")
    y = rng.integers(0, 2**32, n, dtype="u4")
    results = []
    for isolate in ("0", "1"):
        monkeypatch.setenv("FPYGA_EMU_ISOLATE", isolate)
        ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
        a = pynq.allocate(n, "u4", target=ol.bank0)
        b = pynq.allocate(n, "u4", target=ol.bank0)
        c = pynq.allocate(n, "u4", target=ol.bank0)
        a[:] = x
        b[:] = y
        a.sync_to_device()
        b.sync_to_device()
        ol.vadd_1.call(a, b, c, n)
        c.sync_from_device()
        results.append(np.array(c))
        for buf in (a, b, c):
            buf.freebuffer()
        ol.free()
    np.testing.assert_array_equal(results[0], x + y)
    np.testing.assert_array_equal(results[1], results[0])


# The child starts `spin` isolated, prints the helper's pid, arms a timer that sends SIGINT to
# itself and blocks in r.wait(); then (unless told to leave it) lets the kernel end and runs the
# next kernel; then exits, possibly with the kernel still spinning.
CHILD = r"""
import os, signal, sys, threading, time
import fpyga as pynq

os.environ["FPYGA_EMU_ISOLATE"] = "1"
ol = pynq.Overlay(sys.argv[1], device=pynq.Device.open("emu"))
flag = pynq.allocate(1, "i4", target=ol.device)
out = pynq.allocate(1, "i4", target=ol.device)
flag[:] = 0
flag.sync_to_device()
r = ol.spin_1.start(flag, out)
while out[0] == 0:
    out.sync_from_device()
print("helper", int(out[0]), flush=True)
print("host", os.getpid(), flush=True)
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    r.wait()
    print("returned", time.monotonic() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - t0, flush=True)
if sys.argv[2] == "release":
    flag[:] = 1
    flag.sync_to_device()
    r.wait()
    ol.crash_1.call(out, 0)
    out.sync_from_device()
    print("next", int(out[0]), flush=True)
print("exiting", time.monotonic() - t0, flush=True)
"""


def _gone(pid, seconds):
    """Whether process `pid` ends (or is a zombie of another parent) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("then", ["release", "leave"])
def test_ctrl_c_interrupts_a_wait_and_a_hung_kernel_does_not_outlive_the_host(faults_xclbin, then):
    p = subprocess.run([sys.executable, "-c", CHILD, str(faults_xclbin), then],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = dict(line.split() for line in p.stdout.splitlines())
    assert "interrupted" in lines, p.stdout
    # The timer fires at 0.5 s; the kernel spins until the flag is raised.
    assert 0.4 < float(lines["interrupted"]) < 5.0, p.stdout
    helper = int(lines["helper"])
    assert helper != int(lines["host"])  # the kernel ran in another process
    if then == "release":
        assert lines["next"] == "42", p.stdout
    # Either way the helper ends with its host (a kernel that never ends included).
    assert _gone(helper, 5.0), f"helper {helper} still runs after its host exited"

